//! The learner with the Decision Transformer: overfitting, loss decrease on real data, checkpoints (the version 1
//! fixture included), NaN handling, job files.

mod common;

use common::{no_stop, serial};

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Device;
use frl_agents::dt::Dt;
use frl_agents::dt::{DecisionTransformerConfig, random_input};
use frl_agents::{ActingOverrides, load_policy, train};
use frl_heads::HeadConfig;
use frl_heads::head::to_host;
use frl_learner::checkpoint::{self, CheckpointMeta};
use frl_learner::params::named_params;
use frl_learner::{DataSpec, TrainJob, TrainOptions, Trainable, load_agent, lr_at};
use frl_rollout::collect::{CollectJob, collect};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn tiny_job(dir: &Path, name: &str, head: HeadConfig) -> TrainJob {
    let text = format!(
        r#"
name = "{name}"
dataset = "{}"
runs_dir = "{}"
seed = 7
agent = "dt"
[dt]
layers = 1
heads = 1
embed_dim = 32
context = 6
dropout = 0.0
max_episode_len = 50
bins = 16
[train]
steps = 300
batch_size = 12
lr = 3e-3
warmup_steps = 20
log_every = 20
plot_every = 100
checkpoint_every = 100
[train.optimizer]
weight_decay = 0.0
grad_clip = 1.0
[eval]
episodes = 1
actors = 1
"#,
        dir.join("data").display(),
        dir.join("runs").display()
    );
    let mut job: TrainJob = toml::from_str(&text).unwrap();
    edit_dt(&mut job, |m| m.head = head);
    job
}

/// The job's DT section.
fn dt(job: &TrainJob) -> DecisionTransformerConfig {
    job.agent_config().unwrap()
}

/// Changes the job's DT section.
fn edit_dt(job: &mut TrainJob, f: impl FnOnce(&mut DecisionTransformerConfig)) {
    let mut m = dt(job);
    f(&mut m);
    job.set_agent_config(&m).unwrap();
}

#[test]
fn overfits_a_tiny_dataset_with_each_head() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_pendulum(&dir.path().join("data"));
    let heads: [(&str, HeadConfig, f64); 3] = [
        ("linear", HeadConfig::Linear, 0.05),
        ("fourier", "{ fourier = { frequencies = 16 } }".parse().unwrap(), 0.05),
        ("mixture", "{ mixture = { components = 4, learned_weights = true } }".parse().unwrap(), 0.05),
    ];
    let mut failures = Vec::new();
    for (name, head, limit) in heads {
        let mut job = tiny_job(dir.path(), name, head);
        if name == "mixture" {
            // One learned width shared by all inputs sharpens more slowly than free logits.
            job.train.steps = 800;
        }
        let s = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop()).unwrap();
        // Chance level is ln(16) = 2.77 nats.
        eprintln!("{name}: loss {} -> {}", s.first_loss, s.final_loss);
        if s.final_loss >= limit {
            failures.push(format!("{name}: loss {} after {} steps (first {})", s.final_loss, s.steps, s.first_loss));
        }
        assert!(dir.path().join("runs").join(name).join("summary.json").exists());
    }
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn loss_decreases_on_collected_pendulum_data() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = CollectJob::new("Pendulum-v1", 6, &data);
    c.preset = Some(frl_envs::behaviour::Preset::Medium);
    collect(&c, no_stop(), false).unwrap();
    let mut job = tiny_job(dir.path(), "pendulum", "{ fourier = { frequencies = 8 } }".parse().unwrap());
    edit_dt(&mut job, |m| {
        m.context = 10;
        m.max_episode_len = 200;
        m.bins = 32;
    });
    job.train.steps = 120;
    job.train.lr = 1e-3;
    let s = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop()).unwrap();
    assert!(s.final_loss < 0.8 * s.first_loss, "loss went from {} to {}", s.first_loss, s.final_loss);
    let eval = s.eval.expect("a final evaluation");
    assert_eq!(eval.returns.len(), 1);
    assert_eq!(eval.lengths[0], 200);
}

