//! Collect → train → evaluate from Rust code, without the CLI: a CartPole dataset from a noisy scripted expert, a
//! behaviour-cloning agent with a Fourier head trained on it, and the trained policy evaluated by actor threads.
//!
//!     cargo run --release --example collect_train_eval [-- OUT_DIR]
//!
//! Everything goes under OUT_DIR (default: a temporary folder): `data/` (the dataset, readable by `frl dataset
//! info`) and `runs/bc-fourier/` (TensorBoard files, checkpoints, `summary.json`).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use frl_envs::BehaviourSpec;
use frl_learner::{TrainJob, TrainOptions, checkpoint};
use frl_rollout::collect::{CollectJob, collect};

fn main() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let out = std::env::args().nth(1).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let no_stop = || Arc::new(AtomicBool::new(false));

    // 1. Collect: 40 episodes of the scripted expert with 30% random actions, on 2 actor threads.
    let data = out.join("data");
    let mut job = CollectJob::new("CartPole-v1", 40, &data);
    job.policy = Some(BehaviourSpec::Expert { noise: 0.3 });
    job.actors = 2;
    let meta = collect(&job, no_stop(), false)?;
    println!("collected {} episodes, {} steps into {}", meta.episodes, meta.steps, data.display());

    // 2. Train: a job file's text (or `TrainJob::load(path)`), here behaviour cloning with a Fourier head.
    let text = format!(
        "name = \"bc-fourier\"\ndataset = \"{}\"\nruns_dir = \"{}\"\nseed = 1\nagent = \"bc\"\n\
         [bc]\nhidden = [64, 64]\nhead = {{ fourier = {{ frequencies = 2 }} }}\n\
         [train]\nsteps = 300\nbatch_size = 64\nlr = 1e-3\nwarmup_steps = 20\nlog_every = 50\n\
         [eval]\nepisodes = 5\nactors = 2\n",
        data.display(),
        out.join("runs").display()
    );
    let job = TrainJob::parse(&text)?;
    frl_agents::validate(&job)?;
    let options = TrainOptions { quiet: true, ..Default::default() };
    let summary = frl_agents::train(&job, &options, no_stop())?;
    println!(
        "trained {} steps: final loss {:.4}, run folder {}",
        summary.steps,
        summary.final_loss,
        summary.run_dir.display()
    );

    // 3. Evaluate the newest checkpoint (any agent kind loads the same way) on 20 new episodes.
    let (_, newest) =
        checkpoint::list(&summary.run_dir.join("checkpoints")).pop().expect("training saved a checkpoint");
    let loaded = frl_agents::load_policy(&newest, &burn::tensor::Device::flex(), &Default::default())?;
    let report = frl_learner::evaluate("CartPole-v1", loaded.factory, 20, 2, 7, no_stop())?;
    println!("evaluated {}: return {:.1} ± {:.1} over 20 episodes", newest.display(), report.mean, report.std);
    anyhow::ensure!(report.mean > 100.0, "the cloned expert should balance the pole (return {:.1})", report.mean);
    Ok(())
}
