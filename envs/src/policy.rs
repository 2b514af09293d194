//! The [`Policy`] trait: what an actor asks for an action.

use crate::Action;
use rand::RngCore;

/// The episode so far, as a policy sees it: observations up to and including the current one, the actions taken and
/// the rewards received (one fewer than observations).
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Elements of one observation.
    pub obs_dim: usize,
    /// Observations `0..=t`, flat, row-major; the last row is the current observation.
    pub observations: &'a [f32],
    /// Elements of one action (1 for discrete actions).
    pub act_dim: usize,
    /// Actions `0..t`, flat; a discrete action is stored as its index.
    pub actions: &'a [f32],
    /// Rewards `0..t`.
    pub rewards: &'a [f32],
}

impl<'a> History<'a> {
    /// The current observation (the last row).
    pub fn current(&self) -> &'a [f32] {
        &self.observations[self.observations.len() - self.obs_dim..]
    }

    /// Steps taken so far in this episode.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// True before the first step.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }
}

/// Maps the episode so far to an action. One instance per actor; randomness comes from the caller's RNG so that an
/// episode is reproducible from its seed.
pub trait Policy: Send {
    /// Called at the start of every episode (e.g. to draw a per-episode noise level).
    fn reset(&mut self, _rng: &mut dyn RngCore) {}

    /// The action for the current observation.
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action;

    /// The action the env receives for `action` as the policy chose and the dataset records it: a Gaussian policy's
    /// sample clipped to the action bounds (Gymnasium's `ClipAction`), so that its log-probability is of the sample.
    fn env_action<'a>(&self, action: &'a Action) -> std::borrow::Cow<'a, Action> {
        std::borrow::Cow::Borrowed(action)
    }

    /// Whether the action depends on the current observation only (no per-episode state, no earlier steps): actors
    /// then switch such a policy to a newer version between two steps, not only between episodes.
    fn markov(&self) -> bool {
        false
    }
}

/// Builds fresh [`Policy`] instances: the shareable snapshot actors hold (behind an `Arc`) and rebuild from after a
/// restart or a new policy version.
pub trait PolicyFactory: Send + Sync {
    /// A new policy instance.
    fn make(&self) -> Box<dyn Policy>;

    /// A short description for logs and dataset metadata.
    fn describe(&self) -> String;
}

/// The action of a Markov policy for an observation (the caller's RNG for any randomness).
type ActFn = dyn Fn(&[f32], &mut dyn RngCore) -> Action + Send + Sync;

/// A Markov policy from a function of the current observation: a [`PolicyFactory`] whose instances share `act`.
#[derive(Clone)]
pub struct MarkovPolicy {
    describe: String,
    act: std::sync::Arc<ActFn>,
}

impl MarkovPolicy {
    /// A policy described as `describe` that takes `act(observation, rng)` at every step.
    pub fn new(
        describe: impl Into<String>,
        act: impl Fn(&[f32], &mut dyn RngCore) -> Action + Send + Sync + 'static,
    ) -> Self {
        Self { describe: describe.into(), act: std::sync::Arc::new(act) }
    }
}

impl PolicyFactory for MarkovPolicy {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(self.clone())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl Policy for MarkovPolicy {
    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        (self.act)(history.current(), rng)
    }

    fn markov(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_markov_policy_acts_on_the_current_observation_only() {
        let factory = MarkovPolicy::new("sign", |obs, _| Action::Discrete(usize::from(obs[0] > 0.0)));
        let mut policy = factory.make();
        let history = History { obs_dim: 1, observations: &[-5.0, 2.0], act_dim: 1, actions: &[0.0], rewards: &[1.0] };
        let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(0);
        assert_eq!(policy.act(&history, &mut rng), Action::Discrete(1));
        assert_eq!(factory.describe(), "sign");
    }
}