#[test]
fn checkpoint_round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let job = tiny_job(dir.path(), "ckpt", "{ fourier = { frequencies = 6, gamma = 1e-4 } }".parse().unwrap());
    let (_, act) = common::pendulum_spaces();
    let spec = DataSpec {
        env: "Pendulum-v1".into(),
        obs_dim: 3,
        action_space: act,
        obs_mean: vec![0.1, -0.2, 0.3],
        obs_std: vec![1.0, 2.0, 3.0],
        best_return: -100.0,
    };
    let mut rng = StdRng::seed_from_u64(11);
    let agent = Dt::new(&dt(&job), &spec, &mut rng, &device).unwrap();
    let model = agent.model.clone();
    let meta = CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        format_version: checkpoint::FORMAT_VERSION,
        agent: "dt".into(),
        step: 42,
        job: job.clone(),
        data: spec,
        online: None,
        eval_return: None,
    };
    let path = dir.path().join(checkpoint::file_name(42));
    checkpoint::save(&path, &meta, &agent.params(), &[]).unwrap();
    let loaded = load_agent::<Dt>(&path, &device).unwrap();
    assert_eq!(loaded.meta, meta);
    let loaded = loaded.model;
    let input = random_input(2, 6, 3, 1, &device);
    let a = to_host(model.features(input.clone()));
    let b = to_host(loaded.model.features(input));
    assert_eq!(a, b);
    let names: Vec<String> = named_params(&model).into_iter().map(|p| p.name).collect();
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "parameter names must be unique: {names:?}");

    // A damaged file is refused with its name.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&path, bytes).unwrap();
    let err = load_agent::<Dt>(&path, &device).err().unwrap().to_string();
    assert!(err.contains("ckpt-00000042"), "{err}");
}

#[test]
fn nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_pendulum(&dir.path().join("data"));
    let mut job = tiny_job(dir.path(), "nan", HeadConfig::Linear);
    job.train.checkpoint_every = 5;
    job.train.poison_loss_at = Some(13);
    let err = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop())
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN at step 13") && err.contains("step 10"), "{err}");
    let ckpts = checkpoint::list(&job.run_dir().join("checkpoints"));
    let (step, path) = ckpts.last().unwrap();
    assert_eq!(*step, 10);
    let loaded = load_agent::<Dt>(path, &Device::flex()).unwrap();
    assert_eq!(loaded.meta.step, 10);

    // Without --resume an existing run is not overwritten.
    job.train.poison_loss_at = None;
    let err = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn resume_is_identical_to_an_uninterrupted_run() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    common::tiny_pendulum(&dir.path().join("data"));
    let mut whole = tiny_job(dir.path(), "whole", HeadConfig::Linear);
    edit_dt(&mut whole, |m| m.dropout = 0.1);
    whole.train.steps = 30;
    whole.train.checkpoint_every = 10;
    whole.train.keep_checkpoints = 3;
    train(&whole, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop()).unwrap();

    // A copy of the run that lost its last checkpoint (as if killed between steps 20 and 30), resumed.
    let mut part = whole.clone();
    part.name = "part".into();
    let ckpts = part.run_dir().join("checkpoints");
    std::fs::create_dir_all(&ckpts).unwrap();
    for (step, path) in checkpoint::list(&whole.run_dir().join("checkpoints")) {
        if step < 30 {
            std::fs::copy(&path, ckpts.join(path.file_name().unwrap())).unwrap();
        }
    }
    let s = train(&part, &TrainOptions { resume: true, quiet: true, ..Default::default() }, no_stop()).unwrap();
    assert_eq!(s.steps, 30);

    let last =
        |job: &TrainJob| checkpoint::load(&checkpoint::list(&job.run_dir().join("checkpoints")).last().unwrap().1);
    let (a, b) = (last(&whole).unwrap(), last(&part).unwrap());
    assert_eq!(a.meta.step, 30);
    assert_eq!(b.meta.step, 30);
    let sorted = |m: &HashMap<String, frl_learner::params::NamedTensor>| {
        let mut v: Vec<_> = m.values().cloned().collect();
        v.sort_by(|x, y| x.name.cmp(&y.name));
        v
    };
    for (x, y) in
        sorted(&a.model).iter().zip(sorted(&b.model).iter()).chain(sorted(&a.adam).iter().zip(sorted(&b.adam).iter()))
    {
        assert_eq!(x.name, y.name);
        assert!(x.data == y.data, "{} differs after resuming", x.name);
    }
    assert_eq!(a.model.len() + a.adam.len(), b.model.len() + b.adam.len());
}

