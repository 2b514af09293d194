"""Reads datasets written by `frl collect` with numpy + safetensors, the way Python users will, and checks them.

Usage: check_datasets.py FRL_BINARY [--gym]

For each native env (with --gym: for native envs' dynamics run by Gymnasium itself through the `gym:` adapter of a
binary built with `--features python`) it collects a small dataset with the given binary, then, from Python alone:
  * loads every shard with safetensors.numpy and checks dtypes, shapes and episode offsets;
  * recomputes episodes, steps and return statistics and compares them with `frl dataset info --json`;
  * replays every recorded transition in Gymnasium from the recorded observation (per step, with the elapsed-step
    count restored) and compares next observation, reward, terminated and truncated with what the dataset holds.
Then trains a small DQN online on CartPole-v1 (with --gym: `gym:CartPole-v1`, the env run by Gymnasium inside the
actor threads) with `record = true` and checks the recorded episodes the same way, plus their policy versions.
Exits non-zero on the first mismatch.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from safetensors.numpy import load_file

JOBS = [
    ("CartPole-v1", ["--policy", "random", "--episodes", "40"]),
    ("Acrobot-v1", ["--policy", "expert:0.2", "--episodes", "12"]),
    ("Pendulum-v1", ["--preset", "medium", "--episodes", "6"]),
    ("MountainCar-v0", ["--preset", "mixed", "--episodes", "4"]),
    ("MountainCarContinuous-v0", ["--preset", "mixed", "--episodes", "4"]),
]

GYM_JOBS = [
    ("gym:CartPole-v1", ["--policy", "expert:0.3", "--episodes", "6"]),
    ("gym:Pendulum-v1", ["--preset", "medium", "--episodes", "3"]),
]


def state_from_obs(env_id, obs):
    """The physical state Gymnasium keeps, recovered from an observation."""
    o = obs.astype(np.float64)
    if env_id == "Pendulum-v1":
        return np.array([np.arctan2(o[1], o[0]), o[2]])
    if env_id == "Acrobot-v1":
        return np.array([np.arctan2(o[1], o[0]), np.arctan2(o[3], o[2]), o[4], o[5]])
    return o


def set_elapsed(env, n):
    e = env
    while not isinstance(e, gym.wrappers.TimeLimit):
        e = e.env
    e._elapsed_steps = n


def check(frl, root, frl_id, args):
    out = root / frl_id.replace(":", "-")
    subprocess.run([frl, "collect", "--quiet", "--env", frl_id, "--seed", "3", "--actors", "2",
                    "--shard-steps", "300", "--out", str(out), *args], check=True, stdout=subprocess.DEVNULL)
    verify(frl, out, frl_id, min_shards=2)


ONLINE_JOB = """
name = "online-gym"
runs_dir = "{runs}"
agent = "dqn"
[dqn]
hidden = [32]
atoms = 21
v_min = -20.0
v_max = 20.0
epsilon_decay_steps = 1500
[online]
env = "{env}"
env_steps = 3000
actors = 2
learning_starts = 500
updates_per_step = 0.25
broadcast_every = 10
record = true
[train]
batch_size = 32
log_every = 50
checkpoint_every = 200
[eval]
episodes = 2
actors = 1
"""


def check_online(frl, root, frl_id):
    """An online DQN run on `frl_id` with recording: its episodes replay in Gymnasium, and later ones were acted by
    newer policy versions (the weights reached the actors)."""
    job = root / "online.toml"
    job.write_text(ONLINE_JOB.format(runs=root / "runs", env=frl_id))
    subprocess.run([frl, "train", "--quiet", str(job)], check=True, stdout=subprocess.DEVNULL)
    out = root / "runs" / "online-gym" / "episodes"
    verify(frl, out, frl_id, min_shards=1)
    versions = np.concatenate([load_file(str(out / s["file"]))["policy_version"]
                               for s in json.loads((out / "metadata.json").read_text())["shards"]])
    quarter = len(versions) // 4
    assert versions[0] == 0 and versions[-quarter:].max() > versions[:quarter].max() >= 0, versions
    # Per step (format 2): the version that chose each action, starting at the episode's and never going back.
    for s in json.loads((out / "metadata.json").read_text())["shards"]:
        shard = load_file(str(out / s["file"]))
        steps, offsets = shard["step_policy_version"], shard["episode_offsets"]
        assert len(steps) == offsets[-1], (len(steps), offsets[-1])
        for e, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            assert steps[a] == shard["policy_version"][e] and (np.diff(steps[a:b]) >= 0).all(), steps[a:b]
    print(f"{frl_id} online: recorded episodes replay; policy versions 0 → {versions.max()}")


def verify(frl, out, frl_id, min_shards):
    env_id = frl_id.removeprefix("gym:")
    info = json.loads(subprocess.run([frl, "dataset", "info", "--json", str(out)], check=True,
                                     capture_output=True, text=True).stdout)
    meta = json.loads((out / "metadata.json").read_text())
    discrete = "Discrete" in meta["action_space"]
    env = gym.make(env_id)
    env.reset(seed=0)
    returns, steps, replayed = [], 0, 0
    assert len(meta["shards"]) >= min_shards, f"{env_id}: expected at least {min_shards} shards"
    for shard in meta["shards"]:
        t = load_file(str(out / shard["file"]))
        n, e = shard["steps"], shard["episodes"]
        obs, act, rew = t["observations"], t["actions"], t["rewards"]
        term, trunc, off = t["terminated"], t["truncated"], t["episode_offsets"]
        assert obs.dtype == np.float32 and obs.shape[0] == n + e, (env_id, obs.shape)
        assert act.dtype == (np.int64 if discrete else np.float32) and act.shape[0] == n
        assert rew.dtype == np.float32 and term.dtype == np.bool_ and trunc.dtype == np.bool_
        assert off.dtype == np.int64 and off[0] == 0 and off[-1] == n and np.all(np.diff(off) > 0)
        assert t["episode_index"].shape == (e,) and t["episode_seed"].dtype == np.uint64
        for k in range(e):
            s0, s1 = off[k], off[k + 1]
            o = obs[s0 + k: s1 + k + 1]
            assert term[s1 - 1] or trunc[s1 - 1], f"{env_id}: episode {k} does not end"
            assert not np.any(term[s0:s1 - 1] | trunc[s0:s1 - 1]), f"{env_id}: episode {k} ends early"
            returns.append(float(rew[s0:s1].astype(np.float64).sum()))
            for i in range(s1 - s0):
                env.unwrapped.state = state_from_obs(env_id, o[i])
                if env_id == "CartPole-v1":
                    env.unwrapped.steps_beyond_terminated = None
                set_elapsed(env, i)
                a = int(act[s0 + i]) if discrete else act[s0 + i].astype(np.float32)
                nobs, r, te, tr, _ = env.step(a)
                if not np.allclose(nobs, o[i + 1], rtol=1e-5, atol=1e-5):
                    sys.exit(f"{env_id} shard {shard['file']} episode {k} step {i}: obs {o[i + 1]} but Gymnasium {nobs}")
                if not np.isclose(r, rew[s0 + i], rtol=1e-5, atol=1e-5) or (te, tr) != (term[s0 + i], trunc[s0 + i]):
                    sys.exit(f"{env_id} episode {k} step {i}: reward/flags {rew[s0 + i]} {term[s0 + i]} "
                             f"{trunc[s0 + i]} but Gymnasium {r} {te} {tr}")
                replayed += 1
        steps += n
    returns = np.array(returns)
    assert info["episodes"] == len(returns) == meta["episodes"], env_id
    assert info["steps"] == steps == meta["steps"], env_id
    for key, value in [("mean_return", returns.mean()), ("min_return", returns.min()), ("max_return", returns.max())]:
        assert abs(info[key] - value) <= 1e-6 * max(1.0, abs(value)), (env_id, key, info[key], value)
    assert meta["env_id"] == frl_id, (meta["env_id"], frl_id)
    print(f"{frl_id}: {len(returns)} episodes in {len(meta['shards'])} shards; "
          f"{replayed} transitions match Gymnasium {gym.__version__}; mean return {returns.mean():.2f}")


def main():
    frl = sys.argv[1]
    jobs = GYM_JOBS if "--gym" in sys.argv[2:] else JOBS
    with tempfile.TemporaryDirectory() as tmp:
        for env_id, args in jobs:
            check(frl, Path(tmp), env_id, args)
        check_online(frl, Path(tmp), "gym:CartPole-v1" if "--gym" in sys.argv[2:] else "CartPole-v1")


if __name__ == "__main__":
    main()
