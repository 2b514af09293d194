//! Online fine-tuning of the Decision Transformer (ODT): the trajectory FIFO with hindsight returns-to-go, the
//! entropy bonus and its learned temperature, and an online run that starts from an offline checkpoint, fine-tunes
//! and resumes.

mod common;

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use common::{no_stop, pendulum_spaces, quiet, serial, tiny_pendulum};
use frl_agents as agents;
use frl_agents::dt::{ActionCoding, Dt, Normalizer, Windows};
use frl_dataset::dataset::Dataset;
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
use frl_envs::Action;
use frl_heads::head::to_host;
use frl_learner::checkpoint;
use frl_learner::params::NamedTensor;
use frl_learner::{AdamWConfig, Agent, DataSpec, Optimizers, TrainJob, Trainable};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn device() -> Device {
    Device::flex().autodiff()
}

/// Episodes of 1-d observations whose step `t` of episode `e` earns reward `10 e + t`.
fn episodes(first: usize, lengths: &[usize]) -> EpisodeBatch {
    let mut b = EpisodeBatch::new(3, 1);
    for (i, &len) in lengths.iter().enumerate() {
        let e = first + i;
        b.begin(&[e as f32, 0.0, 0.0]);
        for t in 0..len {
            b.record(
                &Action::Continuous(vec![0.5]),
                (10 * e + t) as f64,
                &[e as f32, t as f32, 0.0],
                false,
                t + 1 == len,
            );
        }
        b.finish(EpisodeTag { index: e as u64, seed: 0, policy_version: 0 });
    }
    b
}

#[test]
fn the_trajectory_fifo_relabels_returns_in_hindsight_and_drops_the_oldest_episodes() {
    let coding = ActionCoding::new(&pendulum_spaces().1, 8, 0.0, None).unwrap();
    let norm = Normalizer { obs_mean: vec![0.0; 3], obs_std: vec![1.0; 3], return_scale: 10.0 };
    let mut w = Windows::empty(3, &coding, 4, 100, Some(10));
    w.push(&episodes(0, &[3, 4]), &coding, &norm).unwrap();
    // Returns-to-go from the rewards each episode collected: episode 0 earns 0, 1, 2; episode 1 earns 10..=13.
    let want: Vec<f32> = [3.0f64, 3.0, 2.0, 46.0, 36.0, 25.0, 13.0].iter().map(|r| (r / 10.0) as f32).collect();
    assert_eq!(w.returns_to_go(), &want[..]);
    assert_eq!((w.episodes(), w.steps()), (2, 7));
    // 7 + 5 steps exceed the capacity of 10: the oldest episode leaves, whole.
    w.push(&episodes(2, &[5]), &coding, &norm).unwrap();
    assert_eq!((w.episodes(), w.steps()), (2, 9));
    assert_eq!(w.returns_to_go()[0], 4.6);
    assert_eq!(w.returns_to_go()[4], 11.0, "episode 2 earns 20..=24: 110 to go, scaled by 10");
    // An episode longer than the capacity still stays (the newest always does).
    w.push(&episodes(3, &[12]), &coding, &norm).unwrap();
    assert_eq!((w.episodes(), w.steps()), (1, 12));
    // Windows never cross an episode's end: every sampled window's real rows are from one episode.
    let mut w = Windows::empty(3, &coding, 4, 100, Some(100));
    w.push(&episodes(0, &[2, 6, 1]), &coding, &norm).unwrap();
    let batch = w.batch_at(&[0, 1, 2, 7, 8], &device());
    let rows = frl_agents::dt::int_to_host(batch.rows).unwrap();
    assert_eq!(rows, vec![0, 1, 4, 8, 9, 10, 11, 12, 16]);
    // Bad data changes nothing.
    let mut bad = episodes(5, &[2]);
    bad.rewards[0] = f32::NAN;
    assert!(w.push(&bad, &coding, &norm).is_err());
    assert_eq!((w.episodes(), w.steps()), (3, 9));
}

