"""Writes what Gymnasium's normalisers (the wrappers CleanRL's PPO uses) make of fixed inputs, for agents/tests/ppo.rs:

- `RunningMeanStd.update` over batches of 3-dimensional observations of uneven sizes (mean, var, count after each);
- `NormalizeReward` (γ 0.99) over one 400-step episode with rewards on very different scales (the scaled reward of
  every step).

Output: agents/tests/fixtures/ppo_norm.json.
"""

import json
import pathlib

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import NormalizeReward
from gymnasium.wrappers.utils import RunningMeanStd

OUT = pathlib.Path(__file__).resolve().parent.parent / "agents" / "tests" / "fixtures" / "ppo_norm.json"


class Scripted(gym.Env):
    """Gives the rewards it was made with, one per step, and never ends an episode by itself."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, rewards):
        self.rewards, self.t = rewards, 0

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        r = self.rewards[self.t]
        self.t += 1
        return np.zeros(1, np.float32), r, False, False, {}


def main():
    rng = np.random.default_rng(7)
    batches = [rng.normal([1.0, -3.0, 100.0], [0.5, 2.0, 30.0], size=(n, 3)).astype(np.float32) for n in (1, 5, 64, 2, 300)]
    rms = RunningMeanStd(shape=(3,))
    stats = []
    for b in batches:
        rms.update(b.astype(np.float64))
        stats.append({"mean": rms.mean.tolist(), "var": rms.var.tolist(), "count": float(rms.count)})

    rewards = np.concatenate([rng.normal(0.0, 1.0, 100), rng.normal(5.0, 20.0, 200), rng.normal(-1.0, 0.1, 100)])
    rewards = rewards.astype(np.float32).astype(np.float64)
    env = NormalizeReward(Scripted(rewards.tolist()), gamma=0.99, epsilon=1e-8)
    env.reset(seed=0)
    scaled = [float(env.step(0)[1]) for _ in rewards]

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "gymnasium": gym.__version__,
        "batches": [b.tolist() for b in batches],
        "stats": stats,
        "rewards": rewards.tolist(),
        "gamma": 0.99,
        "scaled": scaled,
    }))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
