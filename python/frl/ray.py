"""Collect an frl dataset, or train an agent online, with Rust workers running as Ray actors, on one machine or a
Ray cluster.

    python -m frl.ray collect --env CartPole-v1 --policy expert:0.3 --episodes 1000 --actors 4 --out data/cartpole
    python -m frl.ray collect ... --address ray://head:10001     # an existing cluster
    python -m frl.ray collect --env atari:Breakout --policy random --episodes 100 --actors 8 --out data/breakout
    python -m frl.ray train configs/dqn-cartpole.toml --actors 2 [--resume] [--address ...]

Each actor owns a ``RolloutWorker`` (native actor threads inside the actor process) and collects chunks of
episode indices; the driver writes chunks in index order with ``DatasetSink``, so the dataset equals one written by
``frl collect`` with the same env, policy and seed. A dead actor (Ray restarts it, ``max_restarts``) loses only its
chunk in flight, which is collected again; nothing is half-written.

Gymnasium ids (``gym:HalfCheetah-v5``) and the Atari preset (``atari:Pong``) run in each actor's own Python
interpreter (Gymnasium, ale-py and opencv-python-headless installed on every node). Python envs step under the GIL,
so more threads per actor do not add speed there: scale with actors (processes), one CPU each. Policies are broadcast with versions
(``Collector.broadcast_behaviour`` / ``broadcast_weights``), and every episode records the version that produced it.

``train`` runs an online job's learner (``fit_online``, the same as ``frl train``) in this process on a Rust thread and
its env slots (``online.envs``, default one per actor) in Ray actors, on the deterministic schedule: in round ``r``
each actor steps its slots with the policy the learner published after round ``r - 2``, pulled once per new version
through Ray's object store; fragments come back as byte columns and the learner takes them in (round, slot) order. So
a run gives the same checkpoints and TensorBoard scalars as ``frl train`` with in-process actors and the same
``envs``. Refs in flight are bounded by the schedule (two rounds per actor). An actor that dies is restarted by Ray;
its slots lose their episodes in flight (counted as actor failures) and start new ones.
"""

import argparse
import collections
import json
import sys
import time

import ray

from . import DatasetSink, OnlineLearner, OnlineWorker, RolloutWorker, as_arrays


_ACTOR_ERRORS = tuple(
    getattr(ray.exceptions, name) for name in ("RayActorError", "ActorUnavailableError") if hasattr(ray.exceptions, name))


class Worker:
    """The Ray actor class: a RolloutWorker; subclass it (``Collector(worker_class=...)``) to add setup or checks."""

    def __init__(self, env, policy, seed, threads):
        self.worker = RolloutWorker(env, policy, seed, threads)

    def episodes(self, first, count):
        return self.worker.episodes(first, count)

    def set_behaviour(self, policy, version):
        self.worker.set_behaviour(policy, version)
        return version

    def set_weights(self, weights, version):
        self.worker.set_weights(weights, version)
        return version

    def policy(self):
        return self.worker.policy()