#[test]
fn best_that_fit_keeps_the_highest_returns_worst_first() {
    let b = episodes(0, &[3, 3, 5, 1]);
    let returns: Vec<f64> = b.iter().map(|e| e.episode_return()).collect();
    assert_eq!(returns, vec![3.0, 33.0, 110.0, 30.0]);
    // The two best (5 + 3 steps) fit in 8; the third best (1 step) would not.
    let best = b.best_that_fit(8);
    let kept: Vec<u64> = best.tags.iter().map(|t| t.index).collect();
    assert_eq!(kept, vec![1, 2]);
    let all = b.best_that_fit(100);
    let kept: Vec<u64> = all.tags.iter().map(|t| t.index).collect();
    assert_eq!(kept, vec![0, 3, 1, 2]);
    assert_eq!(all.steps(), 12);
    assert_eq!(best.episode(1).rewards, b.episode(2).rewards);
}

fn spec() -> DataSpec {
    DataSpec {
        env: "Pendulum-v1".into(),
        obs_dim: 3,
        action_space: pendulum_spaces().1,
        obs_mean: vec![0.0; 3],
        obs_std: vec![1.0; 3],
        best_return: 0.0,
    }
}

fn tiny_dt(entropy: Option<(f64, f64)>) -> Dt {
    let mut config = frl_agents::dt::DecisionTransformerConfig {
        layers: 1,
        heads: 1,
        embed_dim: 16,
        context: 4,
        dropout: 0.0,
        max_episode_len: 50,
        bins: 16,
        bin_margin: 0.0,
        ..Default::default()
    };
    config.entropy =
        entropy.map(|(target, init_temperature)| frl_agents::dt::EntropyConfig { target, init_temperature });
    let mut rng = StdRng::seed_from_u64(5);
    Dt::new(&config, &spec(), &mut rng, &device()).unwrap()
}

/// Mean head entropy of `dt` over every real row of `windows`, on the host from the heads' PMFs.
fn host_entropy(dt: &Dt, windows: &Windows) -> f64 {
    let batch = windows.batch_at(&(0..windows.steps()).collect::<Vec<_>>(), &device());
    let f = dt.model.features(batch.input);
    let [b, k, d] = f.dims();
    let rows = f.reshape([b * k, d]).select(0, batch.rows);
    let model_h = dt.model.entropy(rows.clone()).into_scalar::<f32>() as f64;
    let pmf = to_host(frl_heads::Head::pmf(&dt.model.heads[0], rows));
    let n = pmf.len() / 16;
    let h = -pmf.iter().map(|&p| if p > 0.0 { (p as f64) * (p as f64).ln() } else { 0.0 }).sum::<f64>() / n as f64;
    assert!((model_h - h).abs() < 1e-4, "model entropy {model_h} vs host {h}");
    h
}

/// `steps` updates on `windows`; returns the agent and the last step's scalars.
fn train(mut dt: Dt, windows: &Windows, steps: u64, lr: f64) -> (Dt, HashMap<&'static str, f64>) {
    let mut opt = Optimizers::new(AdamWConfig { weight_decay: 0.0, grad_clip: 100.0, ..Default::default() });
    let mut scalars = HashMap::new();
    for step in 1..=steps {
        let mut rng = StdRng::seed_from_u64(step);
        let batch = dt.sample(windows, 16, &mut rng, &device());
        opt.begin_step(step, lr);
        let s = dt.train_step(batch, &mut opt).unwrap();
        scalars = s.into_iter().collect();
    }
    (dt, scalars)
}

fn temperature(dt: &Dt) -> f64 {
    dt.temperature.as_ref().unwrap().value().into_scalar::<f32>() as f64
}

