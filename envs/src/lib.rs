//! Environments in the Gymnasium style: the [`Env`] trait, [`Space`]s, and native Rust classic-control envs whose
//! dynamics, rewards, termination and truncation match Gymnasium 1.x.
//!
//! Observations and actions are plain Rust data; nothing here knows about tensors.

#![warn(missing_docs)]

pub mod classic;
pub mod env;
pub mod space;
pub mod vector;

pub use env::{Action, Env, EnvError, Info, NativeEnv, Step, Transition};
pub use space::{BoxDtype, Space};
pub use vector::{VecEnv, VecStep};

/// Ids of the native environments.
pub const NATIVE_IDS: [&str; 5] =
    ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0"];

/// Builds a native environment by its Gymnasium id.
pub fn make(id: &str) -> Result<Box<dyn NativeEnv>, EnvError> {
    Ok(match id {
        "CartPole-v1" => Box::new(classic::CartPole::new()),
        "Acrobot-v1" => Box::new(classic::Acrobot::new()),
        "Pendulum-v1" => Box::new(classic::Pendulum::new()),
        "MountainCar-v0" => Box::new(classic::MountainCar::new()),
        "MountainCarContinuous-v0" => Box::new(classic::MountainCarContinuous::new()),
        _ => return Err(EnvError::UnknownId { id: id.to_string(), known: NATIVE_IDS.join(", ") }),
    })
}
