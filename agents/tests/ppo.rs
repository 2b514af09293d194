//! PPO's arithmetic: GAE against a hand-computed rollout with a time limit and a termination inside it, the clipped
//! surrogate's value and gradient against finite differences, a head's log-probabilities and entropy against its PMF.

use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_agents::ppo::{
    RolloutSteps, approx_kl_and_clip_fraction, clipped_surrogate, entropy, gae, log_prob, value_loss,
};
use frl_heads::head::to_host;
use frl_heads::{Head, HeadConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn t1(v: &[f32], dev: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), dev)
}

#[test]
fn gae_matches_a_hand_computed_rollout_with_a_time_limit_and_a_termination() {
    // Steps 0-1: an episode cut by a time limit after step 1 (its final observation's value 10 bootstraps it);
    // steps 2-3: a new episode that terminates after step 3; step 4: a third episode, still running at the
    // rollout's end (bootstrapped from the next observation's value 5).
    let s = RolloutSteps {
        rewards: vec![1.0, 2.0, 0.5, 1.5, 3.0],
        values: vec![4.0, 6.0, 1.0, 2.0, 7.0],
        next_values: vec![6.0, 10.0, 2.0, 99.0, 5.0],
        terminated: vec![false, false, false, true, false],
        truncated: vec![false, true, false, false, false],
    };
    let (g, l) = (0.9f32, 0.8f32);
    let d = [1.0 + g * 6.0 - 4.0, 2.0 + g * 10.0 - 6.0, 0.5 + g * 2.0 - 1.0, 1.5 - 2.0, 3.0 + g * 5.0 - 7.0];
    let want = [d[0] + g * l * d[1], d[1], d[2] + g * l * d[3], d[3], d[4]];
    let (adv, ret) = gae(&s, g, l);
    for t in 0..5 {
        assert!((adv[t] - want[t]).abs() < 1e-5, "step {t}: {} vs {}", adv[t], want[t]);
        assert!((ret[t] - (want[t] + s.values[t])).abs() < 1e-5, "step {t}");
    }
}

#[test]
fn the_clipped_surrogate_and_its_gradient_match_finite_differences() {
    let dev = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(3);
    let n = 64;
    let old: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0..-0.1)).collect();
    // New log-probs around the old ones: some ratios inside the clip range, some beyond it on either side.
    let new: Vec<f32> = old.iter().map(|o| o + rng.random_range(-0.5..0.5)).collect();
    let adv: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let clip = 0.2f32;
    let host_loss = |x: &[f64]| -> f64 {
        let mut sum = 0.0;
        for i in 0..n {
            let r = (x[i] - old[i] as f64).exp();
            let a = adv[i] as f64;
            sum += -(r * a).min(r.clamp(1.0 - clip as f64, 1.0 + clip as f64) * a);
        }
        sum / n as f64
    };
    let x = t1(&new, &dev).require_grad();
    let loss = clipped_surrogate(x.clone(), t1(&old, &dev), t1(&adv, &dev), clip);
    let value = loss.clone().into_scalar::<f32>() as f64;
    let grad = to_host(x.grad(&loss.backward()).expect("a gradient"));
    let x64: Vec<f64> = new.iter().map(|&v| v as f64).collect();
    assert!((value - host_loss(&x64)).abs() < 1e-5, "{value} vs {}", host_loss(&x64));
    let eps = 1e-4;
    let mut inside = 0;
    for i in 0..n {
        let r = (x64[i] - old[i] as f64).exp();
        // Away from the kinks at 1 ± ε, where the derivative is not defined.
        if ((r - (1.0 - clip as f64)).abs() < 1e-3) || ((r - (1.0 + clip as f64)).abs() < 1e-3) {
            continue;
        }
        let (mut up, mut down) = (x64.clone(), x64.clone());
        up[i] += eps;
        down[i] -= eps;
        let numeric = (host_loss(&up) - host_loss(&down)) / (2.0 * eps);
        assert!((grad[i] as f64 - numeric).abs() < 1e-4, "row {i}: {} vs {numeric}", grad[i]);
        inside += usize::from(numeric != 0.0);
    }
    // Both regimes occur: rows whose clipped term wins get no gradient, the others do.
    assert!(inside > 0 && grad.contains(&0.0), "{grad:?}");
    let (kl, frac) = approx_kl_and_clip_fraction(&new, &old, clip);
    assert!(kl > 0.0 && frac > 0.0 && frac < 1.0, "{kl} {frac}");
}

