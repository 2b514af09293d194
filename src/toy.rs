//! `frl toy` and its worker process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::Args;
use frl_heads::HeadConfig;
use frl_runners::args::{Overrides, positive};
use frl_toy::{self as toy, Dataset, Executor, RunSpec, ToyJob, ToyOutcome};

use crate::{load_toml, stop_flag};

/// Flags of `frl toy`.
#[derive(Args)]
pub struct ToyArgs {
    /// A TOML job file with the fields of the flags below; flags given on the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Datasets: gaussian, gmm2, beta (repeatable; default all three).
    #[arg(long = "dataset", value_name = "NAME")]
    pub datasets: Vec<Dataset>,
    /// Heads in job-file syntax, e.g. linear or '{ fourier = { frequencies = 12, gamma = 1e-6 } }' (repeatable;
    /// default: linear, Fourier per frequency × gamma, GMM with the paper's K).
    #[arg(long = "head", value_name = "SPEC")]
    pub heads: Vec<HeadConfig>,
    /// Fourier frequencies of the default head list (repeatable; default 12).
    #[arg(long = "frequencies", value_name = "N")]
    pub frequencies: Vec<usize>,
    /// Fourier regulariser weights of the default head list (repeatable; default 0 and 1e-6).
    #[arg(long = "gamma", value_name = "G")]
    pub gammas: Vec<f64>,
    /// Seeds (repeatable; default 1, 2, 3, 42).
    #[arg(long = "seed", value_name = "S")]
    pub seeds: Vec<u64>,
    /// Epochs per run (default 500).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Number of bins (default 50).
    #[arg(long)]
    pub bins: Option<usize>,
    /// Runs in parallel (default: one per core).
    #[arg(long, value_parser = positive::<usize>())]
    pub jobs: Option<usize>,
    /// Output folder for results.json, table.md, plots/ and per-run files (reruns resume from it).
    #[arg(long, default_value = "runs/toy")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Run the runs on threads of this process instead of one worker process each.
    #[arg(long)]
    pub threads: bool,
    /// Train nothing: write each planned run's starting point (data, initial parameters, batch order of every
    /// epoch) as JSON into this folder, for scripts/toy_torch_replay.py.
    #[arg(long, value_name = "DIR")]
    pub export_start: Option<PathBuf>,
}

/// Flags of the hidden `frl toy-run` (one run in a worker process).
#[derive(Args)]
pub struct ToyRunArgs {
    /// The run, as JSON.
    #[arg(long)]
    pub spec: String,
    /// Where to write the result JSON.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs the synthetic benchmark and prints its table.
pub fn run_toy(args: ToyArgs) -> anyhow::Result<ExitCode> {
    let job = match &args.config {
        Some(path) => load_toml::<ToyJob>(path)?,
        None => ToyJob::default(),
    };
    let job = Overrides::default()
        .list("datasets", args.datasets)?
        .list("heads", args.heads)?
        .list("frequencies", args.frequencies)?
        .list("gammas", args.gammas)?
        .list("seeds", args.seeds)?
        .set("epochs", args.epochs)?
        .set("bins", args.bins)?
        .set("jobs", args.jobs)?
        .apply(job)?;

    if let Some(dir) = &args.export_start {
        job.validate()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let device = frl_learner::backend::training_device();
        for spec in job.plan() {
            let replay = toy::replay::export(&spec, &device)?;
            let path = dir.join(format!("{}.json", spec.stem()));
            frl_dataset::fsutil::write_atomic(&path, &serde_json::to_vec(&replay)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }

    let stop = stop_flag("finished runs")?;

    let executor = if args.threads {
        Executor::Threads
    } else {
        Executor::Processes { program: std::env::current_exe().context("locating the frl executable")? }
    };
    match toy::run_job(&job, &args.out, stop, !args.quiet, &executor)? {
        ToyOutcome::Interrupted { done, total } => {
            eprintln!(
                "interrupted: {done} of {total} runs saved in {}; rerun the same command to resume",
                args.out.display()
            );
            Ok(ExitCode::from(130))
        }
        ToyOutcome::Done(report) => {
            println!("{}", toy::report::markdown_table(&report.cells));
            for c in &report.checks {
                println!("[{}] {}", if c.holds { "ok" } else { "FAILED" }, c.claim);
            }
            for note in toy::report::plateau_notes(&report.cells, report.job.bins) {
                println!("note: {note}");
            }
            let steps: usize = report.runs.iter().map(|r| r.steps).sum();
            let secs: f64 = report.runs.iter().map(|r| r.train_seconds).sum();
            println!(
                "\n{} runs ({} resumed), {} training steps, {:.3} ms/step per thread, wall {:.1} s",
                report.runs.len(),
                report.resumed_runs,
                steps,
                1e3 * secs / steps.max(1) as f64,
                report.wall_seconds
            );
            println!("results: {}", args.out.join("results.json").display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Trains one run and writes its result.
pub fn run_toy_worker(args: ToyRunArgs) -> anyhow::Result<ExitCode> {
    let spec: RunSpec = serde_json::from_str(&args.spec).context("parsing --spec")?;
    let result = toy::train::run(&spec, &AtomicBool::new(false))?;
    let json = serde_json::to_vec_pretty(&result)?;
    frl_dataset::fsutil::write_atomic(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}
