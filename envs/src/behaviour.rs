//! Behaviour policies for collecting datasets: random, the scripted expert with a noise knob, and a per-episode mixture
//! of noise levels; plus the D4RL-style presets built from them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::{Action, Space};
use rand::{Rng, RngCore};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::expert::{EXPERT_IDS, expert_action};
use crate::policy::{History, Policy, PolicyFactory};

/// Errors building a behaviour policy.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PolicyError {
    /// The env has no scripted expert.
    #[error("no scripted expert for `{id}`; experts exist for: {known}")]
    NoExpert {
        /// The env id.
        id: String,
        /// Ids that have one.
        known: String,
    },
    /// A noise level is out of range.
    #[error("noise {value} is out of range: {reason}")]
    Noise {
        /// The value given.
        value: f32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A policy string did not parse.
    #[error("unknown policy `{0}`; expected random, expert, expert:<noise>, or mixed")]
    Parse(String),
    /// A preset name did not parse.
    #[error("unknown preset `{0}`; expected expert, medium or mixed")]
    Preset(String),
}

/// Which behaviour policy collects the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum BehaviourSpec {
    /// Uniformly random actions.
    Random,
    /// The scripted expert with noise: epsilon-random for discrete actions (`noise` is epsilon), Gaussian for
    /// continuous ones (`noise` is the standard deviation in half-ranges of the action bounds), clipped to the bounds.
    Expert {
        /// Noise level (0 = the clean expert).
        #[serde(default)]
        noise: f32,
    },
    /// Each episode draws one of `levels` (or, with `random`, a uniformly random policy) and runs the noisy expert.
    Mixed {
        /// Noise levels to draw from.
        #[serde(default = "default_mixed_levels")]
        levels: Vec<f32>,
        /// Whether the random policy is one of the choices.
        #[serde(default = "default_true")]
        random: bool,
    },
}

fn default_mixed_levels() -> Vec<f32> {
    vec![0.0, 0.1, 0.3, 0.6]
}

fn default_true() -> bool {
    true
}

/// D4RL-style dataset presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The clean expert.
    Expert,
    /// The expert with the env's [`medium_noise`].
    Medium,
    /// Episodes from noise levels 0, 0.1, 0.3, 0.6 and the random policy, in equal shares.
    Mixed,
}

/// Noise of the `medium` preset per env, chosen so that the mean return lies between the random policy's and the
/// expert's (for MountainCarContinuous no noise level degrades the expert much).
pub fn medium_noise(env_id: &str) -> f32 {
    match env_id {
        "CartPole-v1" => 0.5,
        "Acrobot-v1" => 0.6,
        "Pendulum-v1" => 1.0,
        "MountainCar-v0" => 0.3,
        "MountainCarContinuous-v0" => 1.0,
        _ => 0.3,
    }
}

impl Preset {
    /// The behaviour policy of this preset for env `env_id`.
    pub fn behaviour(self, env_id: &str) -> BehaviourSpec {
        match self {
            Preset::Expert => BehaviourSpec::Expert { noise: 0.0 },
            Preset::Medium => BehaviourSpec::Expert { noise: medium_noise(env_id) },
            Preset::Mixed => BehaviourSpec::Mixed { levels: default_mixed_levels(), random: true },
        }
    }
}

impl FromStr for Preset {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "expert" => Ok(Preset::Expert),
            "medium" => Ok(Preset::Medium),
            "mixed" => Ok(Preset::Mixed),
            _ => Err(PolicyError::Preset(s.to_string())),
        }
    }
}

impl FromStr for BehaviourSpec {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "random" => return Ok(BehaviourSpec::Random),
            "expert" => return Ok(BehaviourSpec::Expert { noise: 0.0 }),
            "mixed" => return Ok(BehaviourSpec::Mixed { levels: default_mixed_levels(), random: true }),
            _ => {}
        }
        if let Some(noise) = s.strip_prefix("expert:") {
            let noise = noise.parse().map_err(|_| PolicyError::Parse(s.to_string()))?;
            return Ok(BehaviourSpec::Expert { noise });
        }
        Err(PolicyError::Parse(s.to_string()))
    }
}

impl fmt::Display for BehaviourSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BehaviourSpec::Random => write!(f, "random"),
            BehaviourSpec::Expert { noise } => write!(f, "expert:{noise}"),
            BehaviourSpec::Mixed { levels, random } => {
                let levels: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
                write!(f, "mixed[{}{}]", levels.join(","), if *random { ",random" } else { "" })
            }
        }
    }
}

