"""Writes heads/tests/fixtures/ale_seaquest_actions.json: Seaquest's action ids and their meanings as ale-py gives
them (the Atari direction ring's test reads it), and the RAM observation space Gymnasium's ALE reports.

Usage: python scripts/gen_ale_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import ale_py
import gymnasium as gym

gym.register_envs(ale_py)


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "heads/tests/fixtures/ale_seaquest_actions.json")
    env = gym.make("ALE/Seaquest-v5", obs_type="ram")
    meanings = env.unwrapped.get_action_meanings()
    space = env.observation_space
    record = {
        "env": "ALE/Seaquest-v5",
        "ale_py": ale_py.__version__,
        "action_meanings": meanings,
        "actions": int(env.action_space.n),
        "ram_shape": list(space.shape),
        "ram_dtype": str(space.dtype),
    }
    env.close()
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{out}: {len(meanings)} actions")


if __name__ == "__main__":
    main()