#[test]
fn the_value_loss_clips_as_cleanrl_does() {
    let dev = Device::flex();
    let (v, old, ret) = (t1(&[1.0, 3.0], &dev), t1(&[0.0, 0.0], &dev), t1(&[2.0, 0.0], &dev));
    // Row 0: (1 − 2)² = 1; clipped V = 0.5 → (0.5 − 2)² = 2.25; max 2.25. Row 1: 9; clipped 0.5 → 0.25; max 9.
    let clipped = value_loss(v.clone(), old.clone(), ret.clone(), Some(0.5)).into_scalar::<f32>();
    assert!((clipped - 0.5 * (2.25 + 9.0) / 2.0).abs() < 1e-6, "{clipped}");
    let plain = value_loss(v, old, ret, None).into_scalar::<f32>();
    assert!((plain - 0.5 * (1.0 + 9.0) / 2.0).abs() < 1e-6, "{plain}");
}

#[test]
fn a_heads_log_probabilities_and_entropy_are_its_pmfs() {
    let dev = Device::flex();
    let mut rng = StdRng::seed_from_u64(5);
    for spec in ["linear", "{ fourier = { frequencies = 4 } }", "{ mixture = { components = 2 } }"] {
        let config: HeadConfig = spec.parse().unwrap();
        let head = config.init(8, 11, &mut rng, &dev).unwrap();
        let x: Vec<f32> = (0..5 * 8).map(|_| rng.random_range(-1.0..1.0)).collect();
        let features = Tensor::<2>::from_data(TensorData::new(x, [5, 8]), &dev);
        let actions: Vec<i64> = vec![0, 3, 5, 10, 7];
        let logits = head.forward(features.clone()).logits;
        let lp =
            to_host(log_prob(logits.clone(), Tensor::<1, Int>::from_data(TensorData::new(actions.clone(), [5]), &dev)));
        let h = to_host(entropy(logits));
        let pmf = to_host(head.pmf(features));
        for r in 0..5 {
            let p = &pmf[r * 11..(r + 1) * 11];
            assert!((lp[r] - p[actions[r] as usize].ln()).abs() < 1e-4, "{spec} row {r}");
            let want: f32 = -p.iter().map(|&q| if q > 0.0 { q * q.ln() } else { 0.0 }).sum::<f32>();
            assert!((h[r] - want).abs() < 1e-4, "{spec} row {r}: entropy {} vs {want}", h[r]);
            assert!(h[r] > 0.0 && h[r] <= (11f32).ln() + 1e-5);
        }
    }
}

/// A short online PPO job on CartPole: 2 env slots, rollouts of 64 steps, 2 epochs of 4 minibatches.
fn ppo_job(dir: &std::path::Path, name: &str, actors: usize, env_steps: u64) -> frl_learner::TrainJob {
    let text = format!(
        "name = \"{name}\"\nruns_dir = \"{}\"\nseed = 2\nagent = \"ppo\"\n[ppo]\nhidden = [32, 32]\nrollout_steps = 64\n\
         epochs = 2\nminibatches = 4\n[online]\nenv = \"CartPole-v1\"\nenv_steps = {env_steps}\nactors = {actors}\n\
         envs = 2\nrecord = true\n[train]\nlr = 1e-3\nwarmup_steps = 0\nlog_every = 8\ncheckpoint_every = 64\n\
         [train.optimizer]\nweight_decay = 0.0\ngrad_clip = 0.5\n[eval]\nepisodes = 10\nactors = 1\n",
        dir.join("runs").display()
    );
    let job = frl_learner::TrainJob::parse(&text).unwrap();
    frl_agents::validate(&job).unwrap();
    job
}

