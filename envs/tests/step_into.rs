//! `Env::step_into` gives exactly what `Env::step` gives, for every native env.

use frl_envs::{Action, Space};

#[test]
fn step_into_matches_step() {
    for id in frl_envs::NATIVE_IDS {
        let (mut a, mut b) = (frl_envs::make(id).unwrap(), frl_envs::make(id).unwrap());
        assert_eq!(a.reset(Some(9)).unwrap().0, b.reset(Some(9)).unwrap().0);
        let mut obs = Vec::new();
        for i in 0..2000usize {
            let action = match a.action_space() {
                Space::Discrete(n) => Action::Discrete((i * 7 / 5) % n),
                Space::Box { .. } => Action::Continuous(vec![((i as f32) * 0.37).sin() * 2.0]),
            };
            let s = a.step(&action).unwrap();
            obs.clear();
            let t = b.step_into(&action, &mut obs).unwrap();
            assert_eq!(
                (s.obs.as_slice(), s.reward, s.terminated, s.truncated),
                (obs.as_slice(), t.reward, t.terminated, t.truncated),
                "{id} step {i}"
            );
            if s.terminated || s.truncated {
                assert_eq!(a.reset(Some(i as u64)).unwrap().0, b.reset(Some(i as u64)).unwrap().0);
            }
        }
        let bad = match a.action_space() {
            Space::Discrete(_) => Action::Continuous(vec![0.0]),
            Space::Box { .. } => Action::Discrete(0),
        };
        let before = obs.len();
        assert!(b.step_into(&bad, &mut obs).is_err(), "{id}");
        assert_eq!(obs.len(), before, "{id}: a refused action must not append an observation");
    }
}
