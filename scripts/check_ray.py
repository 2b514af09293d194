"""Collects datasets with the `frl` Python package's Rust workers as Ray actors (a local Ray on 127.0.0.1) and checks
them with the Rust reader (`frl dataset info --json`) and safetensors.

Usage: check_ray.py FRL_BINARY            native envs
       check_ray.py FRL_BINARY --gym      Gymnasium and Atari envs (FRL_BINARY built with `--features python`)

Native envs:
  * 2 actors collect a CartPole dataset: exactly the requested episodes, equal to `frl collect` of the same job;
  * an actor killed mid-run (ray.kill; Ray restarts it): the dataset is still complete and equal;
  * a policy broadcast mid-run: later episodes record the new version; also for the weights of a Decision
    Transformer trained by `frl train` on the Ray-collected dataset;
  * transitions/s through Ray with 2 actors against the threaded collector, in the same run (printed);
  * online training (`frl.ray.Trainer`, `python -m frl.ray train`): a C51 job with 2 Ray actors gives the checkpoint,
    TensorBoard scalars and recording of `frl train` with in-process actors (deterministic schedule, 2 env slots);
    refs in flight stay within two rounds per actor; weights reach the actors inside an episode (a recorded
    episode spans policy versions); an online Decision Transformer's episodes never do; an actor killed mid-run is
    restarted, its slots' episodes in flight are lost and counted, the run finishes and records no episode twice;
    the driver (`python -m frl.ray train`) killed with SIGKILL after its first checkpoints: `--resume` continues from
    the newest one and finishes the budget; PPO (on-policy rounds) through 2 Ray actors equals `frl train`.
Gymnasium and Atari envs (stepped inside each Ray actor's own interpreter):
  * 2 actors collect `gym:CartPole-v1`: equal to `frl collect --env gym:CartPole-v1` of the same job;
  * an actor killed mid-chunk on `gym:CartPole-v1`: the chunk is collected again, the dataset complete and equal;
  * `atari:Pong`: a few episodes with u8 (4, 84, 84) frames, read back by `frl dataset info` and safetensors as u8,
    equal to `frl collect` of the same job.
Exits non-zero on the first failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import ray  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

from frl.ray import Collector, Trainer, Worker  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_runs  # noqa: E402

ENV, POLICY, SEED, EPISODES = "CartPole-v1", "expert:0.3", 5, 60
ROOT = Path(__file__).resolve().parent.parent

# One job per agent kind: `{section}` is the agent's own section.
JOB = """
name = "ray-{agent}"
dataset = "{data}"
runs_dir = "{runs}"
seed = 1
agent = "{agent}"
{section}
[train]
steps = 20
batch_size = 8
warmup_steps = 5
checkpoint_every = 20
[eval]
episodes = 1
actors = 1
"""


class SlowWorker(Worker):
    """A worker that pauses before each chunk, so that a chunk is surely in flight when the test kills it."""

    def episodes(self, first, count):
        time.sleep(0.5)
        return super().episodes(first, count)


def info(frl, path):
    out = subprocess.run([frl, "dataset", "info", "--json", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def columns(path, name):
    meta = json.loads((Path(path) / "metadata.json").read_text())
    return np.concatenate([load_file(str(Path(path) / s["file"]))[name] for s in meta["shards"]])


def check(cond, message):
    if not cond:
        sys.exit(f"check_ray: {message}")


def collect_with_a_kill(env, episodes, out, policy, chunk, shard_steps):
    """Collects with 2 actors and kills one while it collects a chunk: the one that was just given a chunk, which it
    starts after a pause (a chunk alone can take milliseconds, so the kill would otherwise often arrive after it).
    Returns the summary and the killed actors."""
    c = Collector(env, episodes, str(out), policy, actors=2, seed=SEED, chunk=chunk, shard_steps=shard_steps,
                  worker_class=SlowWorker)
    kills = []

    def kill_once(collector, written):
        if not kills and collector.last_actor in collector.busy():
            ray.kill(collector.actors[collector.last_actor], no_restart=False)
            kills.append(collector.last_actor)

    return c.run(False, on_chunk=kill_once), kills


def collect_reference(frl, out, env, policy, episodes, seed, shard_steps):
    subprocess.run([frl, "collect", "--quiet", "--env", env, "--policy", policy, "--episodes", str(episodes),
                    "--seed", str(seed), "--actors", "2", "--shard-steps", str(shard_steps), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return info(frl, out)


def same_data(a, b):
    return all(np.array_equal(columns(a, name), columns(b, name))
               for name in ("observations", "actions", "rewards", "episode_offsets", "episode_index"))


def check_gym(frl, tmp):
    env, episodes = "gym:CartPole-v1", 40
    reference = tmp / "gym-threads"
    want = collect_reference(frl, reference, env, "random", episodes, SEED, 1000)
    plain = tmp / "gym-ray"
    s = Collector(env, episodes, str(plain), "random", actors=2, seed=SEED, chunk=7, shard_steps=1000).run(False)
    got = info(frl, plain)
    check(got["episodes"] == episodes == s["episodes"] and got["steps"] == want["steps"],
          f"{env}: ray {got} vs frl collect {want}")
    check(same_data(plain, reference), f"{env}: ray and frl collect datasets hold different episodes")
    print(f"ray: {episodes} {env} episodes from 2 actors, equal to frl collect ({got['steps']} steps)")

    killed = tmp / "gym-killed"
    s, kills = collect_with_a_kill(env, episodes, killed, "random", chunk=10, shard_steps=1000)
    check(kills and s["failures"] >= 1, f"{env}: no actor failure was seen (kills {kills}, summary {s})")
    check(same_data(killed, reference), f"{env}: after a kill the dataset differs from frl collect")
    print(f"ray: {env} actor {kills[0]} killed mid-chunk, {s['failures']} chunk(s) collected again, dataset equal")

    env, episodes = "atari:Pong", 4
    reference = tmp / "pong-threads"
    want = collect_reference(frl, reference, env, "random", episodes, SEED, 5000)
    frames = tmp / "pong-ray"
    s = Collector(env, episodes, str(frames), "random", actors=2, seed=SEED, chunk=1, shard_steps=5000).run(False)
    got = info(frl, frames)
    check(got["episodes"] == episodes and got["steps"] == want["steps"] == s["steps"], f"{env}: {got} vs {want}")
    meta = json.loads((frames / "metadata.json").read_text())
    space = meta["observation_space"]
    check("U8" in json.dumps(space) or "u8" in json.dumps(space), f"{env}: observation space {space} is not u8")
    obs = columns(frames, "observations")
    check(obs.dtype == np.uint8 and obs.shape[1:] == (4, 84, 84) and obs.shape[0] == got["steps"] + episodes,
          f"{env}: observations {obs.dtype} {obs.shape}")
    check(obs.max() > obs.min(), f"{env}: blank frames")
    check(same_data(frames, reference), f"{env}: ray and frl collect datasets hold different episodes")
    print(f"ray: {episodes} {env} episodes from 2 actors, u8 frames {obs.shape}, equal to frl collect "
          f"({got['steps']} steps, {s['steps'] / s['seconds']:.0f} steps/s)")


ONLINE_JOB = """
name = "{name}"
runs_dir = "{runs}"
seed = 3
agent = "dqn"
[dqn]
hidden = [32]
atoms = 21
v_min = -20.0
v_max = 20.0
epsilon_decay_steps = 2000
target_update_every = 40
[online]
env = "CartPole-v1"
env_steps = {env_steps}
actors = 1
envs = 2
learning_starts = 400
updates_per_step = 0.25
broadcast_every = 2
record = true
[train]
batch_size = 32
log_every = 25
checkpoint_every = 200
[eval]
every = 1500
episodes = 2
actors = 1
"""

ODT_JOB = """
name = "ray-odt"
runs_dir = "{runs}"
seed = 2
agent = "dt"
[dt]
layers = 1
embed_dim = 16
context = 5
bins = 16
max_episode_len = 200
[online]
env = "Pendulum-v1"
env_steps = 1200
actors = 2
learning_starts = 200
updates_per_step = 0.05
broadcast_every = 2
record = true
[train]
batch_size = 8
log_every = 5
checkpoint_every = 50
[eval]
episodes = 1
actors = 1
"""


def step_versions(run):
    """The recording's per-step policy versions, split by episode."""
    meta = json.loads((run / "episodes" / "metadata.json").read_text())
    out = []
    for shard in meta["shards"]:
        t = load_file(str(run / "episodes" / shard["file"]))
        off = t["episode_offsets"]
        out += [t["step_policy_version"][a:b] for a, b in zip(off[:-1], off[1:])]
    return out


