"""Collects datasets with the `frl` Python package's Rust workers as Ray actors (a local Ray on 127.0.0.1) and checks
them with the Rust reader (`frl dataset info --json`) and safetensors.

Usage: check_ray.py FRL_BINARY            native envs
       check_ray.py FRL_BINARY --gym      Gymnasium and Atari envs (FRL_BINARY built with `--features python`)

Native envs:
  * 2 actors collect a CartPole dataset: exactly the requested episodes, equal to `frl collect` of the same job;
  * an actor killed mid-run (ray.kill; Ray restarts it): the dataset is still complete and equal;
  * a policy broadcast mid-run: later episodes record the new version; also for the weights of a Decision
    Transformer trained by `frl train` on the Ray-collected dataset;
  * transitions/s through Ray with 2 actors against the threaded collector, in the same run (printed).
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

from frl.ray import Collector, Worker  # noqa: E402

ENV, POLICY, SEED, EPISODES = "CartPole-v1", "expert:0.3", 5, 60

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
    ray.shutdown()


if __name__ == "__main__":
    main()
