//! A `RolloutWorker` (the Rust side of the Ray launcher) acts with a checkpoint of every built-in agent.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use frl_learner::{TrainJob, TrainOptions, checkpoint};
use frl_rollout::collect::{CollectJob, collect};
use frl_runners::remote::RolloutWorker;

#[test]
fn a_rollout_worker_runs_every_agents_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cartpole");
    let mut c = CollectJob::new("CartPole-v1", 3, &data);
    c.preset = Some(frl_envs::behaviour::Preset::Medium);
    collect(&c, Arc::new(AtomicBool::new(false)), false).unwrap();
    for kind in frl_agents::kinds() {
        let section = if kind == "dt" { "layers = 1\nembed_dim = 16\ncontext = 4\n" } else { "hidden = [16]\n" };
        let text = format!(
            "name = \"{kind}\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nagent = \"{kind}\"\n[{kind}]\n{section}\
             [train]\nsteps = 4\nbatch_size = 4\n[eval]\nepisodes = 1\nactors = 1\n",
            data.display(),
            dir.path().join("runs").display()
        );
        let job = TrainJob::parse(&text).unwrap();
        let options = TrainOptions { quiet: true, ..Default::default() };
        frl_agents::train(&job, &options, Arc::new(AtomicBool::new(false))).unwrap();
        let (_, path) = checkpoint::list(&job.run_dir().join("checkpoints")).last().cloned().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut worker = RolloutWorker::new("CartPole-v1", "random", 5, 1).unwrap();
        worker.set_checkpoint(&bytes, 7, None).unwrap();
        let (description, version) = worker.policy();
        assert_eq!(version, 7);
        assert!(description != "random", "{kind}: {description}");
        assert_eq!(worker.episodes(0, 2).unwrap().episodes(), 2, "{kind}");
        // A checkpoint of another env is refused.
        let mut other = RolloutWorker::new("Acrobot-v1", "random", 5, 1).unwrap();
        let e = other.set_checkpoint(&bytes, 8, None).unwrap_err().to_string();
        assert!(e.contains("CartPole-v1"), "{e}");
        // Weights damaged on the way are refused, and the worker keeps acting with the ones it had.
        let mut damaged = bytes.clone();
        let i = damaged.len() - 100;
        damaged[i] ^= 0xFF;
        let e = format!("{:#}", worker.set_checkpoint(&damaged, 9, None).unwrap_err());
        assert!(e.contains("CRC-32C mismatch"), "{e}");
        assert_eq!(worker.policy().1, 7);
        // Only return-conditioned agents take a target return.
        let conditioned = worker.set_checkpoint(&bytes, 10, Some(5.0));
        assert_eq!(conditioned.is_ok(), kind == "dt", "{kind}: {conditioned:?}");
    }
}

#[test]
fn chunks_collected_with_reused_envs_equal_one_collection_and_cross_processes_as_columns() {
    use frl_runners::remote::columns;
    // Envs are kept between chunks; every episode still depends only on (seed, index).
    let worker = RolloutWorker::new("Pendulum-v1", "expert:0.3", 9, 2).unwrap();
    let mut parts = worker.episodes(0, 3).unwrap();
    parts.extend(&worker.episodes(3, 4).unwrap());
    let whole = RolloutWorker::new("Pendulum-v1", "expert:0.3", 9, 1).unwrap().episodes(0, 7).unwrap();
    assert_eq!(parts, whole);
    // Columns round-trip; f32 observations stay f32, u8 frames travel as one byte per value.
    for u8_obs in [false, true] {
        let mut batch = whole.clone();
        if u8_obs {
            batch.observations.iter_mut().for_each(|x| *x = (x.abs() * 30.0).round().min(255.0));
        }
        let c = columns::to_columns(&batch, u8_obs);
        let (_, obs_bytes, dtype) = c.data.iter().find(|(n, ..)| *n == "observations").unwrap();
        assert_eq!(
            (obs_bytes.len(), *dtype),
            (batch.observations.len() * if u8_obs { 1 } else { 4 }, if u8_obs { "u8" } else { "f32" })
        );
        let back = columns::from_columns(c.obs_dim, c.act_dim, |name| {
            c.data.iter().find(|(n, ..)| *n == name).map(|(_, b, d)| (b.clone(), d.to_string()))
        })
        .unwrap();
        assert_eq!(back, batch);
    }
}
