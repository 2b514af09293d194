//! `CartPole-v1`: balance a pole on a cart (Barto, Sutton & Anderson 1983), as in Gymnasium.

use rand::Rng;

use super::{Episode, check_state, no_info};
use crate::env::{Action, Env, EnvError, Info, NativeEnv, Step, Transition, discrete};
use crate::space::Space;

const ID: &str = "CartPole-v1";
const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASS_POLE + MASS_CART;
const LENGTH: f64 = 0.5;
const POLE_MASS_LENGTH: f64 = MASS_POLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
const X_THRESHOLD: f64 = 2.4;

/// `CartPole-v1`: state `(x, ẋ, θ, θ̇)`, actions push left (0) or right (1), reward 1 per step, 500 steps.
#[derive(Debug, Clone)]
pub struct CartPole {
    state: [f64; 4],
    episode: Episode,
    steps_beyond_terminated: Option<usize>,
}

impl CartPole {
    /// A new environment (call [`Env::reset`] before stepping).
    pub fn new() -> Self {
        Self { state: [0.0; 4], episode: Episode::new(500), steps_beyond_terminated: None }
    }

    fn obs(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(4);
        self.write_obs(&mut v);
        v
    }

    fn write_obs(&self, out: &mut Vec<f32>) {
        out.extend(self.state.iter().map(|&v| v as f32));
    }
}

impl Default for CartPole {
    fn default() -> Self {
        Self::new()
    }
}

impl Env for CartPole {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let rng = self.episode.reset(seed);
        for s in &mut self.state {
            *s = rng.random_range(-0.05..0.05);
        }
        self.steps_beyond_terminated = None;
        Ok((self.obs(), no_info()))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        super::step_alloc(self, action)
    }

    fn step_into(&mut self, action: &Action, out: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let a = discrete(ID, action, 2)?;
        let truncated = self.episode.tick(ID)?;
        let [x, x_dot, theta, theta_dot] = self.state;
        let force = if a == 1 { FORCE_MAG } else { -FORCE_MAG };
        let (sin, cos) = theta.sin_cos();
        let temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS;
        let theta_acc = (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
        let x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS;
        self.state = [x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc];
        let [x, _, theta, _] = self.state;
        let terminated =
            !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        let reward = if !terminated {
            1.0
        } else if let Some(n) = self.steps_beyond_terminated.as_mut() {
            *n += 1;
            0.0
        } else {
            self.steps_beyond_terminated = Some(0);
            1.0
        };
        self.write_obs(out);
        Ok(Transition { reward, terminated, truncated })
    }

    fn observation_space(&self) -> Space {
        let high = [X_THRESHOLD as f32 * 2.0, f32::INFINITY, THETA_THRESHOLD as f32 * 2.0, f32::INFINITY];
        let low: Vec<f32> = high.iter().map(|h| -h).collect();
        Space::vector(&low, &high)
    }

    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }

    fn id(&self) -> &'static str {
        ID
    }
}

impl NativeEnv for CartPole {
    fn state(&self) -> Vec<f64> {
        self.state.to_vec()
    }

    fn set_state(&mut self, state: &[f64], elapsed_steps: usize) -> Result<(), EnvError> {
        check_state(ID, state, 4)?;
        self.state.copy_from_slice(state);
        self.episode.set_elapsed(elapsed_steps);
        self.steps_beyond_terminated = None;
        Ok(())
    }
}
