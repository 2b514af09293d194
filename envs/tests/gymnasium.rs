//! Native classic-control envs against Gymnasium: every recorded transition replayed from the same state
//! (fixtures from scripts/gen_env_fixtures.py), plus reset distributions and seeding.

use std::collections::BTreeMap;

use frl_envs::{Action, NATIVE_IDS, Space, make, make_native};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(untagged)]
enum RecordedAction {
    Discrete(usize),
    Continuous(Vec<f32>),
}

#[derive(Deserialize)]
struct Transition {
    state: Vec<f64>,
    elapsed: usize,
    action: RecordedAction,
    obs: Vec<f64>,
    reward: f64,
    terminated: bool,
    truncated: bool,
}

#[derive(Deserialize)]
struct Fixtures {
    gymnasium: String,
    envs: BTreeMap<String, Vec<Transition>>,
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()) + 1e-7
}

#[test]
fn every_native_env_matches_gymnasium_step_for_step() {
    let path = std::env::var("FRL_ENV_FIXTURE").unwrap_or_else(|_| {
        format!(
            "{}/tests/fixtures/classic_control.json",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let fixtures: Fixtures = serde_json::from_str(&text).unwrap();
    assert!(fixtures.gymnasium.starts_with('1'), "fixtures from gymnasium {}", fixtures.gymnasium);
    for id in NATIVE_IDS {
        let rows = fixtures.envs.get(id).unwrap_or_else(|| panic!("no fixtures for {id}"));
        assert!(rows.len() >= 1000, "{id}: only {} transitions", rows.len());
        assert!(rows.iter().any(|r| r.truncated), "{id}: fixtures hold no truncation");
        let mut env = make_native(id).unwrap();
        for (i, r) in rows.iter().enumerate() {
            env.set_state(&r.state, r.elapsed).unwrap();
            let action = match &r.action {
                RecordedAction::Discrete(a) => Action::Discrete(*a),
                RecordedAction::Continuous(v) => Action::Continuous(v.clone()),
            };
            let step = env.step(&action).unwrap();
            let ctx = format!("{id} transition {i} from state {:?}, action {action:?}", r.state);
            assert_eq!(step.obs.len(), r.obs.len(), "{ctx}");
            for (a, b) in step.obs.iter().zip(&r.obs) {
                assert!(close(*a as f64, *b), "{ctx}: obs {:?} vs gymnasium {:?}", step.obs, r.obs);
            }
            assert!(close(step.reward, r.reward), "{ctx}: reward {} vs gymnasium {}", step.reward, r.reward);
            assert_eq!(step.terminated, r.terminated, "{ctx}: terminated");
            assert_eq!(step.truncated, r.truncated, "{ctx}: truncated");
        }
        if id != "Pendulum-v1" {
            assert!(rows.iter().any(|r| r.terminated), "{id}: fixtures hold no termination");
        }
    }
}

fn moments(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

#[test]
fn reset_distributions_match_gymnasium() {
    // (id, per-component (low, high) of the uniform initial state; equal bounds mean a constant)
    let cases: [(&str, Vec<(f64, f64)>); 5] = [
        ("CartPole-v1", vec![(-0.05, 0.05); 4]),
        ("Acrobot-v1", vec![(-0.1, 0.1); 4]),
        ("Pendulum-v1", vec![(-std::f64::consts::PI, std::f64::consts::PI), (-1.0, 1.0)]),
        ("MountainCar-v0", vec![(-0.6, -0.4), (0.0, 0.0)]),
        ("MountainCarContinuous-v0", vec![(-0.6, -0.4), (0.0, 0.0)]),
    ];
    let n = 4000;
    for (id, bounds) in cases {
        let mut env = make_native(id).unwrap();
        let states: Vec<Vec<f64>> = (0..n)
            .map(|s| {
                env.reset(Some(s)).unwrap();
                env.state()
            })
            .collect();
        for (d, (low, high)) in bounds.iter().enumerate() {
            let column: Vec<f64> = states.iter().map(|s| s[d]).collect();
            assert!(column.iter().all(|v| (*low..=*high).contains(v)), "{id}[{d}] outside [{low}, {high}]");
            let (mean, std) = moments(&column);
            let (want_mean, want_std) = ((low + high) / 2.0, (high - low) / 12f64.sqrt());
            let se = want_std / (n as f64).sqrt();
            assert!((mean - want_mean).abs() <= 5.0 * se + 1e-12, "{id}[{d}] mean {mean} vs {want_mean}");
            assert!((std - want_std).abs() <= 0.05 * want_std + 1e-12, "{id}[{d}] std {std} vs {want_std}");
        }
    }
}

#[test]
fn same_seed_same_episode_and_bad_input_is_an_error() {
    for id in NATIVE_IDS {
        let mut a = make_native(id).unwrap();
        let mut b = make_native(id).unwrap();
        let action = match a.action_space() {
            Space::Discrete(_) => Action::Discrete(1),
            Space::Box { .. } => Action::Continuous(vec![0.5]),
        };
        assert!(b.step(&action).is_err(), "{id}: step before reset must fail");
        assert_eq!(a.reset(Some(3)).unwrap().0, b.reset(Some(3)).unwrap().0);
        for _ in 0..50 {
            assert_eq!(a.step(&action).unwrap(), b.step(&action).unwrap());
        }
        assert_ne!(a.reset(Some(4)).unwrap().0, b.reset(Some(5)).unwrap().0, "{id}: different seeds, same start");
        let bad = match a.action_space() {
            Space::Discrete(n) => vec![Action::Discrete(n), Action::Continuous(vec![0.0])],
            Space::Box { .. } => {
                vec![Action::Continuous(vec![f32::NAN]), Action::Continuous(vec![0.0, 0.0]), Action::Discrete(0)]
            }
        };
        for action in bad {
            let err = a.step(&action).unwrap_err().to_string();
            assert!(err.contains(id) && err.contains("invalid action"), "{err}");
        }
        assert!(a.set_state(&[0.0; 7], 0).is_err());
    }
    let err = make("CartPole-v9").err().unwrap().to_string();
    assert!(err.contains("CartPole-v9") && err.contains("CartPole-v1"), "{err}");
}

#[cfg(not(feature = "python"))]
#[test]
fn gymnasium_ids_need_the_python_build() {
    let err = make("gym:CartPole-v1").err().unwrap().to_string();
    assert!(err.contains("gym:CartPole-v1") && err.contains("--features python"), "{err}");
    let err = make("atari:Pong").err().unwrap().to_string();
    assert!(err.contains("atari:Pong") && err.contains("python"), "{err}");
}

#[test]
fn native_envs_refuse_kwargs() {
    let mut kwargs = frl_envs::Kwargs::new();
    kwargs.insert("g".into(), 9.81.into());
    let err = frl_envs::make_with("Pendulum-v1", &kwargs).err().unwrap().to_string();
    assert!(err.contains("Pendulum-v1") && err.contains("\"g\""), "{err}");
    // Keyword arguments written into the id reach the same check, read as JSON values; malformed ones are named.
    let err = frl_envs::make("Pendulum-v1?g=9.81&name=x").err().unwrap().to_string();
    assert!(err.contains("\"g\":9.81") && err.contains("\"name\":\"x\""), "{err}");
    let err = frl_envs::make("Pendulum-v1?g").err().unwrap().to_string();
    assert!(err.contains("`g` is not key=value"), "{err}");
}
