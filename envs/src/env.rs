//! The [`Env`] trait and the data it exchanges.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::space::Space;

/// Extra per-step information (Gymnasium's `info` dict), as named numbers.
pub type Info = BTreeMap<String, f64>;

/// An action for [`Env::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// For `Space::Discrete`.
    Discrete(usize),
    /// For `Space::Box`.
    Continuous(Vec<f32>),
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Observation after the step.
    pub obs: Vec<f32>,
    /// Reward of the step.
    pub reward: f64,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut by the time limit.
    pub truncated: bool,
    /// Extra information.
    pub info: Info,
}

/// A step's outcome without its observation (see [`Env::step_into`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// Reward of the step.
    pub reward: f64,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut by the time limit.
    pub truncated: bool,
}

/// Errors from environments.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EnvError {
    /// No environment has this id.
    #[error("unknown environment id `{id}`; native ids: {known}")]
    UnknownId {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: String,
    },
    /// The action does not belong to the action space.
    #[error("{env}: invalid action {action}: {reason}")]
    InvalidAction {
        /// The environment id.
        env: &'static str,
        /// The action as given.
        action: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Environments that must share their spaces do not.
    #[error("{env} has other spaces than {first}: a vector env needs equal spaces")]
    SpaceMismatch {
        /// The first environment's id.
        first: &'static str,
        /// The id of the one that differs.
        env: &'static str,
    },
    /// A fault injected by a `chaos:` env.
    #[error("{env}: injected env error at step {step}")]
    Injected {
        /// The wrapped environment's id.
        env: &'static str,
        /// The env instance's step count.
        step: u64,
    },
    /// Keyword arguments written into an id (`<id>?key=value&...`) that do not parse.
    #[error("{0}")]
    BadKwargs(String),
    /// A `chaos:` id whose faults do not parse.
    #[error("{0}")]
    BadChaos(String),
    /// An id needs the embedded Python interpreter, which this build lacks.
    #[error("`{id}` is a Gymnasium env: build frl with the `python` feature (cargo build --release --features python)")]
    PythonDisabled {
        /// The id asked for.
        id: String,
    },
    /// A Python package the adapter needs is not installed.
    #[error("{env}: Python package `{package}` is not installed for {python}; install with: {hint}")]
    PythonPackageMissing {
        /// The environment id.
        env: String,
        /// The missing package.
        package: String,
        /// The interpreter that looked for it (`sys.executable`).
        python: String,
        /// How to install it.
        hint: String,
    },
    /// A call into Python raised an exception.
    #[error("{env}: {call} failed: {message}")]
    Python {
        /// The environment id.
        env: String,
        /// The call that failed.
        call: String,
        /// The Python exception and traceback.
        message: String,
    },
    /// A space the Rust side cannot represent.
    #[error("{env}: unsupported {which}: {space} (only Discrete and Box spaces are supported)")]
    UnsupportedSpace {
        /// The environment id.
        env: String,
        /// Which space (observation or action).
        which: String,
        /// The space as Python prints it.
        space: String,
    },
    /// Native environments take no keyword arguments.
    #[error("{id}: native envs take no keyword arguments (got {kwargs})")]
    NativeKwargs {
        /// The environment id.
        id: String,
        /// The arguments given.
        kwargs: String,
    },
    /// `step` was called before `reset`.
    #[error("{0}: step called before reset")]
    NotReset(&'static str),
    /// A state of the wrong length was given.
    #[error("{env}: state has {got} values, expected {expected}")]
    StateShape {
        /// The environment id.
        env: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
}

/// A Gymnasium-style environment.
///
/// ```
/// use frl_envs::{Action, Space};
///
/// // A native env by its Gymnasium id (`gym:<id>` ids need the `python` feature).
/// let mut env = frl_envs::make("CartPole-v1").unwrap();
/// assert_eq!(env.action_space(), Space::Discrete(2));
/// let (mut obs, _) = env.reset(Some(7)).unwrap();
/// let (mut steps, mut ret) = (0, 0.0);
/// loop {
///     // Push the pole back towards upright: the sign of the angle.
///     let step = env.step(&Action::Discrete(usize::from(obs[2] > 0.0))).unwrap();
///     (obs, steps, ret) = (step.obs, steps + 1, ret + step.reward);
///     if step.terminated || step.truncated {
///         break;
///     }
/// }
/// assert_eq!(ret, steps as f64);
/// // The same seed plays the same episode.
/// assert_eq!(env.reset(Some(7)).unwrap().0, frl_envs::make("CartPole-v1").unwrap().reset(Some(7)).unwrap().0);
/// ```
pub trait Env: Send {
    /// Starts a new episode; `seed` reseeds the environment's RNG (same seed → same episode).
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError>;
    /// Advances one step.
    fn step(&mut self, action: &Action) -> Result<Step, EnvError>;
    /// Advances one step, appending the next observation to `obs` (no allocation; `info` is not produced).
    fn step_into(&mut self, action: &Action, obs: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let s = self.step(action)?;
        obs.extend_from_slice(&s.obs);
        Ok(Transition { reward: s.reward, terminated: s.terminated, truncated: s.truncated })
    }
    /// The space observations live in.
    fn observation_space(&self) -> Space;
    /// The space actions live in.
    fn action_space(&self) -> Space;
    /// The Gymnasium id.
    fn id(&self) -> &'static str;
}

/// A native environment whose full state can be read and set (for tests against Gymnasium and for resets).
pub trait NativeEnv: Env {
    /// The physical state (Gymnasium's `env.unwrapped.state`).
    fn state(&self) -> Vec<f64>;
    /// Sets the physical state and the number of steps taken in the episode.
    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<(), EnvError>;
}

/// Checks a discrete action against `n` choices.
pub(crate) fn discrete(env: &'static str, action: &Action, n: usize) -> Result<usize, EnvError> {
    match action {
        Action::Discrete(a) if *a < n => Ok(*a),
        other => Err(EnvError::InvalidAction {
            env,
            action: format!("{other:?}"),
            reason: format!("expected Discrete(0..{n})"),
        }),
    }
}

/// Checks a continuous action of `dim` finite values.
pub(crate) fn continuous(env: &'static str, action: &Action, dim: usize) -> Result<Vec<f64>, EnvError> {
    match action {
        Action::Continuous(v) if v.len() == dim && v.iter().all(|x| x.is_finite()) => {
            Ok(v.iter().map(|&x| x as f64).collect())
        }
        other => Err(EnvError::InvalidAction {
            env,
            action: format!("{other:?}"),
            reason: format!("expected Continuous with {dim} finite values"),
        }),
    }
}
