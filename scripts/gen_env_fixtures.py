"""Writes envs/tests/fixtures/classic_control.json: transitions of Gymnasium's classic-control envs.

Each record holds the physical state before the step (env.unwrapped.state), the steps already taken in the
episode, the action, and what Gymnasium returned: next observation, reward, terminated, truncated. Episodes are
driven by a mix of random and energy-pumping actions so that terminations and truncations both occur.
Usage: python scripts/gen_env_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

PLAN = {  # id: (transitions, policy)
    "CartPole-v1": 1500,
    "Acrobot-v1": 1500,
    "Pendulum-v1": 1000,
    "MountainCar-v0": 1500,
    "MountainCarContinuous-v0": 2600,
}


def action_for(env_id, state, rng, episode):
    if env_id == "CartPole-v1":
        # random, or a crude balancer that keeps some episodes long enough to be truncated at 500
        if episode % 3 == 0:
            return int(state[2] + 0.5 * state[3] > 0)
        return int(rng.integers(2))
    if env_id == "Acrobot-v1":
        # torque with the second joint's velocity swings up within ~100 steps; the first episode is
        # random and runs into the 500-step limit
        if episode == 0:
            return int(rng.integers(3))
        return int(rng.integers(3)) if rng.uniform() < 0.2 else (2 if state[3] >= 0 else 0)
    if env_id == "Pendulum-v1":
        return np.array([rng.uniform(-2.5, 2.5)], dtype=np.float32)
    pump = 1.0 if state[1] >= 0 else -1.0
    if env_id == "MountainCar-v0":
        return int(rng.integers(3)) if rng.uniform() < 0.3 else (2 if pump > 0 else 0)
    # MountainCarContinuous: the first episode idles (small random forces) until truncation at 999 steps
    if episode == 0:
        return np.array([rng.uniform(-0.2, 0.2)], dtype=np.float32)
    return np.array([np.clip(pump * rng.uniform(0.5, 1.2), -1.2, 1.2)], dtype=np.float32)


def record(env_id, n):
    env = gym.make(env_id)
    rng = np.random.default_rng(7)
    out, episode = [], 0
    env.reset(seed=episode)
    while len(out) < n:
        state = [float(v) for v in env.unwrapped.state]
        elapsed = int(env.get_wrapper_attr("_elapsed_steps"))
        action = action_for(env_id, state, rng, episode)
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append({
            "state": state,
            "elapsed": elapsed,
            "action": action.tolist() if isinstance(action, np.ndarray) else action,
            "obs": [float(v) for v in obs],
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
        })
        if terminated or truncated:
            episode += 1
            env.reset(seed=episode)
    return out


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "envs/tests/fixtures/classic_control.json"
    data = {"gymnasium": gym.__version__, "envs": {env_id: record(env_id, n) for env_id, n in PLAN.items()}}
    for env_id, rows in data["envs"].items():
        ends = sum(r["terminated"] for r in rows), sum(r["truncated"] for r in rows)
        print(f"{env_id}: {len(rows)} transitions, {ends[0]} terminated, {ends[1]} truncated")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(out)


if __name__ == "__main__":
    main()