#[test]
fn ppo_trains_each_round_once_with_the_weights_that_collected_it() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = frl_learner::TrainOptions { quiet: true, ..Default::default() };
    let stop = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let job = ppo_job(dir.path(), "one", 1, 25_600);
    let s = frl_agents::train(&job, &quiet, stop()).unwrap();
    let o = s.online.clone().unwrap();
    // 200 rounds of 2 × 64 steps, each trained on by exactly 2 × 4 updates.
    let rounds = o.env_steps / 128;
    assert_eq!((o.env_steps % 128, s.steps), (0, rounds * 8), "{o:?}");
    // Every step was acted by the weights the learner held when it arrived (no newer policy trains on it), and
    // each round by the weights after the round before: the recorded versions step once per round.
    assert_eq!(o.mean_policy_lag, 0.0, "{o:?}");
    let rec = frl_dataset::dataset::Dataset::open(&s.run_dir.join("episodes")).unwrap();
    let max = rec.episodes.versions.iter().max().copied().unwrap();
    assert!(max + 1 >= rounds - 2 && max < rounds, "versions up to {max} in {rounds} rounds");
    // PPO's own scalars reach TensorBoard, and the action PMFs are scored.
    let tags: std::collections::BTreeSet<String> =
        frl_tensorboard::read_scalars(&s.run_dir).unwrap().into_iter().map(|e| e.tag).collect();
    for tag in [
        "train/policy_loss",
        "train/value_loss",
        "train/entropy",
        "train/approx_kl",
        "train/clip_fraction",
        "train/explained_variance",
    ] {
        assert!(tags.contains(tag), "{tag} missing from {tags:?}");
    }
    assert!(s.smoothness.is_finite(), "{}", s.smoothness);
    // It learns: CartPole's random policy returns about 22 (this run: 131.7).
    let eval = s.eval.clone().unwrap();
    assert!(eval.mean > 60.0, "{eval:?}");
    // The same job with 2 actors gives the same parameters.
    let two = frl_agents::train(&ppo_job(dir.path(), "two", 2, 25_600), &quiet, stop()).unwrap();
    let params = |run: &std::path::Path| {
        let (_, p) = frl_learner::checkpoint::list(&run.join("checkpoints")).pop().unwrap();
        let mut v: Vec<_> =
            frl_learner::checkpoint::load(&p).unwrap().model.into_values().map(|t| (t.name, t.data)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert!(params(&s.run_dir) == params(&two.run_dir), "1 and 2 actors trained different weights");
    // PPO learns on-policy only: without [online], or asynchronously, the job is refused.
    let mut offline = job.clone();
    offline.online = None;
    offline.dataset = dir.path().join("none");
    assert!(frl_agents::train(&offline, &quiet, stop()).is_err());
    let mut free = ppo_job(dir.path(), "async", 1, 1000);
    free.online.as_mut().unwrap().deterministic = false;
    free.online.as_mut().unwrap().envs = None;
    let e = frl_agents::train(&free, &quiet, stop()).unwrap_err().to_string();
    assert!(e.contains("on-policy"), "{e}");
}

/// Gymnasium's normalisers (CleanRL's wrappers) on fixed inputs, from `scripts/gen_ppo_norm_fixtures.py`.
fn norm_fixture() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppo_norm.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn running_statistics_equal_gymnasiums() {
    let fx = norm_fixture();
    let mut rms = frl_agents::ppo::RunningMeanStd::new(3);
    for (batch, want) in fx["batches"].as_array().unwrap().iter().zip(fx["stats"].as_array().unwrap()) {
        let rows: Vec<f32> = batch.as_array().unwrap().iter().flat_map(floats).map(|x| x as f32).collect();
        rms.update(&rows);
        for (got, want) in [(&rms.mean, floats(&want["mean"])), (&rms.var, floats(&want["var"]))] {
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{got:?} vs {want:?}");
            }
        }
        assert!((rms.count - want["count"].as_f64().unwrap()).abs() < 1e-9);
    }
}

#[test]
fn scaled_rewards_equal_gymnasiums_normalize_reward_across_fragments() {
    let fx = norm_fixture();
    let rewards: Vec<f32> = floats(&fx["rewards"]).into_iter().map(|r| r as f32).collect();
    let want = floats(&fx["scaled"]);
    let mut scale = frl_agents::ppo::RewardScale::new(fx["gamma"].as_f64().unwrap());
    // One episode, arriving in fragments of uneven lengths; the last ends it by a time limit.
    let (mut got, mut at) = (Vec::new(), 0);
    for len in [1usize, 63, 128, 7, 201] {
        let part = &rewards[at..at + len];
        let truncated: Vec<bool> = (0..len).map(|t| at + t + 1 == rewards.len()).collect();
        got.extend(scale.scale(9, part, &vec![false; len], &truncated));
        at += len;
    }
    assert_eq!(at, rewards.len());
    for (t, (g, w)) in got.iter().zip(&want).enumerate() {
        let w = w.clamp(-10.0, 10.0);
        assert!((*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0), "step {t}: {g} vs {w}");
    }
    // Large rewards early on are clipped to ±10 as CleanRL's TransformReward does.
    assert!(want.iter().any(|w| w.abs() > 10.0) || got.iter().all(|g| g.abs() <= 10.0));
}

