//! `MountainCar-v0` and `MountainCarContinuous-v0`: drive an underpowered car up a hill, as in Gymnasium.

use rand::Rng;

use super::{Episode, no_info};
use crate::env::{Action, Env, EnvError, Info, Step, Transition, continuous, discrete};
use crate::space::Space;

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;

/// Position after a step, clipped, and velocity zeroed against the left wall (both variants).
fn move_car(position: f64, velocity: f64) -> (f64, f64) {
    let velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
    let position = (position + velocity).clamp(MIN_POSITION, MAX_POSITION);
    let velocity = if position == MIN_POSITION && velocity < 0.0 { 0.0 } else { velocity };
    (position, velocity)
}

fn observation_space() -> Space {
    Space::vector(&[MIN_POSITION as f32, -MAX_SPEED as f32], &[MAX_POSITION as f32, MAX_SPEED as f32])
}

const DISCRETE_ID: &str = "MountainCar-v0";

/// `MountainCar-v0`: state `(position, velocity)`, actions accelerate left / not / right, reward −1, 200 steps.
#[derive(Debug, Clone)]
pub struct MountainCar {
    state: [f64; 2],
    episode: Episode,
}

impl MountainCar {
    /// A new environment (call [`Env::reset`] before stepping).
    pub fn new() -> Self {
        Self { state: [0.0; 2], episode: Episode::new(200) }
    }
}

impl Default for MountainCar {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for MountainCar {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let rng = self.episode.reset(seed);
        self.state = [rng.random_range(-0.6..-0.4), 0.0];
        Ok((self.state.iter().map(|&v| v as f32).collect(), no_info()))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        super::step_alloc(self, action)
    }

    fn step_into(&mut self, action: &Action, out: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let a = discrete(DISCRETE_ID, action, 3)?;
        let truncated = self.episode.tick(DISCRETE_ID)?;
        let [position, velocity] = self.state;
        let velocity = velocity + (a as f64 - 1.0) * 0.001 + (3.0 * position).cos() * (-0.0025);
        let (position, velocity) = move_car(position, velocity);
        self.state = [position, velocity];
        let terminated = position >= 0.5 && velocity >= 0.0;
        out.extend(self.state.iter().map(|&v| v as f32));
        Ok(Transition { reward: -1.0, terminated, truncated })
    }

    fn observation_space(&self) -> Space {
        observation_space()
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn id(&self) -> &'static str {
        DISCRETE_ID
    }
}

native_state!(MountainCar, DISCRETE_ID);

const CONTINUOUS_ID: &str = "MountainCarContinuous-v0";

/// `MountainCarContinuous-v0`: force in `[-1, 1]`, reward 100 at the goal minus `0.1 a²` per step, 999 steps.
#[derive(Debug, Clone)]
pub struct MountainCarContinuous {
    state: [f64; 2],
    episode: Episode,
}

impl MountainCarContinuous {
    /// A new environment (call [`Env::reset`] before stepping).
    pub fn new() -> Self {
        Self { state: [0.0; 2], episode: Episode::new(999) }
    }
}

impl Default for MountainCarContinuous {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for MountainCarContinuous {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let rng = self.episode.reset(seed);
        self.state = [rng.random_range(-0.6..-0.4), 0.0];
        Ok((self.state.iter().map(|&v| v as f32).collect(), no_info()))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        super::step_alloc(self, action)
    }

    fn step_into(&mut self, action: &Action, out: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let a = continuous(CONTINUOUS_ID, action, 1)?[0];
        let truncated = self.episode.tick(CONTINUOUS_ID)?;
        let [position, velocity] = self.state;
        let force = a.clamp(-1.0, 1.0);
        let velocity = velocity + force * 0.0015 - 0.0025 * (3.0 * position).cos();
        let (position, velocity) = move_car(position, velocity);
        // Gymnasium stores this env's state as float32.
        self.state = [position as f32 as f64, velocity as f32 as f64];
        let terminated = position >= 0.45 && velocity >= 0.0;
        let reward = if terminated { 100.0 } else { 0.0 } - a * a * 0.1;
        out.extend(self.state.iter().map(|&v| v as f32));
        Ok(Transition { reward, terminated, truncated })
    }

    fn observation_space(&self) -> Space {
        observation_space()
    }

    fn action_space(&self) -> Space {
        Space::vector(&[-1.0], &[1.0])
    }

    fn id(&self) -> &'static str {
        CONTINUOUS_ID
    }
}

native_state!(MountainCarContinuous, CONTINUOUS_ID);
