//! The Gymnasium adapter against Gymnasium itself and against the native envs (feature `python`; needs a Python with
//! `gymnasium[classic-control,mujoco]`, `ale-py` and `opencv-python-headless`, found through `PYTHONEXECUTABLE`).
#![cfg(feature = "python")]

use frl_envs::python::GymEnv;
use frl_envs::{Action, BoxDtype, Env, EnvError, Kwargs, Space, make, make_native};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

/// Replays native transitions through `gym:<id>` from the same states: obs, reward and flags must agree.
fn replay_against_native(id: &str, actions: impl Fn(&mut Xoshiro256PlusPlus) -> Action) {
    let mut native = make_native(id).unwrap();
    let mut gym = GymEnv::make(id, &Kwargs::new()).unwrap();
    assert_eq!(gym.observation_space(), native.observation_space(), "{id}");
    assert_eq!(gym.action_space(), native.action_space(), "{id}");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let (mut ends, mut truncations, mut checked) = (0, 0, 0);
    for episode in 0..12u64 {
        native.reset(Some(episode)).unwrap();
        gym.reset(Some(episode)).unwrap();
        // every third episode starts close to the time limit, so truncation is exercised too
        let limit = if id == "Pendulum-v1" { 200 } else { 500 };
        let mut elapsed = if episode % 3 == 2 { limit - 5 } else { 0 };
        native.set_state(&native.state(), elapsed).unwrap();
        loop {
            let state = native.state();
            gym.set_unwrapped_state(&state, elapsed).unwrap();
            let action = actions(&mut rng);
            let a = native.step(&action).unwrap();
            let b = gym.step(&action).unwrap();
            elapsed += 1;
            checked += 1;
            for (x, y) in a.obs.iter().zip(&b.obs) {
                assert!(
                    close(*x as f64, *y as f64),
                    "{id} from {state:?} with {action:?}: obs {:?} vs {:?}",
                    a.obs,
                    b.obs
                );
            }
            assert!(close(a.reward, b.reward), "{id}: reward {} vs {}", a.reward, b.reward);
            assert_eq!((a.terminated, a.truncated), (b.terminated, b.truncated), "{id} from {state:?}");
            if a.terminated || a.truncated {
                ends += 1;
                truncations += a.truncated as usize;
                break;
            }
        }
    }
    assert_eq!(ends, 12);
    assert!(truncations >= 4, "{id}: {truncations} truncations");
    assert!(checked > 100, "{id}: only {checked} steps");
}

#[test]
fn native_spaces_equal_gymnasium_spaces() {
    for id in frl_envs::NATIVE_IDS {
        let native = make_native(id).unwrap();
        let gym = make(&format!("gym:{id}")).unwrap();
        assert_eq!(native.observation_space(), gym.observation_space(), "{id} observation space");
        assert_eq!(native.action_space(), gym.action_space(), "{id} action space");
    }
}

#[test]
fn cartpole_through_gymnasium_matches_native() {
    replay_against_native("CartPole-v1", |rng| Action::Discrete(rng.random_range(0..2)));
}

#[test]
fn pendulum_through_gymnasium_matches_native() {
    replay_against_native("Pendulum-v1", |rng| Action::Continuous(vec![rng.random_range(-2.5f32..2.5)]));
}

#[test]
fn registry_resolves_gym_ids_and_seeds_reproduce() {
    let mut a = make("gym:CartPole-v1").unwrap();
    let mut b = make("gym:CartPole-v1").unwrap();
    assert_eq!(a.id(), "gym:CartPole-v1");
    assert_eq!(a.reset(Some(3)).unwrap().0, b.reset(Some(3)).unwrap().0);
    assert_ne!(a.reset(Some(4)).unwrap().0, b.reset(Some(5)).unwrap().0);
    let mut kwargs = Kwargs::new();
    kwargs.insert("g".into(), 3.0.into());
    let mut light = frl_envs::make_with("gym:Pendulum-v1", &kwargs).unwrap();
    light.reset(Some(0)).unwrap();
    let err = frl_envs::make_with("gym:Pendulum-v1", &[("gravity".to_string(), 3.0.into())].into_iter().collect())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gym:Pendulum-v1") && err.contains("gravity"), "{err}");
}

#[test]
fn seaquest_ram_through_keyword_arguments_in_the_id() {
    let mut env = make("gym:ALE/Seaquest-v5?obs_type=ram").unwrap();
    assert_eq!(env.action_space(), Space::Discrete(18));
    assert_eq!((env.observation_space().flat_dim(), env.observation_space().dtype()), (128, BoxDtype::U8));
    let (obs, _) = env.reset(Some(1)).unwrap();
    assert_eq!(obs.len(), 128);
    let mut again = make("gym:ALE/Seaquest-v5?obs_type=ram").unwrap();
    assert_eq!(again.reset(Some(1)).unwrap().0, obs);
}

#[test]
fn seaquest_steps_with_u8_frames() {
    let mut env = make("gym:ALE/Seaquest-v5").unwrap();
    assert_eq!(env.action_space(), Space::Discrete(18));
    let space = env.observation_space();
    assert_eq!(space, Space::image(&[210, 160, 3]));
    assert_eq!(space.dtype(), BoxDtype::U8);
    let (obs, _) = env.reset(Some(1)).unwrap();
    assert_eq!(obs.len(), 210 * 160 * 3);
    let mut distinct = std::collections::BTreeSet::new();
    for t in 0..50 {
        let step = env.step(&Action::Discrete(t % 18)).unwrap();
        assert_eq!(step.obs.len(), 210 * 160 * 3);
        assert!(step.obs.iter().all(|&x| (0.0..=255.0).contains(&x) && x.fract() == 0.0));
        assert!(step.info.contains_key("lives"), "{:?}", step.info);
        distinct.extend(step.obs.iter().map(|&x| x as u8));
    }
    assert!(distinct.len() > 5, "a blank screen: {distinct:?}");
    let err = env.step(&Action::Discrete(18)).unwrap_err();
    assert!(matches!(err, EnvError::InvalidAction { .. }), "{err}");
}