#[test]
fn a_gaussian_policys_log_density_and_entropy_are_the_normal_distributions() {
    use burn::module::Param;
    let dev = Device::flex();
    let mut rng = StdRng::seed_from_u64(4);
    let spec = frl_learner::DataSpec {
        env: "test".into(),
        obs_dim: 3,
        action_space: frl_envs::Space::Box {
            low: vec![-2.0; 2],
            high: vec![2.0; 2],
            shape: vec![2],
            dtype: frl_envs::BoxDtype::F32,
        },
        obs_mean: vec![0.0; 3],
        obs_std: vec![1.0; 3],
        best_return: 0.0,
    };
    let config = frl_agents::ppo::PpoConfig {
        distribution: frl_agents::ppo::Distribution::Gaussian,
        activation: frl_agents::common::nets::Activation::Tanh,
        orthogonal_init: true,
        ..Default::default()
    };
    let agent = <frl_agents::ppo::Ppo as frl_learner::Trainable>::new(&config, &spec, &mut rng, &dev).unwrap();
    let mut g = agent.gaussian().unwrap().clone();
    g.log_std = Param::from_tensor(Tensor::from_data(TensorData::new(vec![-0.5f32, 0.7], [1, 2]), &dev));
    let obs: Vec<f32> = (0..5 * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    let acts: Vec<f32> = (0..5 * 2).map(|_| rng.random_range(-2.0..2.0)).collect();
    let o = Tensor::<2>::from_data(TensorData::new(obs.clone(), [5, 3]), &dev);
    let mean = to_host(g.mean(o.clone()).reshape([10]));
    let (lp, h) = g.log_prob_entropy(o, Tensor::from_data(TensorData::new(acts.clone(), [5, 2]), &dev));
    let (lp, h) = (to_host(lp), to_host(h));
    let log_std = [-0.5f64, 0.7];
    for r in 0..5 {
        let mut want_lp = 0.0;
        let mut want_h = 0.0;
        for j in 0..2 {
            let (m, s) = (mean[r * 2 + j] as f64, log_std[j].exp());
            let a = acts[r * 2 + j] as f64;
            want_lp += -0.5 * ((a - m) / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
            want_h += 0.5 + 0.5 * (2.0 * std::f64::consts::PI).ln() + s.ln();
        }
        assert!((lp[r] as f64 - want_lp).abs() < 1e-4, "row {r}: {} vs {want_lp}", lp[r]);
        assert!((h[r] as f64 - want_h).abs() < 1e-5, "row {r}: {} vs {want_h}", h[r]);
    }
}

#[test]
fn gaussian_ppo_with_normalisers_trains_on_pendulum_and_its_checkpoint_keeps_the_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"g\"\nruns_dir = \"{}\"\nseed = 3\nagent = \"ppo\"\n[ppo]\nhidden = [32, 32]\nactivation = \"tanh\"\n\
         orthogonal_init = true\ndistribution = \"gaussian\"\nrollout_steps = 256\nepochs = 4\nminibatches = 8\n\
         gamma = 0.9\nentropy_coef = 0.0\nnormalize_observations = true\nnormalize_rewards = true\n[online]\n\
         env = \"Pendulum-v1\"\nenv_steps = 20480\nactors = 1\nenvs = 2\n[train]\nlr = 1e-3\nwarmup_steps = 0\n\
         checkpoint_every = 400\n[train.optimizer]\nweight_decay = 0.0\ngrad_clip = 0.5\n[eval]\nepisodes = 4\nactors = 1\n",
        dir.path().join("runs").display()
    );
    let job = frl_learner::TrainJob::parse(&text).unwrap();
    frl_agents::validate(&job).unwrap();
    let quiet = frl_learner::TrainOptions { quiet: true, ..Default::default() };
    let s = frl_agents::train(&job, &quiet, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))).unwrap();
    assert_eq!(s.online.as_ref().unwrap().mean_policy_lag, 0.0);
    // The checkpoint holds the observation statistics of every acted step, and the reward statistics.
    let (_, newest) = frl_learner::checkpoint::list(&s.run_dir.join("checkpoints")).pop().unwrap();
    let ckpt = frl_learner::checkpoint::load(&newest).unwrap();
    let count = ckpt.model.get("obs_norm.count").expect("obs_norm.count").data[0] as f64;
    assert!((count - 20480.0).abs() < 1.0, "observation count {count}");
    assert!(ckpt.model.contains_key("reward_norm.var") && ckpt.model.contains_key("gaussian.log_std"));
    // The saved policy acts (its statistics loaded with it) and stays in the action bounds' env.
    let loaded = frl_agents::load_policy(&newest, &Device::flex(), &Default::default()).unwrap();
    assert!(loaded.factory.describe().contains("gaussian"), "{}", loaded.factory.describe());
    let eval = s.eval.clone().unwrap();
    assert!(eval.mean.is_finite() && eval.returns.len() == 4, "{eval:?}");
}

