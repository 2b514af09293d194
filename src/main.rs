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
use frl_runners::bench::HeadBench;
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
    Bench(BenchCommand),
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
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
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
enum BenchCommand {
    /// Milliseconds per training step of each head (batch 4096, d 128, m 64, N 16) and of the toy MLP.
    Heads(BenchHeadsArgs),
    /// Steps per second of each native environment; in a `python` build also CartPole-v1 through the Gymnasium
    /// adapter next to a pure-Python loop over the same env.
    Envs {
        /// Steps per environment.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 20_000_000)]
        steps: usize,
        /// Steps of the adapter and of the pure-Python loop per round (15 rounds; medians reported).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 50_000)]
        python_steps: usize,
    },
    /// Steps per second of collecting episodes through the actor pool (random policy) next to a plain loop.
    Collect {
        /// Env id.
        #[arg(long, default_value = "CartPole-v1")]
        env: String,
        /// Steps per measurement (per actor for the pool).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 5_000_000)]
        steps: u64,
        /// Measurements of each; the median is reported.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 7)]
        rounds: usize,
    },
    /// Milliseconds per DQN/C51 update at CartPole's shapes for a linear and a Fourier return head and scalar
    /// Q-values; with `--python` (an interpreter with torch) also PyTorch's C51 update of the same shapes
    /// (scripts/c51_torch_step.py) and the ratio.
    Dqn {
        /// Timed updates per measurement (median reported).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 200)]
        steps: usize,
        /// A Python interpreter with torch installed, for the PyTorch baseline.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Milliseconds per call of single tensor operations at the shapes of the linear head and DT steps (GEMMs,
    /// batched attention matmul, exp, GELU, add, softmax); with `--python` (an interpreter with torch) also
    /// PyTorch's time for each (scripts/torch_ops.py) with 2 threads and 1 thread, and the ratios.
    Ops {
        /// Timed calls per operation (median reported).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 50)]
        steps: usize,
        /// A Python interpreter with torch installed, for the PyTorch baseline.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Whether the online learner stalls its actors: env steps/s of the live loop (DQN training as fast as it can,
    /// actors acting randomly) against `frl collect` with the same actors, alternated; prints the ratio.
    Online {
        /// Env id.
        #[arg(long, default_value = "CartPole-v1")]
        env: String,
        /// Actor threads.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 1)]
        actors: usize,
        /// Env steps per measurement.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 5_000_000)]
        steps: u64,
        /// Measurements of each; the median ratio is reported.
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 3)]
        rounds: usize,
    },
    /// Training speed on a device: the default DT config's steps/s and a Fourier head step; for a GPU also the
    /// CPU's figures in the same run and whether GPU and CPU losses agree on the same batches (1e-3 relative).
    Train {
        /// cpu, gpu or software-gpu.
        #[arg(long, default_value = "cpu")]
        device: frl_learner::backend::DeviceChoice,
        /// Timed steps per measurement (median reported).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 10)]
        steps: usize,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also time the Atari-sized DT (batch 128, context 30, 6 layers, 8 heads).
        #[arg(long)]
        atari: bool,
        /// Also time the default DT config at batch 16, 32, 128 and 256.
        #[arg(long)]
        sweep: bool,
        /// Python interpreter for PyTorch's step of each DT shape on the same device (scripts/torch_dt_step.py);
        /// skipped, with a note, when torch does not import there.
        #[arg(long, default_value = "python3")]
        python: PathBuf,
    },
    /// Milliseconds per Decision Transformer training step: the default config (batch 64, context 20, 3 layers,
    /// d 128) and the shape of the PyTorch reference's DT step (batch 64 × 90 tokens, 3 layers, 4 heads, d 128).
    Dt {
        /// Timed steps per shape (median reported).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 10)]
        steps: usize,
        /// Action head of the model (job-file syntax).
        #[arg(long, default_value = "linear")]
        head: HeadConfig,
        /// A Python interpreter with torch: also times PyTorch's DT-shaped step (`torch_reference.py dt`, the
        /// reference shape, 2 threads) and prints the ratio.
        #[arg(long)]
        python: Option<PathBuf>,
        /// PyTorch's reference script (as for `bench heads`).
        #[arg(long, value_name = "PATH")]
        reference: Option<PathBuf>,
        /// Also time each shape with its batch split into this many parts on parallel threads (`train.shards`);
        /// default: one per core (none on one core).
        #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        shards: Option<usize>,
        /// Also time each shape with burn's layers instead of frl's fused CPU layers, and print the speed-up.
        #[arg(long)]
        unfused: bool,
    },
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

#[derive(Args)]
struct BenchHeadsArgs {
    /// Rows per step.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 4096)]
    batch: usize,
    /// Feature size.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 128)]
    dim: usize,
    /// Bins.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 64)]
    bins: usize,
    /// Fourier frequencies.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 16)]
    frequencies: usize,
    /// Timed steps per head.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 20)]
    steps: usize,
    /// Timed steps of the toy MLP.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), default_value_t = 2000)]
    toy_steps: usize,
    /// Heads in job-file syntax (repeatable; default: linear, Fourier with and without its regulariser, GMM K=2);
    /// when given, the toy MLP is not timed.
    #[arg(long = "head", value_name = "SPEC")]
    heads: Vec<HeadConfig>,
    /// Also write the timings as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A Python interpreter with torch: also times PyTorch's linear head and paper-style Fourier head steps of the
    /// same shapes (`torch_reference.py linear|head`, 2 threads) and prints the ratios.
    #[arg(long)]
    python: Option<PathBuf>,
    /// PyTorch's reference script (default: `torch_reference.py` in FRL_SCRIPTS or scripts/, else
    /// `../shared/bench/` beside this repository).
    #[arg(long, value_name = "PATH")]
    reference: Option<PathBuf>,
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
        Command::Bench(BenchCommand::Heads(args)) => run_bench_heads(args),
        Command::Bench(BenchCommand::Envs { steps, python_steps }) => bench_envs(steps, python_steps),
        Command::Bench(BenchCommand::Collect { env, steps, rounds }) => bench_collect(&env, steps, rounds),
        Command::Bench(BenchCommand::Online { env, actors, steps, rounds }) => {
            bench_online(&env, actors, steps, rounds)
        }
        Command::Bench(BenchCommand::Dqn { steps, python }) => bench_dqn(steps, python.as_deref()),
        Command::Bench(BenchCommand::Ops { steps, python }) => bench_ops(steps, python.as_deref()),
        Command::Bench(BenchCommand::Dt { steps, head, python, reference, shards, unfused }) => {
            let torch = python.map(|py| TorchReference::new(py, reference.as_deref())).transpose();
            let shards = shards.unwrap_or_else(|| frl_learner::shards::threads_for(usize::MAX));
            torch.and_then(|torch| bench_dt(steps, head, shards, unfused, torch.as_ref()))
        }
        Command::Bench(BenchCommand::Train { device, steps, json, atari, sweep, python }) => {
            bench_train(device, steps, json, frl_runners::bench::DtShape::list(atari, sweep), &python)
        }
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
    let mut job: CollectJob = match &args.config {
        Some(path) => load_toml(path)?,
        None => {
            let (Some(env), Some(episodes), Some(out)) = (&args.env, args.episodes, &args.out) else {
                anyhow::bail!("give --env, --episodes and --out (or a --config job file)");
            };
            CollectJob::new(env, episodes, out)
        }
    };
    if let Some(env) = args.env {
        job.env = env;
    }
    if let Some(p) = args.policy {
        job.policy = Some(p);
    }
    if let Some(noise) = args.noise {
        match job.policy.clone().unwrap_or(BehaviourSpec::Expert { noise: 0.0 }) {
            BehaviourSpec::Expert { .. } => job.policy = Some(BehaviourSpec::Expert { noise }),
            other => anyhow::bail!("--noise applies to --policy expert, not {other}"),
        }
    }
    job.preset = args.preset.or(job.preset);
    job.episodes = args.episodes.unwrap_or(job.episodes);
    job.actors = args.actors.unwrap_or(job.actors);
    job.seed = args.seed.unwrap_or(job.seed);
    job.out = args.out.unwrap_or(job.out);
    job.append |= args.append;
    job.shard_steps = args.shard_steps.unwrap_or(job.shard_steps);

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

fn bench_collect(env: &str, steps: u64, rounds: usize) -> anyhow::Result<ExitCode> {
    let rows = frl_runners::bench::bench_collect(env, steps, rounds)?;
    for (name, v) in &rows {
        println!("{v:>12.0} steps/s  {name} (median of {rounds})");
    }
    let (raw, one, two, raw2, raw_into) = (rows[0].1, rows[1].1, rows[2].1, rows[3].1, rows[4].1);
    println!(
        "one actor / plain loop: {:.2} (step), {:.2} (step_into)   two actors / one actor: {:.2}   \
         two actors / two plain loops: {:.2}",
        one / raw,
        one / raw_into,
        two / one,
        two / raw2
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_dqn(steps: usize, python: Option<&Path>) -> anyhow::Result<ExitCode> {
    use frl_heads::{FourierHeadConfig, HeadConfig};
    let torch = match python {
        Some(py) => {
            let text = run_torch_script(py, "c51_torch_step.py", &["--steps".into(), steps.to_string()])?;
            let ms = text
                .split_whitespace()
                .rev()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| anyhow::anyhow!("unexpected output of c51_torch_step.py: {text}"))?;
            Some(ms)
        }
        None => None,
    };
    let fourier = HeadConfig::Fourier(FourierHeadConfig::new(16, 0.0));
    let cases =
        [("C51, linear head", Some(HeadConfig::Linear)), ("C51, Fourier N=16", Some(fourier)), ("DQN, scalar Q", None)];
    for (name, head) in cases {
        let ms = frl_runners::bench::bench_dqn(head, steps)?;
        let ratio = match (name, torch) {
            ("C51, linear head", Some(t)) => format!("   PyTorch {t:.3} ms, frl / PyTorch {:.2}", ms / t),
            _ => String::new(),
        };
        println!("{ms:>9.3} ms/update  {name} (batch 128, 101 atoms, 2 actions, median of {steps}){ratio}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a helper script of the repository's `scripts/` folder is: under `$FRL_SCRIPTS`, `./scripts`, `scripts/`
/// beside the executable, or the source tree this binary was built from, the first that has it.
fn find_script(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("FRL_SCRIPTS").map(PathBuf::from).into_iter().collect();
    dirs.push(PathBuf::from("scripts"));
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("scripts"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"));
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()).ok_or_else(|| {
        let tried: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        anyhow::anyhow!("{name} not found in {} (set FRL_SCRIPTS to the folder that has it)", tried.join(", "))
    })
}

/// Runs `scripts/<script>` with `python` and these arguments; returns its stdout.
fn run_torch_script(python: &Path, script: &str, args: &[String]) -> anyhow::Result<String> {
    run_python(python, &find_script(script)?, args)
}

/// Runs the Python file `script` with `python` and these arguments; returns its stdout.
fn run_python(python: &Path, script: &Path, args: &[String]) -> anyhow::Result<String> {
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        anyhow::bail!("{} {} failed: {}", python.display(), script.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn bench_ops(steps: usize, python: Option<&Path>) -> anyhow::Result<ExitCode> {
    // PyTorch's milliseconds per op, by name, with 2 threads and with 1.
    let mut torch: Vec<std::collections::HashMap<String, f64>> = Vec::new();
    if let Some(py) = python {
        for threads in [2, 1] {
            let text = run_torch_script(
                py,
                "torch_ops.py",
                &["--steps".into(), steps.to_string(), "--threads".into(), threads.to_string()],
            )?;
            let mut times = std::collections::HashMap::new();
            for line in text.lines() {
                let parsed = line
                    .rsplit_once(": ")
                    .and_then(|(name, v)| Some((name, v.strip_suffix(" ms")?.parse::<f64>().ok()?)));
                let (name, ms) =
                    parsed.ok_or_else(|| anyhow::anyhow!("unexpected line from torch_ops.py: {line:?}"))?;
                times.insert(name.to_string(), ms);
            }
            torch.push(times);
        }
    }
    if torch.is_empty() {
        println!("{:>10}  op", "frl ms");
    } else {
        println!(
            "{:>10} {:>12} {:>12} {:>10} {:>10}  op",
            "frl ms", "torch 2 thr", "torch 1 thr", "vs 2 thr", "vs 1 thr"
        );
    }
    for t in frl_runners::bench::bench_ops(steps) {
        match torch.as_slice() {
            [two, one] => {
                let (a, b) =
                    (two.get(&t.name).copied().unwrap_or(f64::NAN), one.get(&t.name).copied().unwrap_or(f64::NAN));
                println!(
                    "{:>10.4} {a:>12.4} {b:>12.4} {:>9.2}x {:>9.2}x  {}",
                    t.ms_per_step,
                    t.ms_per_step / a,
                    t.ms_per_step / b,
                    t.name
                );
            }
            _ => println!("{:>10.4}  {}", t.ms_per_step, t.name),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_online(env: &str, actors: usize, steps: u64, rounds: usize) -> anyhow::Result<ExitCode> {
    let rows = frl_runners::bench::bench_online(env, actors, steps, rounds)?;
    println!("{env}, {actors} actor(s), about {steps} env steps per run");
    println!("{:>16} {:>16} {:>8} {:>12} {:>10}", "collect steps/s", "online steps/s", "ratio", "updates/s", "lag");
    let mut ratios = Vec::new();
    for r in &rows {
        let ratio = r.online_steps_per_sec / r.collect_steps_per_sec;
        ratios.push(ratio);
        println!(
            "{:>16.0} {:>16.0} {:>8.3} {:>12.1} {:>10.2}",
            r.collect_steps_per_sec, r.online_steps_per_sec, ratio, r.updates_per_sec, r.mean_policy_lag
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("online / collect (median of {rounds}): {:.3}", ratios[ratios.len() / 2]);
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
    let mut job = match &args.config {
        Some(path) => load_toml::<ToyJob>(path)?,
        None => ToyJob::default(),
    };
    if !args.datasets.is_empty() {
        job.datasets = args.datasets;
    }
    if !args.heads.is_empty() {
        job.heads = args.heads;
    }
    if !args.frequencies.is_empty() {
        job.frequencies = args.frequencies;
    }
    if !args.gammas.is_empty() {
        job.gammas = args.gammas;
    }
    if !args.seeds.is_empty() {
        job.seeds = args.seeds;
    }
    job.epochs = args.epochs.unwrap_or(job.epochs);
    job.bins = args.bins.unwrap_or(job.bins);
    job.jobs = args.jobs.unwrap_or(job.jobs);

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

fn bench_envs(steps: usize, python_steps: usize) -> anyhow::Result<ExitCode> {
    frl_runners::bench::bench_envs(steps, |t| {
        println!("{:>12.0} steps/s  {}", 1e3 / t.ms_per_step, t.name.trim_end_matches(" steps/s (one thread)"))
    })?;
    #[cfg(feature = "python")]
    {
        // Short alternating rounds; the median per-round ratio is robust to the machine's noise.
        let rounds: Vec<(f64, f64)> =
            (0..15).map(|_| frl_envs::python::bench_cartpole(python_steps)).collect::<Result<_, _>>()?;
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let adapter = median(rounds.iter().map(|r| r.0).collect());
        let python = median(rounds.iter().map(|r| r.1).collect());
        let ratio = median(rounds.iter().map(|r| r.0 / r.1).collect());
        println!("{adapter:>12.0} steps/s  gym:CartPole-v1 through the adapter (attached thread)");
        println!("{python:>12.0} steps/s  the same env in a pure-Python loop");
        println!("{ratio:>12.3}          adapter / pure Python (median of 15 alternating rounds)");
    }
    #[cfg(not(feature = "python"))]
    let _ = python_steps;
    Ok(ExitCode::SUCCESS)
}

fn run_toy_worker(args: ToyRunArgs) -> anyhow::Result<ExitCode> {
    let spec: RunSpec = serde_json::from_str(&args.spec).context("parsing --spec")?;
    let result = toy::train::run(&spec, &AtomicBool::new(false))?;
    let json = serde_json::to_vec_pretty(&result)?;
    frl_dataset::fsutil::write_atomic(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn bench_dt(
    steps: usize,
    head: HeadConfig,
    shards: usize,
    unfused: bool,
    torch: Option<&TorchReference>,
) -> anyhow::Result<ExitCode> {
    use frl_agents::dt::DecisionTransformerConfig;
    let default = DecisionTransformerConfig { head: head.clone(), ..Default::default() };
    let reference = DecisionTransformerConfig { heads: 4, context: 30, ..default.clone() };
    let counts: Vec<usize> = if shards > 1 { vec![1, shards] } else { vec![1] };
    for (name, config) in [
        ("default DT config: batch 64, context 20 (60 tokens), 3 layers, 1 head, d 128", default),
        ("PyTorch reference shape: batch 64, context 30 (90 tokens), 3 layers, 4 heads, d 128", reference),
    ] {
        let torch_ms = match torch {
            Some(t) if config.heads == 4 => Some(t.ms_per_step(&["dt".into(), "--steps".into(), steps.to_string()])?),
            _ => None,
        };
        let mut one = None;
        for &n in &counts {
            let ms = frl_runners::bench::bench_dt(&config, 64, steps, n)?;
            let one_ms = *one.get_or_insert(ms);
            let split = if n > 1 {
                format!(", {n} shards on {} threads ({:.2}× one)", frl_learner::shards::threads_for(n), one_ms / ms)
            } else {
                String::new()
            };
            let vs_torch =
                torch_ms.map(|t| format!("   PyTorch {t:.1} ms, frl / PyTorch {:.2}", ms / t)).unwrap_or_default();
            println!("{ms:>9.1} ms/step  {name}, {} head{split}{vs_torch}", head.slug());
            if unfused {
                frl_agents::dt::fused::set_enabled(false);
                let burns = frl_runners::bench::bench_dt(&config, 64, steps, n);
                frl_agents::dt::fused::set_enabled(true);
                let burns = burns?;
                println!("{burns:>9.1} ms/step    the same with burn's layers (fused: {:.2}× faster)", burns / ms);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `torch_reference.py` (PyTorch baselines of the head and DT steps) run by an interpreter that has torch.
struct TorchReference {
    python: PathBuf,
    script: PathBuf,
}

impl TorchReference {
    /// Checks that `python` imports torch, then finds the script: `given`, else `torch_reference.py` where
    /// [`find_script`] looks, else `../shared/bench/torch_reference.py` beside the repository or the working
    /// directory.
    fn new(python: PathBuf, given: Option<&Path>) -> anyhow::Result<Self> {
        let probe = std::process::Command::new(&python)
            .args(["-c", "import torch"])
            .output()
            .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", python.display()))?;
        if !probe.status.success() {
            anyhow::bail!(
                "{} cannot import torch (pip install torch): {}",
                python.display(),
                String::from_utf8_lossy(&probe.stderr).trim()
            );
        }
        let script = match given {
            Some(p) if p.is_file() => p.to_path_buf(),
            Some(p) => anyhow::bail!("--reference {}: no such file", p.display()),
            None => find_script("torch_reference.py").or_else(|e| {
                [Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"), PathBuf::from("../shared/bench")]
                    .iter()
                    .map(|d| d.join("torch_reference.py"))
                    .find(|p| p.is_file())
                    .ok_or_else(|| anyhow::anyhow!("{e}, nor in ../shared/bench (or pass --reference PATH)"))
            })?,
        };
        Ok(Self { python, script })
    }

    /// Milliseconds per step that the script prints (`name: value ms/step`) for these arguments.
    fn ms_per_step(&self, args: &[String]) -> anyhow::Result<f64> {
        let stdout = run_python(&self.python, &self.script, args)?;
        stdout
            .lines()
            .rev()
            .find_map(|line| line.rsplit_once(": ")?.1.strip_suffix(" ms/step")?.trim().parse::<f64>().ok())
            .ok_or_else(|| anyhow::anyhow!("{} printed no `…: <ms> ms/step` line: {stdout:?}", self.script.display()))
    }
}

fn bench_train(
    device: frl_learner::backend::DeviceChoice,
    steps: usize,
    json: Option<PathBuf>,
    shapes: Vec<frl_runners::bench::DtShape>,
    python: &Path,
) -> anyhow::Result<ExitCode> {
    use frl_learner::backend::DeviceChoice;
    // PyTorch on the same device: CUDA for a GPU, the CPU for the CPU (none for the software adapter).
    let torch_device = match device {
        DeviceChoice::Cpu => Some("cpu"),
        DeviceChoice::Gpu => Some("cuda"),
        DeviceChoice::SoftwareGpu => None,
    };
    let importable = torch_device.is_some_and(|d| {
        let probe = format!("import torch, sys; sys.exit(0 if '{d}' == 'cpu' or torch.cuda.is_available() else 1)");
        std::process::Command::new(python).args(["-c", &probe]).output().is_ok_and(|o| o.status.success())
    });
    if torch_device.is_some() && !importable {
        eprintln!(
            "PyTorch: torch (with {}) does not import with {}; its steps are skipped",
            torch_device.unwrap_or("-"),
            python.display()
        );
    }
    let run_torch = |shape: &frl_runners::bench::DtShape| -> anyhow::Result<f64> {
        let args: Vec<String> = [
            ("--device", torch_device.unwrap_or("cpu").to_string()),
            ("--batch", shape.batch.to_string()),
            ("--context", shape.context.to_string()),
            ("--layers", shape.layers.to_string()),
            ("--heads", shape.heads.to_string()),
            ("--steps", steps.max(5).to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect();
        let text = run_torch_script(python, "torch_dt_step.py", &args)?;
        text.trim()
            .strip_prefix("dt step: ")
            .and_then(|v| v.strip_suffix(" ms"))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected output of torch_dt_step.py: {text:?}"))
    };
    let torch: Option<&frl_runners::bench::TorchStep<'_>> = if importable { Some(&run_torch) } else { None };
    let r = frl_runners::bench::bench_train(device, steps, &shapes, torch, |line| eprintln!("{line}"))?;
    let show = |t: &frl_runners::bench::DeviceTimings| {
        println!(
            "{:>9.2} steps/s  ({:.1} ms/step) DT default config training, {}",
            t.dt_steps_per_s, t.dt_ms_per_step, t.backend
        );
        println!("{:>9.2} ms/step  Fourier head N=16 b4096 d128 m64 fwd+bwd+AdamW, {}", t.fourier_head_ms, t.backend);
    };
    show(&r.timings);
    if let Some(cpu) = &r.cpu {
        show(cpu);
        println!(
            "{:>9.2}x          DT training speed-up over the CPU; Fourier head {:.2}x",
            cpu.dt_ms_per_step / r.timings.dt_ms_per_step,
            cpu.fourier_head_ms / r.timings.fourier_head_ms
        );
    }
    for t in &r.shapes {
        let torch = match t.torch_ms {
            Some(ms) => format!("   PyTorch {ms:.1} ms, frl / PyTorch {:.2}", t.frl_ms / ms),
            None => String::new(),
        };
        println!("{:>9.1} ms/step  {}, {}{torch}", t.frl_ms, t.shape, r.timings.backend);
    }
    if let Some(a) = &r.agreement {
        println!(
            "loss agreement over {} steps: max relative difference {:.2e} (tolerance {:.0e}): {}",
            a.cpu.len(),
            a.max_rel_diff,
            a.tolerance,
            if a.pass { "pass" } else { "FAIL" }
        );
    }
    if let Some(path) = json {
        let bytes = serde_json::to_vec_pretty(&r)?;
        frl_dataset::fsutil::write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if r.agreement.is_none_or(|a| a.pass) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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

fn run_bench_heads(args: BenchHeadsArgs) -> anyhow::Result<ExitCode> {
    let bench = HeadBench {
        batch: args.batch,
        dim: args.dim,
        bins: args.bins,
        frequencies: args.frequencies,
        steps: args.steps,
        toy_steps: args.toy_steps,
        heads: args.heads,
    };
    let torch = args.python.map(|py| TorchReference::new(py, args.reference.as_deref())).transpose()?;
    let timings = bench.run(|t| println!("{:>10.3} ms/step  {}", t.ms_per_step, t.name))?;
    if let Some(torch) = &torch {
        // PyTorch's step of each head it has a form of, right after ours: the linear head, the Fourier head without
        // its regulariser (the paper's complex/conv1d form). A mixture head is set against our own Fourier head.
        let shape = |mode: &str| {
            let mut a = vec![mode.to_string()];
            for (flag, v) in [("--batch", bench.batch), ("--dim", bench.dim), ("--bins", bench.bins)] {
                a.extend([flag.to_string(), v.to_string()]);
            }
            a.extend(["--freqs".into(), bench.frequencies.to_string(), "--steps".into(), bench.steps.to_string()]);
            a
        };
        // `torch_reference.py`'s mode for a head it has a form of.
        let mode = |h: &HeadConfig| match h {
            HeadConfig::Linear => Some("linear"),
            HeadConfig::Fourier(f) if f.gamma == 0.0 && f.frequencies == bench.frequencies => Some("head"),
            _ => None,
        };
        let heads = bench.heads_timed();
        let fourier_ms = heads.iter().zip(&timings).find(|(h, _)| mode(h) == Some("head")).map(|(_, t)| t.ms_per_step);
        println!("against PyTorch (same shapes, same run):");
        for (head, t) in heads.iter().zip(&timings) {
            let torch_ms = mode(head).map(|m| torch.ms_per_step(&shape(m))).transpose()?;
            match (torch_ms, head, fourier_ms) {
                (Some(torch_ms), _, _) => println!(
                    "{:>10.3} ms/step  PyTorch, frl / PyTorch {:.2}  {}",
                    torch_ms,
                    t.ms_per_step / torch_ms,
                    t.name
                ),
                (None, HeadConfig::Mixture(_), Some(f)) => {
                    println!(
                        "{:>10}          {:.2}× our Fourier N={} head  {}",
                        "",
                        t.ms_per_step / f,
                        bench.frequencies,
                        t.name
                    )
                }
                _ => {}
            }
        }
    }
    if let Some(path) = args.json {
        let json = serde_json::to_vec_pretty(&timings)?;
        frl_dataset::fsutil::write_atomic(&path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