#[test]
fn the_entropy_bonus_raises_entropy_and_the_temperature_follows_the_target() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    tiny_pendulum(&dir.path().join("data"));
    let data = Dataset::open(&dir.path().join("data")).unwrap();
    let base = tiny_dt(None);
    let windows = base.prepare(&data.episodes).unwrap();
    // Plain DT training sharpens the PMFs on these deterministic actions.
    let h0 = host_entropy(&base, &windows);
    let (sharp, s) = train(base, &windows, 60, 1e-2);
    let h1 = host_entropy(&sharp, &windows);
    assert!(h1 < h0 - 0.5, "entropy {h0} → {h1}");
    assert!(!s.contains_key("entropy"), "no entropy bonus without `entropy`: {s:?}");
    let params: HashMap<String, NamedTensor> = sharp.params().into_iter().map(|p| (p.name.clone(), p)).collect();
    assert!(!params.contains_key("temperature.log_value"));

    // The same network with a large fixed-ish temperature: the bonus makes the PMFs flatter again.
    let start = |entropy| tiny_dt(Some(entropy)).load_params(&params).unwrap();
    let warm = start((2.7, 5.0));
    assert!((temperature(&warm) - 5.0).abs() < 1e-5, "a checkpoint without a temperature starts at init");
    let (flat, s) = train(warm, &windows, 30, 1e-2);
    let h2 = host_entropy(&flat, &windows);
    assert!(h2 > h1 + 0.5, "entropy {h1} → {h2} under the bonus");
    assert!((s["entropy"] - h2).abs() < 0.5 && s["temperature"] > 0.0, "{s:?}");

    // The temperature grows while the entropy is below the target and shrinks while it is above.
    let ln16 = 16f64.ln();
    let (up, s) = train(start((ln16, 0.1)), &windows, 5, 1e-2);
    assert!(
        s["entropy"] < ln16 && temperature(&up) > 0.1,
        "entropy {} → temperature {}",
        s["entropy"],
        temperature(&up)
    );
    let (down, s) = train(start((0.05, 0.1)), &windows, 5, 1e-2);
    assert!(s["entropy"] > 0.05 && temperature(&down) < 0.1, "temperature {}", temperature(&down));
}

/// A tiny DT job on the tiny Pendulum data: offline with `steps`, or online (`[online]` appended) when `online` is
/// given.
fn dt_job(dir: &Path, name: &str, extra_dt: &str, online: Option<&str>) -> TrainJob {
    let online = online.map(|o| format!("[online]\nenv = \"Pendulum-v1\"\n{o}\n")).unwrap_or_default();
    let text = format!(
        "name = \"{name}\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nseed = 3\nagent = \"dt\"\n[dt]\nlayers = 1\nheads = 1\n\
         embed_dim = 16\ncontext = 4\ndropout = 0.0\nmax_episode_len = 200\nbins = 16\n{extra_dt}\n{online}\
         [train]\nsteps = 20\nbatch_size = 8\nlr = 1e-3\nwarmup_steps = 0\nlog_every = 5\nplot_every = 10\n\
         checkpoint_every = 10\n[eval]\nepisodes = 1\nactors = 1\n",
        dir.join("data").display(),
        dir.join("runs").display()
    );
    let job = TrainJob::parse(&text).unwrap();
    agents::validate(&job).unwrap();
    job
}

fn newest_params(run: &Path) -> (checkpoint::CheckpointMeta, HashMap<String, NamedTensor>) {
    let path = checkpoint::list(&run.join("checkpoints")).pop().unwrap().1;
    let c = checkpoint::load(&path).unwrap();
    (c.meta, c.model)
}