def check_online(frl, tmp):
    # in-process actors (frl train) and 2 Ray actors: the same run
    local = tmp / "online-threads.toml"
    local.write_text(ONLINE_JOB.format(name="online", runs=tmp / "threads-runs", env_steps=4000))
    subprocess.run([frl, "train", "--quiet", str(local)], check=True, stdout=subprocess.DEVNULL)
    job = tmp / "online-ray.toml"
    job.write_text(ONLINE_JOB.format(name="online", runs=tmp / "ray-runs", env_steps=4000))
    trainer = Trainer(job, actors=2, quiet=True)
    summary = trainer.run()
    a, b = tmp / "threads-runs" / "online", tmp / "ray-runs" / "online"
    ca, cb = compare_runs.newest_checkpoint(a), compare_runs.newest_checkpoint(b)
    ta, tb = load_file(str(ca)), load_file(str(cb))
    check(ca.name == cb.name and set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in ta),
          f"online: the Ray run's checkpoint {cb.name} differs from the in-process run's {ca.name}")
    sa, sb = compare_runs.scalars(a), compare_runs.scalars(b)
    check(sa == sb and "eval/return_mean" in sa, f"online: scalars differ: {sorted(t for t in sa if sa[t] != sb.get(t))}")
    check(same_data(a / "episodes", b / "episodes"), "online: the Ray run recorded other episodes")
    check(trainer.max_in_flight <= 2 * len(trainer.actors), f"online: {trainer.max_in_flight} refs in flight")
    versions = step_versions(b)
    spanning = sum(1 for v in versions if v[0] != v[-1])
    check(spanning > 0, "online: no recorded episode took new weights while it ran")
    check(all(np.all(np.diff(v.astype(np.int64)) >= 0) for v in versions), "online: a version went back")
    print(f"ray online: 2 Ray actors = in-process actors ({summary['steps']} updates, {len(ta)} tensors, "
          f"{sum(len(v) for v in sa.values())} scalar points, {len(versions)} episodes equal); {spanning} episodes span "
          f"versions; at most {trainer.max_in_flight} refs in flight")

    # an actor killed mid-run
    job = tmp / "online-killed.toml"
    job.write_text(ONLINE_JOB.format(name="killed", runs=tmp / "killed-runs", env_steps=4000))
    trainer = Trainer(job, actors=2, quiet=True)
    kills = []

    def kill_once(t, r):
        if r == 60 and not kills:
            ray.kill(t.actors[1], no_restart=False)
            kills.append(r)

    summary = trainer.run(on_round=kill_once)
    o = summary["online"]
    check(kills and trainer.failures >= 1 and o["actor_failures"] >= 1 and o["env_steps"] >= 4000,
          f"online with a kill: kills {kills}, {trainer.failures} failures seen, summary {o}")
    index = columns(tmp / "killed-runs" / "killed" / "episodes", "episode_index")
    check(len(np.unique(index)) == len(index), "online with a kill: an episode recorded twice")
    print(f"ray online: actor killed at round {kills[0]}; {o['actor_failures']} slot rounds lost ({o['lost_steps']} steps "
          f"of unfinished episodes given up), run finished at {o['env_steps']} env steps, {len(index)} episodes recorded "
          "once each")

    # the driver killed with SIGKILL, then --resume
    job = tmp / "online-kill9.toml"
    job.write_text(ONLINE_JOB.format(name="kill9", runs=tmp / "kill9-runs", env_steps=60000))
    ckpts = tmp / "kill9-runs" / "kill9" / "checkpoints"
    cmd = [sys.executable, "-m", "frl.ray", "train", str(job), "--actors", "2", "--num-cpus", "2", "--quiet"]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(ckpts.glob("ckpt-*.safetensors"))) < 2:
        check(time.time() < deadline and driver.poll() is None, "online kill -9: no checkpoints appeared")
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    newest = compare_runs.newest_checkpoint(tmp / "kill9-runs" / "kill9").name
    out = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    check(out.returncode == 0 and "resuming kill9 from update" in out.stderr,
          f"online kill -9: --resume failed ({out.returncode}): {out.stderr[-2000:]}")
    summary = json.loads((tmp / "kill9-runs" / "kill9" / "summary.json").read_text())
    check(summary["online"]["env_steps"] >= 60000, f"online kill -9: resumed run ended at {summary['online']}")
    print(f"ray online: driver killed (SIGKILL) after {newest}; --resume finished {summary['online']['env_steps']} "
          f"env steps")

    # PPO (on-policy: each round acts with the weights trained on the round before) through 2 Ray actors
    for where in ["threads", "ray"]:
        text = (ROOT / "configs" / "ppo-cartpole.toml").read_text()
        text = text.replace('runs_dir = "runs/ppo"', f'runs_dir = "{tmp / ("ppo-" + where)}"')
        (tmp / f"ppo-{where}.toml").write_text(text.replace("env_steps = 500000", "env_steps = 20480"))
    subprocess.run([frl, "train", "--quiet", str(tmp / "ppo-threads.toml")], check=True, stdout=subprocess.DEVNULL)
    summary = Trainer(tmp / "ppo-ray.toml", actors=2, quiet=True).run()
    a, b = tmp / "ppo-threads" / "ppo-cartpole", tmp / "ppo-ray" / "ppo-cartpole"
    ta, tb = load_file(str(compare_runs.newest_checkpoint(a))), load_file(str(compare_runs.newest_checkpoint(b)))
    check(set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in ta), "ppo: Ray and in-process differ")
    check(compare_runs.scalars(a) == compare_runs.scalars(b), "ppo: the scalars differ")
    check(summary["online"]["mean_policy_lag"] == 0.0, f"ppo: policy lag {summary['online']['mean_policy_lag']}")
    print(f"ray online: PPO through 2 Ray actors = in-process ({summary['steps']} updates, policy lag 0)")

    # PPO through Ray actors stopped after round 15 (a checkpoint at the round's end, episodes in flight), then
    # resumed with fresh Ray actors that replay those episodes: the same weights as the run that never stopped
    text = (tmp / "ppo-ray.toml").read_text().replace(str(tmp / "ppo-ray"), str(tmp / "ppo-stop"))
    (tmp / "ppo-stop.toml").write_text(text)

    def stop_at_15(t, r):
        if r == 15:
            t.learner.stop()
    first = Trainer(tmp / "ppo-stop.toml", actors=2, quiet=True).run(stop_at_15)
    check(first["interrupted"], f"ppo stop: the run was not interrupted ({first['online']})")
    Trainer(tmp / "ppo-stop.toml", actors=2, resume=True, quiet=True).run()
    c = tmp / "ppo-stop" / "ppo-cartpole"
    tc = load_file(str(compare_runs.newest_checkpoint(c)))
    check(set(ta) == set(tc) and all(np.array_equal(ta[k], tc[k]) for k in ta),
          "ppo stop: Ray actors resumed after a stop trained other weights than the run that never stopped")
    print(f"ray online: PPO stopped at {first['online']['env_steps']} env steps and resumed through Ray actors = "
          "the run that never stopped")

    # the online Decision Transformer: a sequence policy keeps its version through each episode
    job = tmp / "odt.toml"
    job.write_text(ODT_JOB.format(runs=tmp / "odt-runs"))
    Trainer(job, actors=2, quiet=True).run()
    versions = step_versions(tmp / "odt-runs" / "ray-odt")
    check(versions and all(len(set(v.tolist())) == 1 for v in versions),
          "online DT: an episode changed policy version while it ran")
    check(len({int(v[0]) for v in versions}) > 1, "online DT: no new version reached the actors")
    print(f"ray online: DT episodes keep one version each ({len(versions)} episodes, versions "
          f"{sorted({int(v[0]) for v in versions})[:3]}...)")


