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
    for kind in frl_agents::offline_kinds() {
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

/// A deterministic online C51 job on CartPole with 2 env slots (and its eval), written to `dir/<name>.toml`.
fn online_job(dir: &std::path::Path, name: &str, record: bool) -> std::path::PathBuf {
    let text = format!(
        "name = \"{name}\"\nruns_dir = \"{}\"\nseed = 3\nagent = \"dqn\"\n[dqn]\nhidden = [32]\natoms = 21\n\
         v_min = -20.0\nv_max = 20.0\nepsilon_decay_steps = 1500\ntarget_update_every = 40\n[online]\n\
         env = \"CartPole-v1\"\nenv_steps = 2500\nactors = 1\nenvs = 2\nlearning_starts = 300\n\
         updates_per_step = 0.25\nbroadcast_every = 3\nrecord = {record}\n[train]\nbatch_size = 32\nlog_every = 20\n\
         checkpoint_every = 100\n[eval]\nevery = 1000\nepisodes = 2\nactors = 1\n",
        dir.join("runs").display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Drives a `RemoteLearner` with `OnlineWorker`s (one per slot) as the Ray launcher does, fragments pushed in
/// reverse slot order; `kill` makes the worker of slot 1 die before round `kill` (and be replaced).
fn drive(job: &std::path::Path, kill: Option<u64>) -> frl_learner::TrainSummary {
    use frl_runners::remote::{OnlineWorker, RemoteLearner};
    use std::time::Duration;
    let mut learner = RemoteLearner::start(job, Some(2), false, true).unwrap();
    let plan = learner.plan(Duration::from_secs(60)).unwrap().expect("a plan");
    assert_eq!((plan.envs, plan.actors), (2, 2));
    let make = |slot: usize| OnlineWorker::new(learner.env_id(), plan.clone(), &[slot]).unwrap();
    let mut workers = [make(0), make(1)];
    for round in 0.. {
        let Ok(policy) = learner.policy_for(round, plan.lag, Duration::from_secs(60)) else { break };
        let (version, bytes) = policy.expect("the learner publishes within a minute");
        let mut fragments = Vec::new();
        for (slot, w) in workers.iter_mut().enumerate() {
            if kill == Some(round) && slot == 1 {
                *w = make(1);
                fragments.push((slot, Default::default(), Some("the actor died".to_string())));
                continue;
            }
            if w.version() != Some(version) {
                w.set_policy(&bytes, version).unwrap();
            }
            for f in w.round(round).unwrap() {
                fragments.push((f.slot, f.batch, f.failure));
            }
        }
        for (slot, batch, failure) in fragments.into_iter().rev() {
            learner.push(round, slot, batch, failure);
        }
    }
    learner.join().unwrap()
}

#[test]
fn actors_in_other_processes_give_the_in_process_run() {
    let dir = tempfile::tempdir().unwrap();
    let local = frl_agents::load_job(&online_job(dir.path(), "threads", true)).unwrap();
    let options = TrainOptions { quiet: true, ..Default::default() };
    let threads = frl_agents::train(&local, &options, Arc::new(AtomicBool::new(false))).unwrap();
    let remote = drive(&online_job(dir.path(), "remote", true), None);
    assert_eq!((remote.steps, remote.final_loss.to_bits()), (threads.steps, threads.final_loss.to_bits()));
    let params = |run: &std::path::Path| {
        let (_, path) = checkpoint::list(&run.join("checkpoints")).last().cloned().unwrap();
        let c = checkpoint::load(&path).unwrap();
        let mut v: Vec<_> = c.model.into_values().chain(c.adam.into_values()).map(|t| (t.name, t.data)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert!(params(&remote.run_dir) == params(&threads.run_dir), "the parameters differ");
    let scalars = |run: &std::path::Path| {
        let mut v: Vec<_> = frl_tensorboard::read_scalars(run)
            .unwrap()
            .into_iter()
            .filter(|s| !s.tag.ends_with("_per_sec"))
            .map(|s| (s.tag, s.step, s.value.to_bits()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(scalars(&remote.run_dir), scalars(&threads.run_dir));
    let episodes = |run: &std::path::Path| frl_dataset::dataset::Dataset::open(&run.join("episodes")).unwrap().episodes;
    assert_eq!(episodes(&remote.run_dir), episodes(&threads.run_dir));
    // A worker that dies loses its slot's episode in flight; its replacement numbers new episodes past every
    // earlier one, the run finishes and counts the failure, and no episode is recorded twice.
    let killed = drive(&online_job(dir.path(), "killed", true), Some(40));
    let o = killed.online.clone().unwrap();
    assert!(o.env_steps >= 2500 && o.actor_failures == 1, "{o:?}");
    // The steps of the episode given up are counted and are the ones the recording lacks beyond the running ends.
    let recorded = episodes(&killed.run_dir).steps() as u64;
    assert!(recorded + o.lost_steps <= o.env_steps && recorded + o.lost_steps + 2 * 500 >= o.env_steps, "{o:?}");
    assert!(o.lost_steps > 0, "the killed slot was inside an episode whose first fragments had arrived: {o:?}");
    let rec = episodes(&killed.run_dir);
    let mut indices: Vec<u64> = rec.tags.iter().map(|t| t.index).collect();
    indices.sort();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "an episode index recorded twice");
    assert_ne!(params(&killed.run_dir), params(&threads.run_dir));
}
