//! Environments in the Gymnasium style: the [`Env`] trait, [`Space`]s, native Rust classic-control envs whose
//! dynamics, rewards, termination and truncation match Gymnasium 1.x, and (feature `python`) any Gymnasium env
//! through an embedded Python interpreter.
//!
//! Observations and actions are plain Rust data; nothing here knows about tensors.

#![warn(missing_docs)]

pub mod behaviour;
pub mod chaos;
pub mod classic;
pub mod env;
pub mod expert;
pub mod policy;
#[cfg(feature = "python")]
pub mod python;
pub mod space;
pub mod vector;

pub use behaviour::{BehaviourSpec, PolicyError};
pub use env::{Action, Env, EnvError, Info, NativeEnv, Step, Transition};
pub use policy::{History, MarkovPolicy, Policy, PolicyFactory};
pub use space::{BoxDtype, Space};
pub use vector::{VecEnv, VecStep};

/// Keyword arguments for a Gymnasium env's constructor (`gymnasium.make(id, **kwargs)`).
pub type Kwargs = serde_json::Map<String, serde_json::Value>;

/// Ids of the native environments.
pub const NATIVE_IDS: [&str; 5] =
    ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0"];

/// Id prefix of any registered Gymnasium env, e.g. `gym:HalfCheetah-v5` or `gym:ALE/Seaquest-v5`.
pub const GYM_PREFIX: &str = "gym:";

/// Id prefix of the Decision Transformer Atari preset, e.g. `atari:Breakout` (u8 observations (4, 84, 84)).
pub const ATARI_PREFIX: &str = "atari:";

/// Whether this build can run Gymnasium envs (`gym:` and `atari:` ids).
pub const HAS_PYTHON: bool = cfg!(feature = "python");

/// Builds an environment by id: native ids first, `gym:<id>` and `atari:<game>` through Python.
pub fn make(id: &str) -> Result<Box<dyn Env>, EnvError> {
    make_with(id, &Kwargs::new())
}

/// Builds an environment by id with constructor keyword arguments (Gymnasium envs only). An id may carry its own
/// after a `?`, as in `gym:ALE/Seaquest-v5?obs_type=ram&repeat_action_probability=0.25` (values read as JSON when
/// they parse, else as strings), so that a job's `env`, a dataset's `env_id` and a checkpoint name the env whole.
pub fn make_with(id: &str, kwargs: &Kwargs) -> Result<Box<dyn Env>, EnvError> {
    if let Some(split) = chaos::split(id) {
        let (faults, inner) = split.map_err(EnvError::BadChaos)?;
        return Ok(Box::new(chaos::Chaos::new(make_with(inner, kwargs)?, faults)));
    }
    if let Some((base, query)) = id.split_once('?') {
        let mut all = kwargs.clone();
        all.extend(id_kwargs(id, query)?);
        return make_with(base, &all);
    }
    if id.starts_with(GYM_PREFIX) || id.starts_with(ATARI_PREFIX) {
        return make_python(id, kwargs);
    }
    if !kwargs.is_empty() {
        return Err(EnvError::NativeKwargs {
            id: id.to_string(),
            kwargs: serde_json::Value::from(kwargs.clone()).to_string(),
        });
    }
    Ok(make_native(id)? as Box<dyn Env>)
}

/// The keyword arguments of an id's `?key=value&...` part.
fn id_kwargs(id: &str, query: &str) -> Result<Kwargs, EnvError> {
    let mut out = Kwargs::new();
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(EnvError::BadKwargs(format!("{id}: `{pair}` is not key=value (ids take `?key=value&...`)")));
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

#[cfg(feature = "python")]
fn make_python(id: &str, kwargs: &Kwargs) -> Result<Box<dyn Env>, EnvError> {
    let env = match id.strip_prefix(GYM_PREFIX) {
        Some(gym_id) => python::GymEnv::make(gym_id, kwargs)?,
        None => python::GymEnv::atari(&id[ATARI_PREFIX.len()..], kwargs)?,
    };
    Ok(Box::new(env))
}

#[cfg(not(feature = "python"))]
fn make_python(id: &str, _kwargs: &Kwargs) -> Result<Box<dyn Env>, EnvError> {
    Err(EnvError::PythonDisabled { id: id.to_string() })
}

/// Builds a native environment by its Gymnasium id.
pub fn make_native(id: &str) -> Result<Box<dyn NativeEnv>, EnvError> {
    Ok(match id {
        "CartPole-v1" => Box::new(classic::CartPole::new()),
        "Acrobot-v1" => Box::new(classic::Acrobot::new()),
        "Pendulum-v1" => Box::new(classic::Pendulum::new()),
        "MountainCar-v0" => Box::new(classic::MountainCar::new()),
        "MountainCarContinuous-v0" => Box::new(classic::MountainCarContinuous::new()),
        _ => {
            let python = if HAS_PYTHON {
                "`gym:<Gymnasium id>`, `atari:<game>`"
            } else {
                "Gymnasium ids need the `python` build"
            };
            return Err(EnvError::UnknownId {
                id: id.to_string(),
                known: format!("{}; {python}", NATIVE_IDS.join(", ")),
            });
        }
    })
}

/// Runs `f` with the calling thread attached to the Python interpreter when one is running, so that the Python
/// envs `f` steps do not attach per call; without the `python` feature, or before any Python env exists, it just
/// runs `f`. Long blocking waits (channel sends) belong outside `f`.
pub fn attached<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "python")]
    {
        python::attached(f)
    }
    #[cfg(not(feature = "python"))]
    {
        f()
    }
}