#[test]
fn learning_rate_warms_up_then_decays_to_the_floor() {
    let job = tiny_job(Path::new("/tmp"), "lr", HeadConfig::Linear);
    let t = &job.train;
    assert!((lr_at(t, 10) - t.lr * 0.5).abs() < 1e-12);
    assert!((lr_at(t, 20) - t.lr).abs() < 1e-12);
    assert!((lr_at(t, t.steps) - t.lr * t.final_lr_fraction).abs() < 1e-12);
    assert!(lr_at(t, 100) > lr_at(t, 200));
    // Linear decay: a straight line from the peak to the floor.
    let linear = frl_learner::TrainConfig { decay: frl_learner::LrDecay::Linear, ..t.clone() };
    let mid = linear.warmup_steps + (linear.steps - linear.warmup_steps) / 2;
    let want = t.lr * t.final_lr_fraction + (t.lr - t.lr * t.final_lr_fraction) * 0.5;
    assert!((lr_at(&linear, mid) - want).abs() < 1e-12, "{} vs {want}", lr_at(&linear, mid));
    assert!((lr_at(&linear, linear.steps) - t.lr * t.final_lr_fraction).abs() < 1e-12);
}

#[test]
fn bad_job_files_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("job.toml");
    std::fs::write(&p, "name = \"x\"\ndataset = \"d\"\n[train]\nstepz = 3\n").unwrap();
    let e = format!("{:#}", TrainJob::load(&p).unwrap_err());
    assert!(e.contains("stepz") && e.contains("job.toml"), "{e}");
    std::fs::write(&p, "name = \"x\"\ndataset = \"d\"\n[train]\nlr = -1.0\n").unwrap();
    let e = format!("{:#}", TrainJob::load(&p).unwrap_err());
    assert!(e.contains("train.lr"), "{e}");
    std::fs::write(&p, "name = \"x\"\ndataset = \"nowhere\"\n").unwrap();
    let job = TrainJob::load(&p).unwrap();
    let e = format!("{:#}", train(&job, &TrainOptions::default(), no_stop()).unwrap_err());
    assert!(e.contains("nowhere"), "{e}");
}

#[test]
fn discrete_actions_train_and_act_in_cartpole() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = CollectJob::new("CartPole-v1", 10, &data);
    c.preset = Some(frl_envs::behaviour::Preset::Medium);
    collect(&c, no_stop(), false).unwrap();
    let mut job = tiny_job(dir.path(), "cartpole", "{ fourier = { frequencies = 2 } }".parse().unwrap());
    edit_dt(&mut job, |m| m.max_episode_len = 500);
    job.train.steps = 60;
    job.eval.episodes = 2;
    job.eval.actors = 2;
    let s = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop()).unwrap();
    // Two actions: chance is ln 2.
    assert!(s.final_loss < 0.9 * std::f64::consts::LN_2, "loss {}", s.final_loss);
    let eval = s.eval.unwrap();
    assert_eq!(eval.returns.len(), 2);
    assert!(eval.normalized.is_some());
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dt-v1")
        .join(name)
}