#[test]
fn atari_preset_stacks_four_84x84_gray_frames() {
    let mut env = make("atari:Pong").unwrap();
    assert_eq!(env.observation_space(), Space::image(&[4, 84, 84]));
    assert_eq!(env.action_space(), Space::Discrete(6));
    let (obs, _) = env.reset(Some(0)).unwrap();
    assert_eq!(obs.len(), 4 * 84 * 84);
    let step = env.step(&Action::Discrete(1)).unwrap();
    assert_eq!(step.obs.len(), 4 * 84 * 84);
    // frame k+1 of the old stack is frame k of the new one
    let frame = 84 * 84;
    assert_eq!(&step.obs[..3 * frame], &obs[frame..]);
}

#[test]
fn half_cheetah_steps_with_box_actions() {
    let mut env = make("gym:HalfCheetah-v5").unwrap();
    match env.action_space() {
        Space::Box { shape, low, high, .. } => {
            assert_eq!(shape, vec![6]);
            assert!(low.iter().all(|&x| x == -1.0) && high.iter().all(|&x| x == 1.0));
        }
        other => panic!("action space {other:?}"),
    }
    assert_eq!(env.observation_space().flat_dim(), 17);
    let (first, _) = env.reset(Some(0)).unwrap();
    let mut total = 0.0;
    let mut obs = first.clone();
    for t in 0..20 {
        let a = (0..6).map(|i| ((t * 6 + i) as f32 * 0.37).sin()).collect();
        let s = env.step(&Action::Continuous(a)).unwrap();
        assert_eq!(s.obs.len(), 17);
        assert!(s.obs.iter().all(|x| x.is_finite()));
        total += s.reward;
        obs = s.obs;
    }
    assert_ne!(obs, first);
    assert!(total.is_finite() && total != 0.0);
}

#[test]
fn bad_ids_and_actions_are_errors_that_name_the_env() {
    let err = make("gym:NoSuchEnv-v0").err().unwrap().to_string();
    assert!(err.contains("gym:NoSuchEnv-v0") && err.contains("NoSuchEnv"), "{err}");
    let mut cartpole = make("gym:CartPole-v1").unwrap();
    let err = cartpole.step(&Action::Discrete(0)).unwrap_err();
    assert!(matches!(err, EnvError::NotReset("gym:CartPole-v1")), "{err}");
    cartpole.reset(Some(0)).unwrap();
    for bad in [Action::Discrete(2), Action::Continuous(vec![0.0])] {
        let err = cartpole.step(&bad).unwrap_err().to_string();
        assert!(err.contains("gym:CartPole-v1") && err.contains("invalid action"), "{err}");
    }
    let mut pendulum = make("gym:Pendulum-v1").unwrap();
    pendulum.reset(Some(0)).unwrap();
    for bad in [Action::Continuous(vec![f32::NAN]), Action::Continuous(vec![0.0, 1.0]), Action::Discrete(0)] {
        let err = pendulum.step(&bad).unwrap_err().to_string();
        assert!(err.contains("gym:Pendulum-v1") && err.contains("invalid action"), "{err}");
    }
    // the env still works after refused actions
    pendulum.step(&Action::Continuous(vec![0.5])).unwrap();
}

/// With an interpreter whose environment lacks gymnasium (an empty venv), making a Gymnasium env says how to install
/// it. The check runs in a child process: the interpreter's environment is fixed once it starts.
#[test]
fn missing_gymnasium_says_how_to_install_it() {
    if std::env::var_os("FRL_TEST_EMPTY_VENV_CHILD").is_some() {
        let err = make("gym:CartPole-v1").err().unwrap().to_string();
        assert!(err.contains("gymnasium") && err.contains("pip install"), "{err}");
        assert!(err.contains("gym:CartPole-v1"), "{err}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("empty");
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let made = std::process::Command::new(&python).args(["-m", "venv", "--without-pip"]).arg(&venv).status().unwrap();
    assert!(made.success(), "{python} -m venv failed");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "missing_gymnasium_says_how_to_install_it", "--nocapture", "--test-threads=1"])
        .env("FRL_TEST_EMPTY_VENV_CHILD", "1")
        .env("PYTHONEXECUTABLE", venv.join("bin").join("python"))
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn actors_can_stay_attached() {
    let mut env = make("gym:CartPole-v1").unwrap();
    let steps = frl_envs::attached(|| {
        env.reset(Some(0)).unwrap();
        let mut n = 0;
        let mut obs = Vec::new();
        while n < 300 {
            obs.clear();
            let t = env.step_into(&Action::Discrete(n % 2), &mut obs).unwrap();
            assert_eq!(obs.len(), 4);
            n += 1;
            if t.terminated || t.truncated {
                env.reset(None).unwrap();
            }
        }
        n
    });
    assert_eq!(steps, 300);
    // an env moves to another thread and steps there
    let moved = std::thread::spawn(move || {
        env.reset(Some(1)).unwrap();
        env.step(&Action::Discrete(0)).unwrap().obs.len()
    });
    assert_eq!(moved.join().unwrap(), 4);
}
