//! A vector of environments stepped together with Gymnasium's `NextStep` auto-reset.

use crate::env::{Action, Env, EnvError, Info};
use crate::space::Space;

/// The result of stepping every sub-environment once.
#[derive(Debug, Clone, PartialEq)]
pub struct VecStep {
    /// One observation per sub-environment.
    pub obs: Vec<Vec<f32>>,
    /// Rewards.
    pub rewards: Vec<f64>,
    /// Terminated flags.
    pub terminated: Vec<bool>,
    /// Truncated flags.
    pub truncated: Vec<bool>,
    /// Per-environment information.
    pub infos: Vec<Info>,
}

/// Steps several environments in lock-step on the calling thread.
///
/// Auto-reset follows Gymnasium's `autoreset_mode=NextStep`: the step that ends an episode returns the final
/// observation with `terminated`/`truncated` set; the *next* call ignores that sub-environment's action, resets it
/// and returns the first observation of the new episode with reward 0 and both flags false.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
    needs_reset: Vec<bool>,
}

impl VecEnv {
    /// Wraps `envs`, which must share their spaces.
    pub fn new(envs: Vec<Box<dyn Env>>) -> Result<Self, EnvError> {
        if let Some(first) = envs.first() {
            let (obs, act) = (first.observation_space(), first.action_space());
            if let Some(other) = envs.iter().find(|e| e.observation_space() != obs || e.action_space() != act) {
                return Err(EnvError::SpaceMismatch { first: first.id(), env: other.id() });
            }
        }
        let n = envs.len();
        Ok(Self { envs, needs_reset: vec![false; n] })
    }

    /// Number of sub-environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Whether there are no sub-environments.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// Observation space of one sub-environment.
    pub fn single_observation_space(&self) -> Option<Space> {
        self.envs.first().map(|e| e.observation_space())
    }

    /// Action space of one sub-environment.
    pub fn single_action_space(&self) -> Option<Space> {
        self.envs.first().map(|e| e.action_space())
    }

    /// Resets every sub-environment; sub-environment `i` gets seed `seed + i` when a seed is given.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<Vec<Vec<f32>>, EnvError> {
        self.needs_reset.iter_mut().for_each(|r| *r = false);
        crate::attached(|| {
            self.envs.iter_mut().enumerate().map(|(i, e)| Ok(e.reset(seed.map(|s| s + i as u64))?.0)).collect()
        })
    }

    /// Steps every sub-environment with its action.
    pub fn step(&mut self, actions: &[Action]) -> Result<VecStep, EnvError> {
        if actions.len() != self.envs.len() {
            return Err(EnvError::InvalidAction {
                env: self.envs.first().map(|e| e.id()).unwrap_or("vector env"),
                action: format!("{} actions", actions.len()),
                reason: format!("expected one per sub-environment ({})", self.envs.len()),
            });
        }
        crate::attached(|| self.step_all(actions))
    }

    fn step_all(&mut self, actions: &[Action]) -> Result<VecStep, EnvError> {
        let n = self.envs.len();
        let mut out = VecStep {
            obs: Vec::with_capacity(n),
            rewards: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            infos: Vec::with_capacity(n),
        };
        for ((env, action), needs_reset) in self.envs.iter_mut().zip(actions).zip(self.needs_reset.iter_mut()) {
            if *needs_reset {
                let (obs, info) = env.reset(None)?;
                *needs_reset = false;
                out.obs.push(obs);
                out.rewards.push(0.0);
                out.terminated.push(false);
                out.truncated.push(false);
                out.infos.push(info);
            } else {
                let step = env.step(action)?;
                *needs_reset = step.terminated || step.truncated;
                out.obs.push(step.obs);
                out.rewards.push(step.reward);
                out.terminated.push(step.terminated);
                out.truncated.push(step.truncated);
                out.infos.push(step.info);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classic::{CartPole, Pendulum};

    #[test]
    fn next_step_autoreset_follows_an_episode_end() {
        let mut v = VecEnv::new(vec![Box::new(CartPole::new()), Box::new(CartPole::new())]).unwrap();
        let first = v.reset(Some(10)).unwrap();
        let mut single = CartPole::new();
        assert_eq!(first[1], single.reset(Some(11)).unwrap().0);
        // always push right: the pole falls within a few dozen steps
        let push = [Action::Discrete(1), Action::Discrete(1)];
        let mut steps = 0;
        let end = loop {
            let s = v.step(&push).unwrap();
            steps += 1;
            assert!(steps < 500, "no episode ended");
            if s.terminated[0] {
                break s;
            }
        };
        assert_eq!(end.rewards[0], 1.0);
        let after = v.step(&push).unwrap();
        assert!(!after.terminated[0] && !after.truncated[0]);
        assert_eq!(after.rewards[0], 0.0);
        // the reset observation is a fresh start: every component in [-0.05, 0.05]
        assert!(after.obs[0].iter().all(|x| x.abs() <= 0.05), "{:?}", after.obs[0]);
        assert!(v.step(&push[..1]).is_err());
        assert!(VecEnv::new(vec![Box::new(CartPole::new()), Box::new(Pendulum::new())]).is_err());
    }
}
