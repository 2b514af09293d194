//! `frl`: the command-line tool over the frl libraries.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use frl_envs::BehaviourSpec;
use frl_envs::behaviour::Preset;
use frl_heads::HeadConfig;
use frl_rollout::collect::CollectJob;
use frl_runners::args::{Overrides, positive};
use frl_toy::{self as toy, Dataset, Executor, RunSpec, ToyJob, ToyOutcome};

mod learn;

// Training allocates and frees many small tensors per step; mimalloc's thread-local heaps keep that cheap and
// free of contention between worker threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "frl", version, about = "Reinforcement learning with Fourier heads")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the synthetic benchmark of the Fourier-head paper and print its table.
    Toy(ToyArgs),
    /// Train and evaluate one synthetic-benchmark run (the worker process of `frl toy`).
    #[command(hide = true)]
    ToyRun(ToyRunArgs),
    /// Time components against each other in one run.
    #[command(subcommand)]
    Bench(frl_runners::bench::cli::BenchCommand),
    /// List environments.
    #[command(subcommand)]
    Envs(EnvsCommand),
    /// Collect behaviour-policy episodes into a dataset with actor threads.
    Collect(CollectArgs),
    /// Inspect datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Train an agent from a job file: offline from a dataset, or online (`[online]`) from its own actors.
    Train(learn::TrainArgs),
    /// Evaluate a checkpoint with actor threads.
    Eval(learn::EvalArgs),
    /// Collect Pendulum data, train DTs with a linear and a Fourier head, evaluate and compare them.
    Demo(learn::DemoArgs),
    /// List the devices this build can train on (`--device cpu|gpu|software-gpu`) and the hardware behind each.
    Devices {
        /// Exit with status 1 unless a hardware GPU adapter is usable (for scripts choosing a Vulkan driver).
        #[arg(long)]
        require_gpu: bool,
    },
}

