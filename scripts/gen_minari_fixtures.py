"""Writes small Minari datasets (arrow format) with Minari's own storage code, plus what the Rust importer must find.

Minari's `DataCollector.create_dataset` needs jax; the storage layer it calls (`MinariStorage.new` +
`update_episodes`) does not, so this script drives that layer directly with recorded Gymnasium episodes. Output:
dataset/tests/fixtures/minari/<name>/data/... (the layout of ~/.minari/datasets/<id>/) and expected.json.
"""

import json
import pathlib
import shutil

import gymnasium as gym
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari.dataset.minari_storage import MinariStorage

OUT = pathlib.Path(__file__).resolve().parent.parent / "dataset" / "tests" / "fixtures" / "minari"


def record(env, seed, rng, max_steps):
    obs, _ = env.reset(seed=seed)
    O, A, R, TE, TR = [obs], [], [], [], []
    for _ in range(max_steps):
        a = env.action_space.sample()
        o, r, te, tr, _ = env.step(a)
        O.append(o), A.append(a), R.append(r), TE.append(te), TR.append(tr)
        if te or tr:
            break
    return np.array(O), np.array(A), np.array(R, dtype=np.float64), np.array(TE), np.array(TR)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    expected = {}
    for name, env_id, episodes in [("pendulum", "Pendulum-v1", 3), ("cartpole", "CartPole-v1", 4)]:
        env = gym.make(env_id)
        env.action_space.seed(7)
        data = OUT / name / "data"
        data.mkdir(parents=True)
        storage = MinariStorage.new(data, observation_space=env.observation_space, action_space=env.action_space,
                                    env_spec=env.spec, data_format="arrow")
        rng = np.random.default_rng(0)
        rows, buffers = [], []
        for i in range(episodes):
            O, A, R, TE, TR = record(env, 100 + i, rng, 200)
            buffers.append(EpisodeBuffer(id=i, seed=100 + i, observations=O, actions=A, rewards=list(R),
                                         terminations=list(TE), truncations=list(TR)))
            rows.append({
                "id": i, "seed": 100 + i, "steps": len(R),
                "first_obs": O[0].astype(float).tolist(), "last_obs": O[-1].astype(float).tolist(),
                "obs_sum": float(O.astype(np.float64).sum()), "action_sum": float(A.astype(np.float64).sum()),
                "reward_sum": float(R.sum()), "terminated": bool(TE[-1]), "truncated": bool(TR[-1]),
            })
        storage.update_episodes(buffers)
        expected[name] = {"env_id": env_id, "episodes": rows}
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