class Collector:
    """Drives ``actors`` Ray actors over the episode indices of one collection job."""

    def __init__(self, env, episodes, out, policy="expert", actors=2, seed=0, chunk=None, threads_per_actor=1,
                 shard_steps=50_000, max_restarts=3, worker_class=None, queued=2):
        self.sink = DatasetSink(out, env, policy, episodes, seed, shard_steps)
        self.start, self.end = self.sink.remaining()
        chunk = chunk or max(1, min(256, (self.end - self.start) // (4 * actors) or 1))
        self.chunks = collections.deque(
            (first, min(chunk, self.end - first)) for first in range(self.start, self.end, chunk))
        if env.startswith(("gym:", "atari:")) and threads_per_actor > 1:
            print(f"warning: {env} is a Python env: its steps hold the GIL, so {threads_per_actor} threads per actor "
                  "run no faster than 1; use more actors instead", file=sys.stderr)
        remote = ray.remote(num_cpus=threads_per_actor, max_restarts=max_restarts, max_task_retries=0)(worker_class or Worker)
        self.actors = [remote.remote(env, policy, seed, threads_per_actor) for _ in range(actors)]
        ray.get([a.policy.remote() for a in self.actors])  # every actor is up (and its env id valid)
        # the policy every actor must run: (kind, payload, version); actors restarted by Ray start from the job's
        self.policy = ("behaviour", policy, 0)
        self.actor_version = [0] * actors
        # chunks waiting at each actor: with 2, an actor starts its next chunk while the driver writes its last one
        self.queued = max(1, queued)
        self.failures = 0
        self.steps = 0
        self.returns = []

    def broadcast_behaviour(self, policy):
        """From now on every chunk runs the behaviour `policy`; returns its version."""
        self.policy = ("behaviour", policy, self.policy[2] + 1)
        return self.policy[2]

    def broadcast_weights(self, checkpoint_bytes):
        """From now on every chunk runs the agent (any kind) of these checkpoint bytes; returns its version."""
        self.policy = ("weights", ray.put(checkpoint_bytes), self.policy[2] + 1)
        return self.policy[2]

    def close(self):
        """Ends the actors (their CPUs go back to Ray); `run` does this when it finishes."""
        for a in self.actors:
            ray.kill(a, no_restart=True)
        self.actors = []

    def busy(self):
        """Indices of the actors that have a chunk in flight."""
        return sorted(i for i, _ in getattr(self, "in_flight", {}).values())

    def _submit(self, i, in_flight):
        if not self.chunks:
            return
        kind, payload, version = self.policy
        if self.actor_version[i] != version:
            # calls on one actor run in order, so the chunk below runs with this policy
            setter = self.actors[i].set_behaviour if kind == "behaviour" else self.actors[i].set_weights
            setter.remote(payload, version)
            self.actor_version[i] = version
        first, count = self.chunks.popleft()
        in_flight[self.actors[i].episodes.remote(first, count)] = (i, (first, count))

    def run(self, progress=True, on_chunk=None):
        """Collects every remaining chunk; returns a summary like ``frl collect``'s. ``on_chunk(self, written)`` is
        called after each chunk is added and the actor that returned it (``self.last_actor``) got its next chunk (a
        hook for tests and custom schedules)."""
        try:
            return self._run(progress, on_chunk)
        finally:
            self.close()

    def _run(self, progress, on_chunk):
        t0 = time.perf_counter()
        in_flight = self.in_flight = {}
        for _ in range(self.queued):
            for i in range(len(self.actors)):
                self._submit(i, in_flight)
        written = self.start
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            i, span = in_flight.pop(done[0])
            ok = False
            try:
                chunk = ray.get(done[0])
            except _ACTOR_ERRORS as e:
                # the actor died (Ray restarts it with the job's first policy): collect the chunk again
                self.failures += 1
                self.chunks.appendleft(span)
                self.actor_version[i] = 0 if self.policy[0] == "behaviour" else -1
                if self.failures > 10 * len(self.actors):
                    raise RuntimeError(f"too many actor failures ({self.failures}); last: {e}") from e
                if progress:
                    print(f"\nactor {i} failed; episodes {span[0]}..{span[0] + span[1]} are collected again",
                          file=sys.stderr)
            else:
                arrays = as_arrays(chunk)
                offsets = arrays["episode_offsets"].astype(int)
                rewards = arrays["rewards"].astype(float)
                self.steps += int(offsets[-1])
                self.returns += [rewards[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])]
                written = self.sink.add(chunk)
                ok = True
                if progress:
                    secs = time.perf_counter() - t0
                    print(f"\r{written - self.start}/{self.end - self.start} episodes, "
                          f"{self.steps / max(secs, 1e-9):.0f} steps/s", end="", file=sys.stderr)
            self._submit(i, in_flight)
            if on_chunk is not None and ok:
                self.last_actor = i
                on_chunk(self, written)
        meta = json.loads(self.sink.finish())
        if progress:
            print(file=sys.stderr)
        n = len(self.returns)
        return {
            "episodes": n,
            "steps": self.steps,
            "mean_return": sum(self.returns) / max(n, 1),
            "min_return": min(self.returns, default=0.0),
            "max_return": max(self.returns, default=0.0),
            "failures": self.failures,
            "resumed_from": self.start,
            "seconds": time.perf_counter() - t0,
            "dataset_episodes": meta["episodes"],
        }


class OnlineActor:
    """The Ray actor class of online training: an OnlineWorker over some env slots of the run."""

    def __init__(self, plan, slots):
        self.worker = OnlineWorker(plan, slots)

    def round(self, r, version, weights):
        """Round ``r`` of this actor's slots with policy ``version`` (``weights``: its checkpoint bytes, or None when
        this actor already has it)."""
        if self.worker.version() != version:
            if weights is None:
                raise RuntimeError(f"policy version {version} was not sent to this actor")
            self.worker.set_policy(weights, version)
        return self.worker.round(r)


class Trainer:
    """Trains an online job with its env slots in ``actors`` Ray actors (see the module's docstring)."""

    def __init__(self, job, actors=2, resume=False, quiet=False, max_restarts=3):
        self.learner = OnlineLearner(str(job), actors=actors, resume=resume, quiet=quiet)
        plan = self.learner.plan(timeout=600.0)
        if plan is None:
            self.learner.stop()
            raise RuntimeError("the learner did not start within 10 minutes")
        self.plan = plan
        n = min(actors, plan["envs"])
        self.slots = [list(range(a, plan["envs"], n)) for a in range(n)]
        remote = ray.remote(num_cpus=1, max_restarts=max_restarts, max_task_retries=0)(OnlineActor)
        self.actors = [remote.remote(plan, slots) for slots in self.slots]
        self.actor_version = [None] * n
        self.failures = 0
        self.max_in_flight = 0

    def run(self, on_round=None):
        """Runs until the learner finishes; its summary (a dict). ``on_round(self, r)`` is called after round ``r``
        was submitted (a hook for tests)."""
        try:
            self._run(on_round)
        except BaseException:
            self.learner.stop()
            raise
        finally:
            for a in self.actors:
                ray.kill(a, no_restart=True)
        return json.loads(self.learner.join())

    def _run(self, on_round):
        lag = self.plan["lag"]
        in_flight = {}
        weights = (None, None)  # (version, object ref)
        r = 0
        while not self.learner.finished():
            try:
                policy = self.learner.policy_for(r, lag, timeout=0.0 if in_flight else 0.05)
            except EOFError:
                break
            if policy is not None:
                version, payload = policy
                if weights[0] != version:
                    weights = (version, ray.put(payload))
                for i, actor in enumerate(self.actors):
                    send = weights[1] if self.actor_version[i] != version else None
                    in_flight[actor.round.remote(r, version, send)] = (i, r)
                    self.actor_version[i] = version
                self.max_in_flight = max(self.max_in_flight, len(in_flight))
                if on_round is not None:
                    on_round(self, r)
                r += 1
                continue
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.05)
            for ref in ready:
                i, rr = in_flight.pop(ref)
                try:
                    fragments = ray.get(ref)
                except _ACTOR_ERRORS as e:
                    # Ray restarts the actor with fresh envs: its slots' episodes in flight are lost
                    self.failures += 1
                    self.actor_version[i] = None
                    for slot in self.slots[i]:
                        self.learner.push(rr, slot, None, f"Ray actor {i} died: {type(e).__name__}")
                    continue
                for slot, chunk, failure in fragments:
                    self.learner.push(rr, slot, chunk, failure)