#[derive(Args)]
struct CollectArgs {
    /// A TOML job file with the fields of the flags below; flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Env id, e.g. Pendulum-v1.
    #[arg(long)]
    env: Option<String>,
    /// Behaviour policy: random, expert, expert:<noise> or mixed.
    #[arg(long)]
    policy: Option<BehaviourSpec>,
    /// Noise of the expert policy (epsilon for discrete actions, Gaussian std in half-ranges for continuous ones).
    #[arg(long)]
    noise: Option<f32>,
    /// D4RL-style preset instead of --policy: expert, medium or mixed.
    #[arg(long)]
    preset: Option<Preset>,
    /// Episodes to collect.
    #[arg(long)]
    episodes: Option<u64>,
    /// Actor threads.
    #[arg(long)]
    actors: Option<usize>,
    /// Base seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Dataset folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Add the episodes to an existing dataset.
    #[arg(long)]
    append: bool,
    /// Steps per shard file.
    #[arg(long)]
    shard_steps: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Validate a dataset and print its summary.
    Info {
        /// Dataset folder.
        path: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a Minari dataset (arrow format, e.g. ~/.minari/datasets/<id>) into an frl dataset.
    ImportMinari {
        /// The Minari dataset folder (or its `data` folder).
        src: PathBuf,
        /// The new frl dataset folder.
        #[arg(long)]
        out: PathBuf,
        /// Env id, when the dataset has no env_spec.
        #[arg(long)]
        env: Option<String>,
    },
}

#[derive(Args)]
struct ToyArgs {
    /// A TOML job file with the fields of the flags below; flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Datasets: gaussian, gmm2, beta (repeatable; default all three).
    #[arg(long = "dataset", value_name = "NAME")]
    datasets: Vec<Dataset>,
    /// Heads in job-file syntax, e.g. linear or '{ fourier = { frequencies = 12, gamma = 1e-6 } }' (repeatable;
    /// default: linear, Fourier per frequency × gamma, GMM with the paper's K).
    #[arg(long = "head", value_name = "SPEC")]
    heads: Vec<HeadConfig>,
    /// Fourier frequencies of the default head list (repeatable; default 12).
    #[arg(long = "frequencies", value_name = "N")]
    frequencies: Vec<usize>,
    /// Fourier regulariser weights of the default head list (repeatable; default 0 and 1e-6).
    #[arg(long = "gamma", value_name = "G")]
    gammas: Vec<f64>,
    /// Seeds (repeatable; default 1, 2, 3, 42).
    #[arg(long = "seed", value_name = "S")]
    seeds: Vec<u64>,
    /// Epochs per run (default 500).
    #[arg(long)]
    epochs: Option<usize>,
    /// Number of bins (default 50).
    #[arg(long)]
    bins: Option<usize>,
    /// Runs in parallel (default: one per core).
    #[arg(long, value_parser = positive::<usize>())]
    jobs: Option<usize>,
    /// Output folder for results.json, table.md, plots/ and per-run files (reruns resume from it).
    #[arg(long, default_value = "runs/toy")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Run the runs on threads of this process instead of one worker process each.
    #[arg(long)]
    threads: bool,
    /// Train nothing: write each planned run's starting point (data, initial parameters, batch order of every
    /// epoch) as JSON into this folder, for scripts/toy_torch_replay.py.
    #[arg(long, value_name = "DIR")]
    export_start: Option<PathBuf>,
}

#[derive(Args)]
struct ToyRunArgs {
    /// The run, as JSON.
    #[arg(long)]
    spec: String,
    /// Where to write the result JSON.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum EnvsCommand {
    /// Print the ids of the native environments with their spaces.
    List,
    /// Build an environment by id (native, `gym:<id>`, `atari:<game>`), reset it and print its spaces.
    Info {
        /// Env id.
        id: String,
        /// Constructor keyword arguments as a JSON object (Gymnasium envs), e.g. '{"g": 9.81}'.
        #[arg(long)]
        kwargs: Option<String>,
    },
}

/// Lets a closed stdout end the process quietly, as it ends other Unix tools (`frl dataset info DIR | head -3`),
/// instead of a panic in `println!`: Rust ignores SIGPIPE by default, so writes fail with EPIPE.
#[cfg(unix)]
fn die_quietly_on_closed_pipe() {
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: restores the default disposition of one signal, before any thread exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

/// Keeps memory the allocator got from the OS instead of returning it after a delay.
///
/// A training step frees and allocates the same multi-megabyte tensors again and again; returned memory comes back
/// zeroed page by page by the kernel on the next step, which cost a quarter of a Decision Transformer step on the CPU.
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mi_option_set(option: i32, value: std::ffi::c_long);
    }
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (checked by tests/cli.rs); −1: never purge.
    const MI_OPTION_PURGE_DELAY: i32 = 15;
    // SAFETY: sets one allocator option, before any thread exists.
    unsafe {
        mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    #[cfg(unix)]
    die_quietly_on_closed_pipe();
    #[cfg(feature = "python")]
    // SAFETY: first statement of main, before any thread exists.
    unsafe {
        frl_envs::python::use_active_venv()
    };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Toy(args) => run_toy(args),
        Command::ToyRun(args) => run_toy_worker(args),
        Command::Bench(command) => frl_runners::bench::cli::run(command),
        Command::Envs(EnvsCommand::List) => list_envs(),
        Command::Envs(EnvsCommand::Info { id, kwargs }) => env_info(&id, kwargs.as_deref()),
        Command::Collect(args) => run_collect(args),
        Command::Train(args) => learn::run_train(args),
        Command::Eval(args) => learn::run_eval(args),
        Command::Demo(args) => learn::run_demo_cmd(args),
        Command::Devices { require_gpu } => devices(require_gpu),
        Command::Dataset(DatasetCommand::Info { path, json }) => dataset_info(&path, json),
        Command::Dataset(DatasetCommand::ImportMinari { src, out, env }) => {
            frl_dataset::dataset::import_minari(&src, &out, env.as_deref(), 50_000)
                .map_err(anyhow::Error::from)
                .and_then(|_| dataset_info(&out, false))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_toml<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading job file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("job file {}: {e}", path.display()))
}

/// Installs the Ctrl-C handler: the first press sets the returned flag, the second exits at once.
fn stop_flag(what: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: stopping after saving {what} (press Ctrl-C again to quit now)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

fn run_collect(args: CollectArgs) -> anyhow::Result<ExitCode> {
    let job: CollectJob = match &args.config {
        Some(path) => load_toml(path)?,
        None => {
            let (Some(env), Some(episodes), Some(out)) = (&args.env, args.episodes, &args.out) else {
                anyhow::bail!("give --env, --episodes and --out (or a --config job file)");
            };
            CollectJob::new(env, episodes, out)
        }
    };
    let mut job = Overrides::default()
        .set("env", args.env)?
        .set("policy", args.policy)?
        .set("preset", args.preset)?
        .set("episodes", args.episodes)?
        .set("actors", args.actors)?
        .set("seed", args.seed)?
        .set("out", args.out)?
        .set("append", args.append.then_some(true))?
        .set("shard_steps", args.shard_steps)?
        .apply(job)?;
    if let Some(noise) = args.noise {
        match job.policy.clone().unwrap_or(BehaviourSpec::Expert { noise: 0.0 }) {
            BehaviourSpec::Expert { .. } => job.policy = Some(BehaviourSpec::Expert { noise }),
            other => anyhow::bail!("--noise applies to --policy expert, not {other}"),
        }
    }

    let stop = stop_flag("the episodes collected so far")?;
    let s = frl_rollout::collect::collect(&job, stop, !args.quiet)?;
    if s.episodes == 0 && s.resumed_from >= job.episodes {
        println!("{} already holds all {} episodes of this job; nothing to do", job.out.display(), job.episodes);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} episodes, {} steps in {:.1} s ({:.0} steps/s); return mean {:.2}, min {:.2}, max {:.2}{}",
        s.episodes,
        s.steps,
        s.seconds,
        s.steps as f64 / s.seconds.max(1e-9),
        s.mean_return,
        s.min_return,
        s.max_return,
        if s.failures > 0 { format!("; {} actor failures recovered", s.failures) } else { String::new() }
    );
    if let Some(meta) = &s.metadata {
        println!(
            "dataset {}: {} episodes, {} steps in {} shards",
            job.out.display(),
            meta.episodes,
            meta.steps,
            meta.shards.len()
        );
    }
    if s.interrupted {
        eprintln!("interrupted: rerun the same command to resume");
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn dataset_info(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let info = frl_dataset::dataset::DatasetInfo::of(&frl_dataset::dataset::Dataset::open(path)?);
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_toy(args: ToyArgs) -> anyhow::Result<ExitCode> {
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

fn list_envs() -> anyhow::Result<ExitCode> {
    for id in frl_envs::NATIVE_IDS {
        let env = frl_envs::make(id)?;
        println!("{id:<28} native  obs {}  actions {}", env.observation_space(), env.action_space());
    }
    if frl_envs::HAS_PYTHON {
        println!(
            "gym:<id>                     any registered Gymnasium env (e.g. gym:HalfCheetah-v5, gym:ALE/Seaquest-v5)"
        );
        println!(
            "atari:<game>                 Decision Transformer Atari preset (e.g. atari:Breakout): u8 (4, 84, 84)"
        );
    } else {
        println!("(gym:<id> and atari:<game> ids need a build with --features python)");
    }
    Ok(ExitCode::SUCCESS)
}

/// A space in one line: bounds summarised, so that image boxes stay short.
fn env_info(id: &str, kwargs: Option<&str>) -> anyhow::Result<ExitCode> {
    let kwargs: frl_envs::Kwargs = match kwargs {
        Some(text) => {
            serde_json::from_str(text).with_context(|| format!("--kwargs must be a JSON object, got {text}"))?
        }
        None => frl_envs::Kwargs::new(),
    };
    let mut env = frl_envs::make_with(id, &kwargs)?;
    let (obs, _) = env.reset(Some(0))?;
    println!("id            {}", env.id());
    println!("observations  {}", env.observation_space());
    println!("actions       {}", env.action_space());
    println!("first obs     {} values, first {:?}", obs.len(), &obs[..obs.len().min(6)]);
    Ok(ExitCode::SUCCESS)
}

fn run_toy_worker(args: ToyRunArgs) -> anyhow::Result<ExitCode> {
    let spec: RunSpec = serde_json::from_str(&args.spec).context("parsing --spec")?;
    let result = toy::train::run(&spec, &AtomicBool::new(false))?;
    let json = serde_json::to_vec_pretty(&result)?;
    frl_dataset::fsutil::write_atomic(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn devices(require_gpu: bool) -> anyhow::Result<ExitCode> {
    use frl_learner::backend::{DeviceChoice, select};
    let mut gpu_ok = false;
    for choice in [DeviceChoice::Cpu, DeviceChoice::Gpu, DeviceChoice::SoftwareGpu] {
        match select(choice) {
            Ok(s) => {
                gpu_ok |= choice == DeviceChoice::Gpu;
                println!("{:<13} {}", choice.to_string(), s.name);
            }
            Err(e) => println!("{:<13} unavailable: {e}", choice.to_string()),
        }
    }
    Ok(if require_gpu && !gpu_ok { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
