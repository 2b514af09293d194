//! Fault injection for robustness runs: `chaos:<faults>:<id>` wraps the env `<id>` so that, counting the steps of
//! each env instance, every `panic@N`-th step panics, every `error@N`-th step returns an env error and every
//! `slow@N/MS`-th step sleeps MS milliseconds first; e.g. `chaos:panic@700,error@900,slow@50/20:CartPole-v1`.
//! Actors treat the panics and errors as failures (restart, count, `max_failures`), as they would a real one.

use std::time::Duration;

use crate::{Action, Env, EnvError, Info, Space, Step};

/// Id prefix of the fault-injecting wrapper.
pub const CHAOS_PREFIX: &str = "chaos:";

/// Which faults a [`Chaos`] env injects, by step period (0: never).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Panic on every this-many-th step.
    pub panic_every: u64,
    /// Return an error on every this-many-th step.
    pub error_every: u64,
    /// Sleep before every this-many-th step.
    pub slow_every: u64,
    /// How long a slow step sleeps.
    pub slow: Duration,
}

impl Faults {
    /// Parses `panic@N,error@N,slow@N/MS` (any subset, any order).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut f = Faults::default();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (kind, arg) = part.split_once('@').ok_or_else(|| format!("`{part}`: expected kind@N"))?;
            let number = |s: &str| {
                s.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{part}`: {s:?} is not a positive integer"))
            };
            match kind {
                "panic" => f.panic_every = number(arg)?,
                "error" => f.error_every = number(arg)?,
                "slow" => {
                    let (n, ms) = arg.split_once('/').ok_or_else(|| format!("`{part}`: expected slow@N/MS"))?;
                    f.slow_every = number(n)?;
                    f.slow = Duration::from_millis(number(ms)?);
                }
                other => return Err(format!("`{part}`: unknown fault `{other}` (panic, error, slow)")),
            }
        }
        Ok(f)
    }
}

/// An env that injects [`Faults`] into another.
pub struct Chaos {
    inner: Box<dyn Env>,
    faults: Faults,
    steps: u64,
}

impl Chaos {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn Env>, faults: Faults) -> Self {
        Chaos { inner, faults, steps: 0 }
    }
}

/// Splits `chaos:<faults>:<id>` into its faults and the wrapped id.
pub fn split(id: &str) -> Option<Result<(Faults, &str), String>> {
    let rest = id.strip_prefix(CHAOS_PREFIX)?;
    Some(match rest.split_once(':') {
        Some((spec, inner)) => Faults::parse(spec).map(|f| (f, inner)),
        None => Err(format!("`{id}`: expected chaos:<faults>:<env id>")),
    })
}

impl Env for Chaos {
    fn reset(&mut self, seed: Option<u64>) -> Result<(Vec<f32>, Info), EnvError> {
        self.inner.reset(seed)
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        self.steps += 1;
        let (n, f) = (self.steps, &self.faults);
        let hits = |every: u64| every > 0 && n.is_multiple_of(every);
        if hits(f.slow_every) {
            std::thread::sleep(f.slow);
        }
        if hits(f.panic_every) {
            panic!("chaos: injected panic at step {n} of {}", self.inner.id());
        }
        if hits(f.error_every) {
            return Err(EnvError::Injected { env: self.inner.id(), step: n });
        }
        self.inner.step(action)
    }

    fn observation_space(&self) -> Space {
        self.inner.observation_space()
    }

    fn action_space(&self) -> Space {
        self.inner.action_space()
    }

    fn id(&self) -> &'static str {
        self.inner.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_on_their_steps_and_bad_specs_are_named() {
        let (f, inner) = split("chaos:error@3,slow@2/1:CartPole-v1").unwrap().unwrap();
        assert_eq!(inner, "CartPole-v1");
        assert_eq!((f.error_every, f.slow_every, f.panic_every), (3, 2, 0));
        let mut env = Chaos::new(crate::make(inner).unwrap(), f);
        env.reset(Some(0)).unwrap();
        let a = Action::Discrete(0);
        assert!(env.step(&a).is_ok() && env.step(&a).is_ok());
        assert!(matches!(env.step(&a), Err(EnvError::Injected { step: 3, .. })));
        let f = Faults { panic_every: 1, ..Faults::default() };
        let mut env = Chaos::new(crate::make("CartPole-v1").unwrap(), f);
        env.reset(Some(0)).unwrap();
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.step(&a))).is_err());
        assert!(split("chaos:boom@3:CartPole-v1").unwrap().unwrap_err().contains("boom"));
        assert!(split("chaos:error@0:CartPole-v1").unwrap().unwrap_err().contains("positive"));
        assert!(split("chaos:error@3").unwrap().is_err());
        assert!(split("CartPole-v1").is_none());
    }
}