def parser():
    """The launcher's command line: ``collect`` and ``train``."""
    p = argparse.ArgumentParser(prog="python -m frl.ray", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="collect a dataset with Ray actors")
    c.add_argument("--env", required=True, help="env id: native (CartPole-v1), gym:<id> (gym:HalfCheetah-v5) or "
                                                "atari:<game> (atari:Pong)")
    c.add_argument("--policy", default="expert", help="behaviour policy, as for frl collect (random, expert:0.3, mixed)")
    c.add_argument("--episodes", type=int, required=True)
    c.add_argument("--out", required=True, help="dataset folder")
    c.add_argument("--actors", type=int, default=2, help="Ray actors")
    c.add_argument("--threads-per-actor", type=int, default=1,
                   help="actor threads inside each Ray actor; native envs only: gym: and atari: envs step under the "
                        "GIL, so threads do not help there (use more actors)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--chunk", type=int, default=None, help="episodes per Ray call (default: about a quarter of the "
                                                           "episodes per actor, at most 256)")
    c.add_argument("--shard-steps", type=int, default=50_000)
    c.add_argument("--address", default=None, help="an existing Ray cluster (default: a local one)")
    c.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance")
    c.add_argument("--quiet", action="store_true")
    t = sub.add_parser("train", help="train an online job with its actors in Ray actors")
    t.add_argument("job", help="job file with an [online] section (as for frl train)")
    t.add_argument("--actors", type=int, default=2, help="Ray actors (the job's online.envs slots are shared out)")
    t.add_argument("--resume", action="store_true", help="continue from the run's newest checkpoint")
    t.add_argument("--address", default=None, help="an existing Ray cluster (default: a local one)")
    t.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance")
    t.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "train" and args.actors < 1:
        print("error: --actors must be at least 1", file=sys.stderr)
        return 2
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    if args.command == "train":
        return _train(args)
    try:
        collector = Collector(args.env, args.episodes, args.out, args.policy, args.actors, args.seed, args.chunk,
                              args.threads_per_actor, args.shard_steps)
        summary = collector.run(progress=not args.quiet)
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # whole shards are on disk and listed in metadata.json; the same command resumes after the last of them
        print(f"\ninterrupted; rerun the same command to resume {args.out}", file=sys.stderr)
        return 130
    finally:
        ray.shutdown()
    print(json.dumps(summary, indent=2))
    return 0


def _train(args):
    try:
        trainer = Trainer(args.job, args.actors, args.resume, args.quiet)
        summary = trainer.run()
    except (RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: a checkpoint was saved; add --resume to continue", file=sys.stderr)
        return 130
    finally:
        ray.shutdown()
    o = summary.get("online") or {}
    print(f"{summary['name']}: {summary['steps']} updates, {o.get('env_steps')} env steps in {o.get('episodes')} "
          f"episodes, {o.get('env_steps_per_sec', 0):.0f} env steps/s, mean policy lag {o.get('mean_policy_lag', 0):.2f}, "
          f"actor failures {o.get('actor_failures', 0)}; evaluation "
          f"{(summary.get('eval') or {}).get('mean', float('nan')):.1f}; run folder {summary['run_dir']}")
    return 130 if summary.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
