//! Proximal Policy Optimization's arithmetic (Schulman et al. 2017), for policies that are any head over action
//! bins: generalised advantage estimation with time limits bootstrapped, the clipped surrogate and value losses, and
//! a categorical policy's log-probabilities and entropy from a head's logits. The agent on the online loop is built
//! on these.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// One env's consecutive steps of a rollout, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutSteps {
    /// Reward of each step.
    pub rewards: Vec<f32>,
    /// `V(s_t)`: the value of the observation each step acted on.
    pub values: Vec<f32>,
    /// `V(s_{t+1})`: the value of the observation after each step — after a time limit the final observation's (the
    /// episode was cut, not ended, so its return goes on), after the rollout's last step the next one's.
    pub next_values: Vec<f32>,
    /// The episode ended by termination after this step: nothing follows.
    pub terminated: Vec<bool>,
    /// The episode ended by a time limit after this step: its return is bootstrapped from `next_values`, and the
    /// next step belongs to another episode.
    pub truncated: Vec<bool>,
}

/// GAE(λ) advantages and returns (`advantage + value`) of `steps`: `δ_t = r_t + γ (1 − term_t) V(s_{t+1}) − V(s_t)`
/// and `A_t = δ_t + γ λ (1 − end_t) A_{t+1}`, where an episode's end (termination or time limit) stops the sum and
/// the rollout's last step has nothing after it.
pub fn gae(steps: &RolloutSteps, gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = steps.rewards.len();
    let mut advantages = vec![0.0f32; n];
    let mut next = 0.0f32;
    for t in (0..n).rev() {
        let alive = if steps.terminated[t] { 0.0 } else { 1.0 };
        let delta = steps.rewards[t] + gamma * alive * steps.next_values[t] - steps.values[t];
        let goes_on = if steps.terminated[t] || steps.truncated[t] || t + 1 == n { 0.0 } else { 1.0 };
        next = delta + gamma * lambda * goes_on * next;
        advantages[t] = next;
    }
    let returns = advantages.iter().zip(&steps.values).map(|(a, v)| a + v).collect();
    (advantages, returns)
}

/// Log-probability `[batch]` of each row's taken bin under the categorical distribution of `logits` `[batch, m]`.
pub fn log_prob(logits: Tensor<2>, actions: Tensor<1, Int>) -> Tensor<1> {
    let rows = actions.dims()[0];
    log_softmax(logits, 1).gather(1, actions.reshape([rows, 1])).reshape([rows])
}

/// Entropy `[batch]` (nats) of the categorical distribution of each row of `logits` `[batch, m]`.
pub fn entropy(logits: Tensor<2>) -> Tensor<1> {
    let rows = logits.dims()[0];
    let log_p = log_softmax(logits, 1);
    (log_p.clone().exp() * log_p).sum_dim(1).neg().reshape([rows])
}

/// PPO's clipped surrogate loss `mean(−min(ρ A, clip(ρ, 1 − ε, 1 + ε) A))` with `ρ = exp(log π_new − log π_old)`, `[1]`.
pub fn clipped_surrogate(
    log_prob_new: Tensor<1>,
    log_prob_old: Tensor<1>,
    advantages: Tensor<1>,
    clip: f32,
) -> Tensor<1> {
    let ratio = (log_prob_new - log_prob_old).exp();
    let unclipped = ratio.clone() * advantages.clone();
    let clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages;
    unclipped.min_pair(clipped).neg().mean()
}

/// The value loss `½ mean((V − R)²)`, or with `clip` CleanRL's clipped form `½ mean(max((V − R)², (V_old + clip(V −
/// V_old, −c, c) − R)²))`, `[1]`.
pub fn value_loss(values: Tensor<1>, old_values: Tensor<1>, returns: Tensor<1>, clip: Option<f32>) -> Tensor<1> {
    let plain = (values.clone() - returns.clone()).powf_scalar(2.0);
    let worst = match clip {
        Some(c) => {
            let clipped = old_values.clone() + (values - old_values).clamp(-c, c);
            plain.max_pair((clipped - returns).powf_scalar(2.0))
        }
        None => plain,
    };
    worst.mean() * 0.5
}

/// The approximate KL divergence `mean((ρ − 1) − log ρ)` between the old and the new policy (the estimator CleanRL
/// logs) and the fraction of rows whose ratio left `[1 − ε, 1 + ε]`, from host log-probabilities.
pub fn approx_kl_and_clip_fraction(log_prob_new: &[f32], log_prob_old: &[f32], clip: f32) -> (f64, f64) {
    let n = log_prob_new.len().max(1) as f64;
    let (mut kl, mut clipped) = (0.0f64, 0usize);
    for (a, b) in log_prob_new.iter().zip(log_prob_old) {
        let log_ratio = (*a - *b) as f64;
        kl += log_ratio.exp() - 1.0 - log_ratio;
        clipped += usize::from((log_ratio.exp() - 1.0).abs() > clip as f64);
    }
    (kl / n, clipped as f64 / n)
}
