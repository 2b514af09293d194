"""frl from Python: Rust rollout workers (episodes collected by native actor threads) and frl datasets.

``RolloutWorker(env, policy, seed, threads).episodes(first, count)`` returns a chunk: a dict of little-endian byte
columns (picklable, cheap to ship between Ray processes); ``as_arrays(chunk)`` views it as numpy arrays.
``DatasetSink`` writes chunks into the dataset format of ``frl collect``. ``OnlineLearner`` trains an online job with
its env slots stepped elsewhere by ``OnlineWorker``s. ``frl.ray`` runs workers as Ray actors.
"""

import numpy as np

from ._frl import DatasetSink, OnlineLearner, OnlineWorker, RolloutWorker

__all__ = ["DatasetSink", "OnlineLearner", "OnlineWorker", "RolloutWorker", "as_arrays"]

_DTYPES = {"f32": np.float32, "u8": np.uint8, "u64": np.uint64}


def as_arrays(chunk):
    """The chunk's columns as numpy arrays (observations [steps + episodes, obs_dim], actions [steps, act_dim], ...)."""
    out = {}
    for name, dtype in chunk["dtypes"].items():
        a = np.frombuffer(chunk[name], dtype=_DTYPES[dtype])
        if name == "observations":
            a = a.reshape(-1, chunk["obs_dim"])
        elif name == "actions":
            a = a.reshape(-1, chunk["act_dim"])
        elif name in ("terminated", "truncated"):
            a = a.astype(bool)
        out[name] = a
    return out