/// A checkpoint written by the Decision Transformer's own learner (format version 1, `scripts/gen_dt_v1_fixture.sh`)
/// loads as a `dt` agent and acts exactly as it did when it was written.
#[test]
fn version_1_checkpoint_loads_and_evaluates_as_it_did() {
    let p = load_policy(&fixture("ckpt-00000006.safetensors"), &Device::flex(), &ActingOverrides::default()).unwrap();
    assert_eq!((p.meta.agent.as_str(), p.meta.step, p.meta.data.env.as_str()), ("dt", 6, "Pendulum-v1"));
    let config: DecisionTransformerConfig = p.meta.job.agent_config().unwrap();
    assert_eq!((config.return_scale, config.bins, config.embed_dim), (500.0, 16, 16));
    assert_eq!(p.acting.target_return, Some(-300.0));
    let eval = frl_learner::evaluate("Pendulum-v1", p.factory, 2, 1, p.meta.job.eval.seed, no_stop()).unwrap();
    let then: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("eval.json")).unwrap()).unwrap();
    let then: Vec<f64> = then["returns"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(eval.returns, then);
}

/// The gemm kernel burn's CPU matrix products run here, as the retraining references are named: `avx512` where the
/// CPU has AVX-512 (gemm picks its kernel at run time), else `avx2`; `FRL_GEMM_KERNEL` names it for a build without
/// gemm's AVX-512 kernels (`scripts/gen_dt_v1_fixture.sh --retrained-avx2`).
fn gemm_kernel() -> String {
    if let Ok(kernel) = std::env::var("FRL_GEMM_KERNEL") {
        return kernel;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return "avx512".into();
    }
    "avx2".into()
}

/// The version 1 job retrained by today's learner gives the same parameters and moments bit for bit as the
/// reference retraining of its kind of CPU (`retrained-<kernel>.safetensors`: gemm's AVX-512 and AVX2 kernels round
/// differently). The version 1 checkpoint itself was the reference until the DT's dropout masks moved from burn's
/// sampler to the host; `scripts/gen_dt_v1_fixture.sh --retrained-avx512|--retrained-avx2` runs this test with
/// `FRL_BLESS_RETRAINED=1` to write a reference, only after a change meant to alter training's numbers.
#[test]
fn retraining_the_version_1_job_gives_the_same_bits() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = CollectJob::new("Pendulum-v1", 3, &data);
    c.preset = Some(frl_envs::behaviour::Preset::Medium);
    collect(&c, no_stop(), false).unwrap();
    let old = Dt::read_checkpoint(&fixture("ckpt-00000006.safetensors")).unwrap();
    // Version 1 kept one optimiser without a group name; it reads as group `model`.
    assert!(!old.adam.is_empty() && old.adam.keys().all(|k| k.starts_with("model.")));
    assert!(old.adam.contains_key("model.blocks.0.fc1.bias.m"), "{:?}", old.adam.keys().take(3).collect::<Vec<_>>());
    // The learner's own reader takes the current layout only, and says what it found.
    let e = format!("{:#}", checkpoint::load(&fixture("ckpt-00000006.safetensors")).err().unwrap());
    assert!(e.contains("frl-dt-checkpoint v1"), "{e}");
    let mut job = old.meta.job.clone();
    job.dataset = data;
    job.runs_dir = dir.path().join("runs");
    let s = train(&job, &TrainOptions { resume: false, quiet: true, ..Default::default() }, no_stop()).unwrap();
    assert_eq!(s.steps, 6);
    let newest = checkpoint::list(&job.run_dir().join("checkpoints")).last().unwrap().1.clone();
    let reference = fixture(&format!("retrained-{}.safetensors", gemm_kernel()));
    if std::env::var_os("FRL_BLESS_RETRAINED").is_some() {
        std::fs::copy(&newest, &reference).unwrap();
    }
    let new = checkpoint::load(&newest).unwrap();
    assert_eq!(new.meta.data, old.meta.data);
    let reference = checkpoint::load(&reference).unwrap();
    for (a, b) in [(&reference.model, &new.model), (&reference.adam, &new.adam)] {
        assert_eq!(a.len(), b.len());
        for (name, t) in a.iter() {
            assert!(b.get(name).is_some_and(|u| u.data == t.data), "{name} differs");
        }
    }
}
