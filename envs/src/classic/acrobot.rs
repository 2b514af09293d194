//! `Acrobot-v1`: swing a two-link arm above a line (Sutton 1996, "book" dynamics), as in Gymnasium.

use std::f64::consts::PI;

use rand::Rng;

use super::{Episode, no_info};
use crate::env::{Action, Env, EnvError, Info, Step, Transition, discrete};
use crate::space::Space;

const ID: &str = "Acrobot-v1";
const DT: f64 = 0.2;
const L1: f64 = 1.0;
const M1: f64 = 1.0;
const M2: f64 = 1.0;
const LC1: f64 = 0.5;
const LC2: f64 = 0.5;
const MOI: f64 = 1.0;
const MAX_VEL_1: f64 = 4.0 * PI;
const MAX_VEL_2: f64 = 9.0 * PI;
const TORQUES: [f64; 3] = [-1.0, 0.0, 1.0];

/// `Acrobot-v1`: state `(θ1, θ2, θ̇1, θ̇2)`, torque −1 / 0 / +1 on the joint, reward −1 until the tip is above
/// the line, 500 steps.
#[derive(Debug, Clone)]
pub struct Acrobot {
    state: [f64; 4],
    episode: Episode,
}

impl Acrobot {
    /// A new environment (call [`Env::reset`] before stepping).
    pub fn new() -> Self {
        Self { state: [0.0; 4], episode: Episode::new(500) }
    }

    fn obs(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(6);
        self.write_obs(&mut v);
        v
    }

    fn write_obs(&self, out: &mut Vec<f32>) {
        let [t1, t2, d1, d2] = self.state;
        out.extend([t1.cos(), t1.sin(), t2.cos(), t2.sin(), d1, d2].iter().map(|&v| v as f32));
    }
}

impl Default for Acrobot {
    fn default() -> Self {
        Self::new()
    }
}

/// Time derivative of `(θ1, θ2, θ̇1, θ̇2)` under torque `a`.
fn derivatives(s: [f64; 4], a: f64) -> [f64; 4] {
    let [theta1, theta2, dtheta1, dtheta2] = s;
    let g = 9.8;
    let d1 = M1 * LC1 * LC1 + M2 * (L1 * L1 + LC2 * LC2 + 2.0 * L1 * LC2 * theta2.cos()) + MOI + MOI;
    let d2 = M2 * (LC2 * LC2 + L1 * LC2 * theta2.cos()) + MOI;
    let phi2 = M2 * LC2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -M2 * L1 * LC2 * dtheta2 * dtheta2 * theta2.sin()
        - 2.0 * M2 * L1 * LC2 * dtheta2 * dtheta1 * theta2.sin()
        + (M1 * LC1 + M2 * L1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - M2 * L1 * LC2 * dtheta1 * dtheta1 * theta2.sin() - phi2)
        / (M2 * LC2 * LC2 + MOI - d2 * d2 / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

/// One classical Runge-Kutta step of length `DT`.
fn rk4(s: [f64; 4], a: f64) -> [f64; 4] {
    let add = |x: [f64; 4], k: [f64; 4], h: f64| std::array::from_fn::<f64, 4, _>(|i| x[i] + h * k[i]);
    let k1 = derivatives(s, a);
    let k2 = derivatives(add(s, k1, DT / 2.0), a);
    let k3 = derivatives(add(s, k2, DT / 2.0), a);
    let k4 = derivatives(add(s, k3, DT), a);
    std::array::from_fn(|i| s[i] + DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]))
}

/// Wraps `x` into `[-π, π]` by whole turns, as Gymnasium's `wrap`.
fn wrap(mut x: f64) -> f64 {
    while x > PI {
        x -= 2.0 * PI;
    }
    while x < -PI {
        x += 2.0 * PI;
    }
    x
}

impl Env for Acrobot {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        let rng = self.episode.reset(seed);
        // Gymnasium draws the initial state as float32.
        self.state = std::array::from_fn(|_| rng.random_range(-0.1f32..0.1) as f64);
        Ok((self.obs(), no_info()))
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        super::step_alloc(self, action)
    }

    fn step_into(&mut self, action: &Action, out: &mut Vec<f32>) -> Result<Transition, EnvError> {
        let a = discrete(ID, action, 3)?;
        let truncated = self.episode.tick(ID)?;
        let ns = rk4(self.state, TORQUES[a]);
        self.state = [wrap(ns[0]), wrap(ns[1]), ns[2].clamp(-MAX_VEL_1, MAX_VEL_1), ns[3].clamp(-MAX_VEL_2, MAX_VEL_2)];
        let [t1, t2, _, _] = self.state;
        let terminated = -t1.cos() - (t2 + t1).cos() > 1.0;
        let reward = if terminated { 0.0 } else { -1.0 };
        self.write_obs(out);
        Ok(Transition { reward, terminated, truncated })
    }

    fn observation_space(&self) -> Space {
        let high = [1.0, 1.0, 1.0, 1.0, MAX_VEL_1 as f32, MAX_VEL_2 as f32];
        let low: Vec<f32> = high.iter().map(|h| -h).collect();
        Space::vector(&low, &high)
    }

    fn action_space(&self) -> Space {
        Space::Discrete(3)
    }

    fn id(&self) -> &'static str {
        ID
    }
}

native_state!(Acrobot, ID);