#[test]
fn orthogonal_layers_have_orthonormal_rows_or_columns_times_their_gain() {
    let dev = Device::flex();
    let mut rng = StdRng::seed_from_u64(9);
    for (d_in, d_out, gain) in [(17usize, 64usize, 2f64.sqrt()), (64, 64, 1.0), (64, 6, 0.01)] {
        let l = frl_agents::common::nets::orthogonal_linear(d_in, d_out, gain, &mut rng, &dev);
        let w = to_host(l.weight.val().reshape([d_in * d_out]));
        assert!(to_host(l.bias.unwrap().val()).iter().all(|&b| b == 0.0));
        // The shorter side's vectors are orthonormal: WᵀW (d_out ≤ d_in) or WWᵀ (d_in < d_out) is gain²·I.
        let (n, len) = (d_in.min(d_out), d_in.max(d_out));
        let v = |k: usize, i: usize| if d_out <= d_in { w[i * d_out + k] } else { w[k * d_out + i] } as f64;
        for a in 0..n {
            for b in 0..n {
                let dot: f64 = (0..len).map(|i| v(a, i) * v(b, i)).sum();
                let want = if a == b { gain * gain } else { 0.0 };
                assert!((dot - want).abs() < 1e-5 * gain.max(1.0), "{d_in}x{d_out} ({a}, {b}): {dot}");
            }
        }
    }
}

#[test]
fn explained_variance_is_cleanrls() {
    // numpy: 1 - np.var(y - p) / np.var(y) for y = [1, 2, 3, 4], p = [1.5, 2, 2.5, 4.5] → 1 - 0.171875 / 1.25.
    let ev = frl_agents::ppo::explained_variance(&[1.5, 2.0, 2.5, 4.5], &[1.0, 2.0, 3.0, 4.0]);
    assert!((ev - (1.0 - 0.171875 / 1.25)).abs() < 1e-12, "{ev}");
    assert!(frl_agents::ppo::explained_variance(&[0.0, 1.0], &[2.0, 2.0]).is_nan());
}

#[test]
fn treating_time_limits_as_terminations_changes_what_is_learned() {
    // Pendulum episodes only end by their 200-step limit: with `bootstrap_time_limits = false` every episode's
    // last step loses its bootstrap, so the same seed trains other weights.
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, bootstrap: bool| {
        let text = format!(
            "name = \"{name}\"\nruns_dir = \"{}\"\nseed = 1\nagent = \"ppo\"\n[ppo]\nhidden = [16]\nbins = 5\n\
             rollout_steps = 400\nepochs = 1\nminibatches = 2\nbootstrap_time_limits = {bootstrap}\n[online]\n\
             env = \"Pendulum-v1\"\nenv_steps = 800\nactors = 1\nenvs = 1\n[train]\nwarmup_steps = 0\n\
             checkpoint_every = 4\n[eval]\nepisodes = 1\nactors = 1\n",
            dir.path().join("runs").display()
        );
        let job = frl_learner::TrainJob::parse(&text).unwrap();
        let quiet = frl_learner::TrainOptions { quiet: true, ..Default::default() };
        let s =
            frl_agents::train(&job, &quiet, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))).unwrap();
        let (_, p) = frl_learner::checkpoint::list(&s.run_dir.join("checkpoints")).pop().unwrap();
        let ckpt = frl_learner::checkpoint::load(&p).unwrap();
        let mut v: Vec<_> = ckpt.model.into_values().map(|t| (t.name, t.data)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let (a, b, c) = (run("a", true), run("b", false), run("c", true));
    assert!(a == c, "the same job repeats");
    assert!(a != b, "the flag changed nothing");
}