#[test]
fn an_online_dt_starts_from_its_offline_checkpoint_fine_tunes_and_resumes() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    tiny_pendulum(&dir.path().join("data"));
    let pre = agents::train(&dt_job(dir.path(), "pre", "", None), &quiet(false), no_stop()).unwrap();
    let (pre_meta, pre_params) = newest_params(&pre.run_dir);
    let init = format!("init = \"{}\"", pre.run_dir.display());
    let entropy = "entropy = { target = 1.5, init_temperature = 0.2 }\nexploration_return = -300.0";

    // No updates: the online agent is the offline one (and its data spec), the temperature at its start.
    let frozen = format!("{init}\nenv_steps = 400\nactors = 1\nreplay_capacity = 1000\nupdates_per_step = 0.0");
    let s = agents::train(&dt_job(dir.path(), "frozen", entropy, Some(&frozen)), &quiet(false), no_stop()).unwrap();
    assert_eq!(s.steps, 0);
    let (meta, params) = newest_params(&s.run_dir);
    assert_eq!(meta.data, pre_meta.data, "the normalisation comes from the offline checkpoint");
    for (name, p) in &pre_params {
        assert_eq!(params[name].data, p.data, "{name}");
    }
    let log_t = params["temperature.log_value"].data[0] as f64;
    assert!((log_t - 0.2f64.ln()).abs() < 1e-6, "{log_t}");

    // Fine-tuning: updates at the ratio, new weights reach the actors, the temperature trains.
    let tune = format!(
        "{init}\nenv_steps = 1600\nactors = 1\nreplay_capacity = 1000\nlearning_starts = 0\nupdates_per_step = 0.02\n\
         broadcast_every = 4\nrecord = true"
    );
    let job = dt_job(dir.path(), "tune", entropy, Some(&tune));
    let s = agents::train(&job, &quiet(false), no_stop()).unwrap();
    let o = s.online.clone().unwrap();
    assert!(o.env_steps >= 1600 && s.steps >= 16 && s.final_loss.is_finite(), "{s:?}");
    let (_, params) = newest_params(&s.run_dir);
    assert_ne!(params["temperature.log_value"].data[0] as f64, log_t);
    let changed = pre_params.iter().filter(|(n, p)| params[*n].data != p.data).count();
    assert!(changed > pre_params.len() / 2, "{changed} of {} parameters changed", pre_params.len());
    // The first broadcast (after 4 updates, i.e. the first episode) reaches the actor within the episodes that can
    // wait in the channel (2) or be in flight (1); 8 episodes leave room for it.
    let rec = Dataset::open(&s.run_dir.join("episodes")).unwrap();
    assert!(rec.episodes.tags.iter().any(|t| t.policy_version > 0), "{:?}", rec.episodes.tags);
    // The DT reads its context: it never changes version inside an episode.
    for ep in rec.episodes.iter() {
        assert!(
            ep.versions.len() == ep.len() && ep.versions.iter().all(|&v| v == ep.tag.policy_version),
            "{:?}",
            ep.tag
        );
    }
    // Resume to a larger budget: the counts continue and the temperature comes back from the checkpoint.
    let mut more = job.clone();
    more.online.as_mut().unwrap().env_steps = 2200;
    let s2 = agents::train(&more, &quiet(true), no_stop()).unwrap();
    let o2 = s2.online.clone().unwrap();
    assert!(o2.env_steps >= 2200 && o2.episodes > o.episodes && s2.steps > s.steps, "{o:?} then {o2:?}");

    // Bad starts are named: another kind, another env, a path without checkpoints.
    let dqn = format!(
        "name = \"dqn\"\nruns_dir = \"{}\"\nagent = \"dqn\"\n[online]\nenv = \"Pendulum-v1\"\n{init}\n",
        dir.path().join("runs").display()
    );
    let err = format!("{:#}", agents::train(&TrainJob::parse(&dqn).unwrap(), &quiet(false), no_stop()).unwrap_err());
    assert!(err.contains("online.init") && err.contains("holds a `dt` agent"), "{err}");
    let mut other_env = dt_job(dir.path(), "cartpole", "", Some(&frozen));
    other_env.online.as_mut().unwrap().env = "MountainCarContinuous-v0".into();
    other_env.dataset = Default::default();
    let err = format!("{:#}", agents::train(&other_env, &quiet(false), no_stop()).unwrap_err());
    assert!(err.contains("online.init") && err.contains("Pendulum-v1"), "{err}");
    let mut empty = dt_job(dir.path(), "empty", "", Some(&frozen));
    empty.online.as_mut().unwrap().init = Some(dir.path().join("data"));
    let err = format!("{:#}", agents::train(&empty, &quiet(false), no_stop()).unwrap_err());
    assert!(err.contains("online.init") && err.contains("no checkpoint"), "{err}");
}