def main():
    frl = sys.argv[1]
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    if "--gym" in sys.argv[2:]:
        with tempfile.TemporaryDirectory() as tmp:
            check_gym(frl, Path(tmp))
        ray.shutdown()
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reference = tmp / "threads"
        subprocess.run([frl, "collect", "--quiet", "--env", ENV, "--policy", POLICY, "--episodes", str(EPISODES),
                        "--seed", str(SEED), "--actors", "2", "--shard-steps", "2000", "--out", str(reference)],
                       check=True, stdout=subprocess.DEVNULL)
        want = info(frl, reference)

        # 2 actors, small chunks
        plain = tmp / "ray"
        s = Collector(ENV, EPISODES, str(plain), POLICY, actors=2, seed=SEED, chunk=7, shard_steps=2000).run(False)
        got = info(frl, plain)
        check(got["episodes"] == EPISODES == s["episodes"], f"episodes {got['episodes']} / {s['episodes']}")
        check(got["steps"] == want["steps"] and got["mean_return"] == want["mean_return"],
              f"ray dataset differs from frl collect: {got} vs {want}")
        check(np.array_equal(columns(plain, "rewards"), columns(reference, "rewards"))
              and np.array_equal(columns(plain, "observations"), columns(reference, "observations")),
              "ray and threaded datasets hold different episodes")
        print(f"ray: {EPISODES} episodes from 2 actors, equal to frl collect ({got['steps']} steps)")

        # an actor killed while it collects a chunk
        killed = tmp / "killed"
        s, kills = collect_with_a_kill(ENV, 400, killed, POLICY, chunk=100, shard_steps=20000)
        got = info(frl, killed)
        check(kills and s["failures"] >= 1, f"no actor failure was seen (kills {kills}, summary {s})")
        check(got["episodes"] == 400, f"after a kill: {got}")
        index = columns(killed, "episode_index")
        check(np.array_equal(index, np.arange(400)), "after a kill: episodes missing or repeated")
        first = columns(reference, "rewards")
        check(np.array_equal(columns(killed, "rewards")[: len(first)], first), "after a kill: other data")
        print(f"ray: actor {kills[0]} killed mid-run, {s['failures']} chunk(s) collected again, 400 episodes complete")

        # a policy broadcast mid-run
        versioned = tmp / "versioned"
        c = Collector(ENV, EPISODES, str(versioned), POLICY, actors=2, seed=SEED, chunk=5, shard_steps=2000)
        marks = []

        def broadcast(collector, written):
            marks.append(written)
            if len(marks) == 3:
                marks.append(collector.broadcast_behaviour("random"))

        c.run(False, on_chunk=broadcast)
        versions = columns(versioned, "policy_version")
        index = columns(versioned, "episode_index")
        check(len(marks) > 3 and set(versions.tolist()) == {0, marks[3]}, f"versions {sorted(set(versions.tolist()))}")
        check(np.array_equal(index, np.arange(EPISODES)), "episodes missing, repeated or out of order")
        # the random policy is much worse than the noisy expert on CartPole: the broadcast took effect
        meta = json.loads((versioned / "metadata.json").read_text())
        returns = []
        for shard in meta["shards"]:
            t = load_file(str(versioned / shard["file"]))
            off = t["episode_offsets"]
            returns += [float(t["rewards"][a:b].sum()) for a, b in zip(off[:-1], off[1:])]
        returns = np.array(returns)
        old, new = returns[versions == 0], returns[versions == marks[3]]
        check(len(new) > 0 and new.mean() < old.mean() / 2, f"returns v0 {old.mean():.1f}, v1 {new.mean():.1f}")
        print(f"ray: broadcast after 3 chunks; {len(new)} episodes record version {marks[3]} "
              f"(mean return {new.mean():.1f} vs {old.mean():.1f})")

        # the weights of each agent kind trained on the Ray-collected dataset, broadcast mid-run
        sections = {
            "dt": "[dt]\nlayers = 1\nembed_dim = 16\ncontext = 5\nmax_episode_len = 500",
            "bc": "[bc]\nhidden = [32]\nhead = { fourier = { frequencies = 2 } }",
            "iql": "[iql]\nhidden = [32]",
        }
        for agent, section in sections.items():
            job = tmp / f"{agent}.toml"
            job.write_text(JOB.format(agent=agent, section=section, data=plain, runs=tmp / "runs"))
            subprocess.run([frl, "train", "--quiet", str(job)], check=True, stdout=subprocess.DEVNULL)
            ckpt = sorted((tmp / "runs" / f"ray-{agent}" / "checkpoints").glob("ckpt-*.safetensors"))[-1]
            out = tmp / f"broadcast-{agent}"
            c = Collector(ENV, 30, str(out), POLICY, actors=2, seed=SEED, chunk=3, shard_steps=2000)
            sent = []

            def send_weights(collector, written):
                if not sent:
                    sent.append(collector.broadcast_weights(ckpt.read_bytes()))

            c.run(False, on_chunk=send_weights)
            versions = columns(out, "policy_version")
            check(set(versions.tolist()) == {0, sent[0]} and info(frl, out)["episodes"] == 30,
                  f"{agent} weights broadcast: versions {sorted(set(versions.tolist()))}")
            print(f"ray: {agent} weights ({ckpt.stat().st_size} bytes) broadcast; "
                  f"{int((versions == sent[0]).sum())} of 30 episodes record version {sent[0]}")

        # speed: the same job through Ray (2 actors) and through frl collect (2 threads), one after the other
        n = 4000
        t0 = time.perf_counter()
        subprocess.run([frl, "collect", "--quiet", "--env", ENV, "--policy", "random", "--episodes", str(n),
                        "--actors", "2", "--out", str(tmp / "speed-threads")], check=True, stdout=subprocess.DEVNULL)
        threads = info(frl, tmp / "speed-threads")["steps"] / (time.perf_counter() - t0)
        s = Collector(ENV, n, str(tmp / "speed-ray"), "random", actors=2, seed=0, chunk=1000).run(False)
        print(f"speed: ray 2 actors {s['steps'] / s['seconds']:.0f} transitions/s, frl collect 2 threads "
              f"{threads:.0f} transitions/s (CartPole, random policy, {s['steps']} steps)")
        check_online(frl, tmp)
    ray.shutdown()


if __name__ == "__main__":
    main()