/// A PPO job on Pendulum whose rounds (2 slots × 48 steps) end inside episodes (200 steps), with a learning rate
/// annealed to 0, both normalisers and a checkpoint due every 20 updates (rounds of 8).
fn resume_job(dir: &std::path::Path, name: &str, policy: &str, record: bool) -> frl_learner::TrainJob {
    let text = format!(
        "name = \"{name}\"\nruns_dir = \"{}\"\nseed = 5\nagent = \"ppo\"\n[ppo]\nhidden = [16, 16]\n{policy}\n\
         rollout_steps = 48\nepochs = 2\nminibatches = 4\ngamma = 0.9\nnormalize_observations = true\n\
         normalize_rewards = true\n[online]\nenv = \"Pendulum-v1\"\nenv_steps = 1920\nactors = 2\nenvs = 2\n\
         record = {record}\n[train]\nlr = 1e-3\nwarmup_steps = 0\ndecay = \"linear\"\nfinal_lr_fraction = 0.0\n\
         log_every = 4\ncheckpoint_every = 20\nkeep_checkpoints = 20\n[train.optimizer]\nweight_decay = 0.0\n\
         grad_clip = 0.5\n[eval]\nepisodes = 0\n",
        dir.join("runs").display()
    );
    let job = frl_learner::TrainJob::parse(&text).unwrap();
    frl_agents::validate(&job).unwrap();
    job
}

/// Every parameter, normaliser statistic and optimiser moment of a run's newest checkpoint, with where it stood.
fn final_state(run: &std::path::Path) -> (u64, frl_learner::OnlineProgress, Vec<(String, Vec<u32>)>) {
    let (step, path) = frl_learner::checkpoint::list(&run.join("checkpoints")).pop().unwrap();
    let c = frl_learner::checkpoint::load(&path).unwrap();
    let mut all: Vec<(String, Vec<u32>)> = c
        .model
        .into_values()
        .map(|t| (format!("model.{}", t.name), t.data.iter().map(|v| v.to_bits()).collect()))
        .chain(c.adam.into_values().map(|t| (format!("adam.{}", t.name), t.data.iter().map(|v| v.to_bits()).collect())))
        .collect();
    all.sort();
    (step, c.meta.online.unwrap(), all)
}

