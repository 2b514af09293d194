//! `Pendulum-v1`: swing a pendulum up and hold it, as in Gymnasium.

use std::f64::consts::PI;

use rand::Rng;

use super::{Episode, no_info};
use crate::env::{Action, Env, EnvError, Info, Step, Transition, continuous};
use crate::space::Space;

const ID: &str = "Pendulum-v1";
const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f64 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// `Pendulum-v1`: state `(θ, θ̇)`, observation `(cos θ, sin θ, θ̇)`, torque in `[-2, 2]`, 200 steps.
#[derive(Debug, Clone)]
pub struct Pendulum {
    state: [f64; 2],
    episode: Episode,
}

impl Pendulum {
    /// A new environment (call [`Env::reset`] before stepping).
    pub fn new() -> Self {
        Self { state: [0.0; 2], episode: Episode::new(200) }
    }

    fn obs(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(3);
        self.write_obs(&mut v);
        v
    }

    fn write_obs(&self, out: &mut Vec<f32>) {
        let [th, thdot] = self.state;
        out.extend([th.cos() as f32, th.sin() as f32, thdot as f32]);
    }
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Pendulum {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let rng = self.episode.reset(seed);
        self.state = [rng.random_range(-PI..PI), rng.random_range(-1.0..1.0)];
        Ok((self.obs(), no_info()))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        super::step_alloc(self, action)
    }

    fn step_into(&mut self, action: &Action, out: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let u = continuous(ID, action, 1)?[0].clamp(-MAX_TORQUE, MAX_TORQUE);
        let truncated = self.episode.tick(ID)?;
        let [th, thdot] = self.state;
        let cost = angle_normalize(th).powi(2) + 0.1 * thdot * thdot + 0.001 * u * u;
        let new_thdot =
            (thdot + (3.0 * G / (2.0 * L) * th.sin() + 3.0 / (M * L * L) * u) * DT).clamp(-MAX_SPEED, MAX_SPEED);
        self.state = [th + new_thdot * DT, new_thdot];
        self.write_obs(out);
        Ok(Transition { reward: -cost, terminated: false, truncated })
    }

    fn observation_space(&self) -> Space {
        Space::vector(&[-1.0, -1.0, -MAX_SPEED as f32], &[1.0, 1.0, MAX_SPEED as f32])
    }

    fn action_space(&self) -> Space {
        Space::vector(&[-MAX_TORQUE as f32], &[MAX_TORQUE as f32])
    }

    fn id(&self) -> &'static str {
        ID
    }
}

native_state!(Pendulum, ID);
