//! Native classic-control environments, step-for-step equal to Gymnasium 1.x given the same state and action.

/// Implements `NativeEnv` for an env with fields `state: [f64; N]` and `episode: Episode`.
macro_rules! native_state {
    ($ty:ty, $id:expr) => {
        impl crate::env::NativeEnv for $ty {
            fn state(&self) -> Vec<f64> {
                self.state.to_vec()
            }

            fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<(), crate::env::EnvError> {
                super::check_state($id, state, self.state.len())?;
                self.state.copy_from_slice(state);
                self.episode.set_elapsed(elapsed_steps);
                Ok(())
            }
        }
    };
}

mod acrobot;
mod cartpole;
mod mountain_car;
mod pendulum;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
pub use mountain_car::{MountainCar, MountainCarContinuous};
pub use pendulum::Pendulum;

use rand::SeedableRng;
// Seeding happens at every seeded reset, so the generator must be cheap to seed (ChaCha is not); it is portable.
use rand_xoshiro::Xoshiro256PlusPlus as EnvRng;

use crate::env::{EnvError, Info};

/// RNG, episode clock and time limit shared by the classic envs.
#[derive(Debug, Clone)]
pub(crate) struct Episode {
    rng: EnvRng,
    elapsed: usize,
    limit: usize,
    started: bool,
}

impl Episode {
    fn new(limit: usize) -> Self {
        Self { rng: EnvRng::from_os_rng(), elapsed: 0, limit, started: false }
    }

    /// Starts an episode, reseeding when a seed is given.
    fn reset(&mut self, seed: Option<u64>) -> &mut EnvRng {
        if let Some(s) = seed {
            self.rng = EnvRng::seed_from_u64(s);
        }
        self.elapsed = 0;
        self.started = true;
        &mut self.rng
    }

    /// Counts a step; returns whether the time limit truncates the episode.
    fn tick(&mut self, id: &'static str) -> Result<bool, EnvError> {
        if !self.started {
            return Err(EnvError::NotReset(id));
        }
        self.elapsed += 1;
        Ok(self.elapsed >= self.limit)
    }

    fn set_elapsed(&mut self, elapsed: usize) {
        self.elapsed = elapsed;
        self.started = true;
    }
}

fn check_state(env: &'static str, state: &[f64], expected: usize) -> Result<(), EnvError> {
    if state.len() != expected {
        return Err(EnvError::StateShape { env, expected, got: state.len() });
    }
    Ok(())
}

/// `Env::step` for envs that implement `step_into`.
fn step_alloc<E: crate::env::Env + ?Sized>(
    env: &mut E,
    action: &crate::env::Action,
) -> Result<crate::env::Step, EnvError> {
    let mut obs = Vec::with_capacity(8);
    let t = env.step_into(action, &mut obs)?;
    Ok(crate::env::Step { obs, reward: t.reward, terminated: t.terminated, truncated: t.truncated, info: no_info() })
}

fn no_info() -> Info {
    Info::new()
}