#[test]
fn a_stopped_ppo_run_resumes_bit_identically_continuing_its_episodes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = frl_learner::TrainOptions { quiet: true, ..Default::default() };
    let resume = frl_learner::TrainOptions { resume: true, quiet: true, ..Default::default() };
    let no_stop = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (policy, name) in
        [("distribution = \"gaussian\"", "gauss"), ("bins = 9\nhead = { fourier = { frequencies = 3 } }", "fourier")]
    {
        // Killed: a copy that lost its newest checkpoints resumes from an older one.
        let whole = resume_job(dir.path(), &format!("{name}-whole"), policy, false);
        frl_agents::train(&whole, &quiet, no_stop()).unwrap();
        let (step, end, bits) = final_state(&whole.run_dir());
        let saved = frl_learner::checkpoint::list(&whole.run_dir().join("checkpoints"));
        // Checkpoints fall at round ends (multiples of 8 updates) once one is due.
        let steps: Vec<u64> = saved.iter().map(|(s, _)| *s).collect();
        assert_eq!(steps, [24, 40, 64, 80, 104, 120, 144, 160], "{name}");
        let part = resume_job(dir.path(), &format!("{name}-part"), policy, false);
        let ckpts = part.run_dir().join("checkpoints");
        std::fs::create_dir_all(&ckpts).unwrap();
        let (_, from) = saved.iter().find(|(s, _)| *s == 104).unwrap();
        std::fs::copy(from, ckpts.join(from.file_name().unwrap())).unwrap();
        // Where it resumes, both slots are inside an episode.
        let at = frl_learner::checkpoint::load(from).unwrap().meta.online.unwrap();
        assert_eq!(at.slots.len(), 2, "{at:?}");
        assert!(at.slots.iter().all(|s| s.in_flight.as_ref().is_some_and(|f| f.steps > 0)), "{:?}", at.slots);
        frl_agents::train(&part, &resume, no_stop()).unwrap();
        let (step_b, end_b, bits_b) = final_state(&part.run_dir());
        assert_eq!((step, &end), (step_b, &end_b), "{name}: progress after resuming");
        assert_eq!(bits.len(), bits_b.len());
        for (a, b) in bits.iter().zip(&bits_b) {
            assert!(a == b, "{name}: {} differs after resuming", a.0);
        }
    }

    // Stopped by Ctrl-C after its checkpoint of update 64 (768 env steps: the recording holds episodes), the
    // recording kept: the same parameters and the same recorded episodes, step by step, as the run that was not
    // stopped.
    let policy = "distribution = \"gaussian\"";
    let whole = resume_job(dir.path(), "rec-whole", policy, true);
    frl_agents::train(&whole, &quiet, no_stop()).unwrap();
    let part = resume_job(dir.path(), "rec-part", policy, true);
    let stop = no_stop();
    let watcher = {
        let (stop, ckpts) = (stop.clone(), part.run_dir().join("checkpoints"));
        std::thread::spawn(move || {
            while frl_learner::checkpoint::list(&ckpts).iter().all(|(s, _)| *s < 64) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let first = frl_agents::train(&part, &quiet, stop).unwrap();
    watcher.join().unwrap();
    assert!(first.interrupted, "the run ended before the stop reached it");
    let stopped = final_state(&part.run_dir()).1;
    assert!(stopped.episodes >= 2 && stopped.env_steps < 1920, "{stopped:?}");
    frl_agents::train(&part, &resume, no_stop()).unwrap();
    let (a, b) = (final_state(&whole.run_dir()), final_state(&part.run_dir()));
    assert_eq!((a.0, &a.1), (b.0, &b.1));
    assert!(a.2 == b.2, "the parameters differ after a stop and resume");
    let open = |run: &std::path::Path| frl_dataset::dataset::Dataset::open(&run.join("episodes")).unwrap().episodes;
    let (ra, rb) = (open(&whole.run_dir()), open(&part.run_dir()));
    assert!(ra.episodes() >= 8, "{} episodes recorded", ra.episodes());
    assert!(ra == rb, "the recorded episodes differ after a stop and resume");
}

#[test]
fn an_episode_that_does_not_repeat_on_resume_is_given_up_and_counted_lost() {
    // A checkpoint whose slot 0 episode no longer matches what its env gives from the episode's seed and actions
    // (as after an env that is not deterministic): that slot begins its next episode, the steps it had are counted
    // lost, and the run goes on to its end.
    let dir = tempfile::tempdir().unwrap();
    let quiet = frl_learner::TrainOptions { quiet: true, ..Default::default() };
    let resume = frl_learner::TrainOptions { resume: true, quiet: true, ..Default::default() };
    let no_stop = || std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let policy = "distribution = \"gaussian\"";
    let whole = resume_job(dir.path(), "whole", policy, false);
    frl_agents::train(&whole, &quiet, no_stop()).unwrap();
    let (_, end, _) = final_state(&whole.run_dir());
    assert_eq!(end.lost_steps, 0);
    let (_, from) = frl_learner::checkpoint::list(&whole.run_dir().join("checkpoints"))
        .into_iter()
        .find(|(s, _)| *s == 104)
        .unwrap();
    let mut c = frl_learner::checkpoint::load(&from).unwrap();
    let online = c.meta.online.as_mut().unwrap();
    let flight = online.slots[0].in_flight.as_mut().expect("slot 0 is inside an episode at update 104");
    flight.fingerprint ^= 1;
    let lost = flight.steps as u64;
    assert!(online.slots[1].in_flight.is_some());
    let part = resume_job(dir.path(), "part", policy, false);
    let ckpts = part.run_dir().join("checkpoints");
    std::fs::create_dir_all(&ckpts).unwrap();
    let tensors =
        |m: std::collections::HashMap<String, frl_learner::params::NamedTensor>| m.into_values().collect::<Vec<_>>();
    let (model, adam) = (tensors(std::mem::take(&mut c.model)), tensors(std::mem::take(&mut c.adam)));
    frl_learner::checkpoint::save(&ckpts.join(from.file_name().unwrap()), &c.meta, &model, &adam).unwrap();
    frl_agents::train(&part, &resume, no_stop()).unwrap();
    let (_, end_b, _) = final_state(&part.run_dir());
    assert_eq!(end_b.lost_steps, lost, "{end_b:?}");
    assert_eq!(end_b.env_steps, end.env_steps, "the run did not reach its end");
}
