//! Scripted controllers, one per native env: the noise-free "expert" behaviour policies.
//!
//! Each takes the current observation and returns the action it would take. Mean returns over 20 seeded episodes are
//! measured by `tests/experts.rs` and listed in the guide (docs/src/behaviour.md).

use crate::Action;

/// The env ids that have a scripted expert.
pub const EXPERT_IDS: [&str; 5] =
    ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0"];

/// The scripted expert's action for `obs` in env `id`, or `None` if the env has no expert.
pub fn expert_action(id: &str, obs: &[f32]) -> Option<Action> {
    Some(match id {
        "CartPole-v1" => Action::Discrete(cartpole(obs)),
        "Acrobot-v1" => Action::Discrete(acrobot(obs)),
        "Pendulum-v1" => Action::Continuous(vec![pendulum(obs)]),
        "MountainCar-v0" => Action::Discrete(mountain_car(obs)),
        "MountainCarContinuous-v0" => Action::Continuous(vec![mountain_car_continuous(obs)]),
        _ => return None,
    })
}

/// CartPole: the sign of a linear state feedback with LQR-like gains (pole angle dominates, cart position and
/// velocity keep the cart near the centre).
pub fn cartpole(obs: &[f32]) -> usize {
    let [x, x_dot, theta, theta_dot] = [obs[0], obs[1], obs[2], obs[3]];
    let u = 1.0 * x + 1.5 * x_dot + 18.0 * theta + 3.5 * theta_dot;
    usize::from(u > 0.0)
}

/// Acrobot: pump energy by applying torque against the first link's angular velocity.
pub fn acrobot(obs: &[f32]) -> usize {
    let theta1_dot = obs[4];
    if theta1_dot < 0.0 { 2 } else { 0 }
}

/// Pendulum: energy-pumping swing-up, then PD balance near the top.
pub fn pendulum(obs: &[f32]) -> f32 {
    let theta = obs[1].atan2(obs[0]); // 0 is upright, in (-pi, pi]
    let theta_dot = obs[2];
    if theta.abs() < 0.6 {
        return (-(10.0 * theta + 2.0 * theta_dot)).clamp(-2.0, 2.0);
    }
    // theta_ddot = 15 sin(theta) + 3 u: potential 15 cos(theta); upright at rest has energy 15.
    let energy = 0.5 * theta_dot * theta_dot + 15.0 * theta.cos();
    let pump = (15.0 - energy) * theta_dot;
    (0.5 * pump).clamp(-2.0, 2.0)
}

/// MountainCar: push in the direction of the velocity; at rest, push right when left of -0.5, else left.
pub fn mountain_car(obs: &[f32]) -> usize {
    if push_right(obs) { 2 } else { 0 }
}

/// MountainCarContinuous: full force in the direction of the velocity (left when at rest).
pub fn mountain_car_continuous(obs: &[f32]) -> f32 {
    if obs[1] > 0.0 { 1.0 } else { -1.0 }
}

fn push_right(obs: &[f32]) -> bool {
    let [position, velocity] = [obs[0], obs[1]];
    velocity > 0.0 || (velocity == 0.0 && position < -0.5)
}
