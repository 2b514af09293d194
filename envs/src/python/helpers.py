"""Python side of frl's Gymnasium adapter: building envs and describing their spaces."""

import numpy as np

INSTALL_HINT = 'pip install "gymnasium[classic-control,mujoco]" ale-py opencv-python-headless'


def make(env_id, kwargs):
    """Builds a registered Gymnasium env; ALE ids register ale-py's envs first."""
    import gymnasium

    if env_id.startswith("ALE/"):
        import ale_py

        gymnasium.register_envs(ale_py)
    return gymnasium.make(env_id, **kwargs)


def make_atari(game, kwargs):
    """The Decision Transformer evaluation preset: no sticky actions, 30 no-ops, frame skip 4, 84x84 gray, 4 frames."""
    import ale_py
    import gymnasium
    from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

    gymnasium.register_envs(ale_py)
    options = {"frameskip": 1, "repeat_action_probability": 0.0}
    options.update(kwargs)
    env = gymnasium.make(f"ALE/{game}-v5", **options)
    env = AtariPreprocessing(
        env,
        noop_max=30,
        frame_skip=4,
        screen_size=84,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    return FrameStackObservation(env, 4)


def space_info(space):
    """(kind, n, start, low, high, shape, dtype) of a Discrete or Box space; kind "other" for the rest."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return ("discrete", int(space.n), int(space.start), None, None, None, "")
    if isinstance(space, spaces.Box):
        low = np.asarray(space.low, dtype=np.float64).ravel().tolist()
        high = np.asarray(space.high, dtype=np.float64).ravel().tolist()
        dtype = "u8" if space.dtype == np.uint8 else "f32"
        return ("box", None, 0, low, high, [int(d) for d in space.shape], dtype)
    return ("other", None, 0, None, None, None, repr(space))


def set_state(env, state, elapsed_steps):
    """Sets a classic-control env's physical state and its time limit's step counter."""
    inner = env.unwrapped
    if not hasattr(inner, "state"):
        raise AttributeError(f"{type(inner).__name__} keeps no `state` attribute")
    inner.state = np.array(state, dtype=np.float64)
    wrapper = env
    while wrapper is not inner:
        if hasattr(wrapper, "_elapsed_steps"):
            wrapper._elapsed_steps = elapsed_steps
        wrapper = wrapper.env


def step_loop(env, steps):
    """The pure-Python loop the adapter is measured against: alternating actions, reset at episode ends."""
    import time

    env.reset(seed=0)
    step = env.step
    start = time.perf_counter()
    for i in range(steps):
        obs, reward, terminated, truncated, info = step(i & 1)
        if terminated or truncated:
            env.reset()
    return time.perf_counter() - start


def as_f32(obs):
    """An observation that is not a buffer of f32, f64 or u8 values (a list, a number, other dtypes) as float32."""
    return np.ascontiguousarray(obs, dtype=np.float32)


def box_action(values, shape):
    """A continuous action for the env: float32 values in the action space's shape."""
    return np.asarray(values, dtype=np.float32).reshape(shape)