impl BehaviourSpec {
    /// Checks the spec against an env and returns a factory for actors.
    pub fn factory(&self, env_id: &str, action_space: &Space) -> Result<Arc<dyn PolicyFactory>, PolicyError> {
        let discrete = matches!(action_space, Space::Discrete(_));
        let check = |noise: f32| -> Result<(), PolicyError> {
            if !noise.is_finite() || noise < 0.0 {
                return Err(PolicyError::Noise { value: noise, reason: "must be finite and >= 0" });
            }
            if discrete && noise > 1.0 {
                return Err(PolicyError::Noise { value: noise, reason: "is an epsilon for discrete actions: <= 1" });
            }
            Ok(())
        };
        match self {
            BehaviourSpec::Random => {}
            BehaviourSpec::Expert { noise } => check(*noise)?,
            BehaviourSpec::Mixed { levels, random } => {
                if levels.is_empty() && !random {
                    return Err(PolicyError::Noise { value: f32::NAN, reason: "mixed needs at least one level" });
                }
                levels.iter().try_for_each(|&l| check(l))?;
            }
        }
        // The same dynamics through Gymnasium (`gym:CartPole-v1`) use the native env's expert.
        let env_id = env_id.strip_prefix("gym:").filter(|base| EXPERT_IDS.contains(base)).unwrap_or(env_id);
        if !matches!(self, BehaviourSpec::Random) && !EXPERT_IDS.contains(&env_id) {
            return Err(PolicyError::NoExpert { id: env_id.to_string(), known: EXPERT_IDS.join(", ") });
        }
        Ok(Arc::new(BehaviourFactory { spec: self.clone(), env_id: env_id.to_string(), space: action_space.clone() }))
    }
}

struct BehaviourFactory {
    spec: BehaviourSpec,
    env_id: String,
    space: Space,
}

impl PolicyFactory for BehaviourFactory {
    fn make(&self) -> Box<dyn Policy> {
        Box::new(Behaviour {
            spec: self.spec.clone(),
            env_id: self.env_id.clone(),
            space: self.space.clone(),
            mode: Mode::Random,
        })
    }

    fn describe(&self) -> String {
        self.spec.to_string()
    }
}

/// What the current episode runs.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Random,
    Expert(f32),
}

struct Behaviour {
    spec: BehaviourSpec,
    env_id: String,
    space: Space,
    mode: Mode,
}

impl Policy for Behaviour {
    fn reset(&mut self, rng: &mut dyn RngCore) {
        self.mode = match &self.spec {
            BehaviourSpec::Random => Mode::Random,
            BehaviourSpec::Expert { noise } => Mode::Expert(*noise),
            BehaviourSpec::Mixed { levels, random } => {
                let choices = levels.len() + usize::from(*random);
                let k = rng.random_range(0..choices);
                levels.get(k).map_or(Mode::Random, |&l| Mode::Expert(l))
            }
        };
    }

    fn act(&mut self, history: &History<'_>, rng: &mut dyn RngCore) -> Action {
        match self.mode {
            Mode::Random => random_action(&self.space, rng),
            Mode::Expert(noise) => {
                let clean = expert_action(&self.env_id, history.current()).expect("checked by BehaviourSpec::factory");
                add_noise(clean, noise, &self.space, rng)
            }
        }
    }
}

/// A uniformly random action from `space`.
pub fn random_action(space: &Space, rng: &mut dyn RngCore) -> Action {
    match space {
        Space::Discrete(n) => Action::Discrete(rng.random_range(0..*n)),
        Space::Box { low, high, .. } => {
            Action::Continuous(low.iter().zip(high).map(|(&l, &h)| l + (h - l) * rng.random::<f32>()).collect())
        }
    }
}

/// Epsilon-random (discrete) or clipped Gaussian (continuous) noise around `action`.
pub fn add_noise(action: Action, noise: f32, space: &Space, rng: &mut dyn RngCore) -> Action {
    if noise <= 0.0 {
        return action;
    }
    match (action, space) {
        (Action::Discrete(a), Space::Discrete(n)) => {
            if rng.random::<f32>() < noise {
                Action::Discrete(rng.random_range(0..*n))
            } else {
                Action::Discrete(a)
            }
        }
        (Action::Continuous(mut a), Space::Box { low, high, .. }) => {
            for ((v, &l), &h) in a.iter_mut().zip(low).zip(high) {
                let std = noise * (h - l) / 2.0;
                let e: f32 = Normal::new(0.0, std).map_or(0.0, |d| d.sample(rng));
                *v = (*v + e).clamp(l, h);
            }
            Action::Continuous(a)
        }
        (a, _) => a,
    }
}
