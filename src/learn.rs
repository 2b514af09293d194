//! `frl train`, `frl eval` and `frl demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use frl_agents::{ActingOverrides, load_job_with, load_policy};
use frl_learner::Decode;
use frl_learner::backend::DeviceChoice;
use frl_learner::{EvalConfig, EvalReport, TrainOptions, TrainSummary, evaluate};
use frl_runners::demo::{DEFAULT_DEMO, DemoConfig, run_demo};

use crate::stop_flag;

/// Flags of `frl train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The job file (TOML): name, dataset, seed, agent (dt, bc, iql, dqn), the agent's section, the train and eval
    /// sections, and an online section to train from the agent's own experience.
    job: PathBuf,
    #[command(flatten)]
    run: RunFlags,
}

/// How a training run goes, for `frl train` and `frl forecast train`.
#[derive(Args)]
pub struct RunFlags {
    /// Continue from the newest checkpoint in the run folder.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Where the model trains: cpu, gpu (needs a build with --features wgpu), or software-gpu (the GPU code path on
    /// a software Vulkan adapter).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Change one field of the job file, `KEY=VALUE` with a dotted key (`--set train.steps=200 --set seed=3`); the
    /// run folder's job.toml keeps the job as it ran.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

impl RunFlags {
    /// The run layer's options.
    pub fn options(&self) -> TrainOptions {
        TrainOptions { resume: self.resume, quiet: self.quiet, device: self.device, remote: None }
    }

    /// The command that continues an interrupted run of `job`: `frl <command> JOB --resume` with the same changes.
    pub fn resume_hint(&self, command: &str, job: &std::path::Path) -> String {
        let sets: String = self.sets.iter().map(|s| format!(" --set '{s}'")).collect();
        format!("frl {command} {}{sets} --resume", job.display())
    }
}

/// Flags of `frl eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint file (`runs/<name>/checkpoints/ckpt-*.safetensors`, or `best.safetensors` of `eval.keep_best`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Episodes (default: the job's).
    #[arg(long)]
    episodes: Option<u64>,
    /// Actor threads (default: the job's).
    #[arg(long)]
    actors: Option<usize>,
    /// Return to condition on (default: the job's, else the dataset's best); negative values as they are
    /// (`--target-return -150`).
    #[arg(long, allow_negative_numbers = true)]
    target_return: Option<f32>,
    /// sample, mode or mean (default: the job's).
    #[arg(long)]
    decode: Option<Decode>,
    /// Softmax temperature for sampling (default: the job's).
    #[arg(long)]
    temperature: Option<f32>,
    /// Base seed of the episodes (default: the job's evaluation seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where the policy runs: cpu, gpu or software-gpu.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// Flags of `frl demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// A demo configuration (default: the built-in configs/demo.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// `frl train`: one job, with its summary printed.
pub fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let job = load_job_with(&args.job, &args.run.sets)?;
    let stop = stop_flag("a checkpoint")?;
    let s = frl_agents::train(&job, &args.run.options(), stop)?;
    print_summaries(std::slice::from_ref(&s));
    if s.interrupted {
        eprintln!("interrupted at step {}; continue with: {}", s.steps, args.run.resume_hint("train", &args.job));
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// `frl eval`: a checkpoint's returns over actor-run episodes.
pub fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let device = frl_learner::backend::select(args.device)?.device;
    let overrides =
        ActingOverrides { decode: args.decode, temperature: args.temperature, target_return: args.target_return };
    if let Some(t) = args.temperature
        && !(t.is_finite() && t > 0.0)
    {
        anyhow::bail!("--temperature {t}: must be positive");
    }
    if args.episodes == Some(0) || args.actors == Some(0) {
        anyhow::bail!("--episodes and --actors must be at least 1");
    }
    let loaded = load_policy(&args.checkpoint, &device, &overrides)?;
    let (meta, acting) = (loaded.meta, loaded.acting);
    // What the policy does (a DQN acts ε-greedily, a DT decodes its head's PMF), as the policy says.
    let how = loaded.factory.describe();
    let e = &meta.job.eval;
    let stop = stop_flag("finished episodes")?;
    let episodes = args.episodes.unwrap_or(if e.episodes == 0 { EvalConfig::default().episodes } else { e.episodes });
    let r = evaluate(
        &meta.data.env,
        loaded.factory,
        episodes,
        args.actors.unwrap_or(e.actors),
        args.seed.unwrap_or(e.seed),
        stop,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} ({} agent) at step {} on {}: {} episodes{}, acting as {}",
            args.checkpoint.display(),
            meta.agent,
            meta.step,
            meta.data.env,
            r.returns.len(),
            acting.target_return.map(|t| format!(", target return {t}")).unwrap_or_default(),
            how
        );
        println!("return {}", format_return(&r));
    }
    Ok(ExitCode::SUCCESS)
}

/// `frl demo`: collect, train one run per head, print the comparison.
pub fn run_demo_cmd(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read demo config {}: {e}", p.display()))?;
            DemoConfig::parse(&text, &p.display().to_string())?
        }
        None => DemoConfig::parse(DEFAULT_DEMO, "(built in)")?,
    };
    let stop = stop_flag("a checkpoint")?;
    let t0 = std::time::Instant::now();
    let summaries = run_demo(&config, stop, args.quiet, |stage| eprintln!("== {stage}"))?;
    print_summaries(&summaries);
    if summaries.len() < config.heads.len() || summaries.iter().any(|s| s.interrupted) {
        eprintln!("interrupted; run the same command again to continue where it stopped");
        return Ok(ExitCode::from(130));
    }
    println!(
        "total {:.0} s. TensorBoard: tensorboard --logdir {}",
        t0.elapsed().as_secs_f64(),
        config.train.runs_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn format_return(r: &EvalReport) -> String {
    let norm = r.normalized.map(|n| format!(" (normalised {n:.1})")).unwrap_or_default();
    format!("{:.1} ± {:.1} [min {:.1}, max {:.1}]{norm}", r.mean, r.std, r.min, r.max)
}

fn print_summaries(summaries: &[TrainSummary]) {
    println!(
        "{:<32} {:<5} {:>6} {:>9} {:>11} {:>9}  eval return",
        "run", "agent", "steps", "loss", "smoothness", "ms/step"
    );
    for s in summaries {
        println!(
            "{:<32} {:<5} {:>6} {:>9.4} {:>11} {:>9.1}  {}",
            s.name,
            s.agent,
            s.steps,
            s.final_loss,
            // Agents without an action head (a Gaussian policy, scalar Q-values) have no PMF to score.
            if s.smoothness.is_nan() { "—".to_string() } else { format!("{:.4}", s.smoothness) },
            s.ms_per_step,
            s.eval.as_ref().map(format_return).unwrap_or_else(|| "—".into())
        );
        if let Some(o) = &s.online {
            println!(
                "  online ({}): {} env steps in {} episodes, {:.0} env steps/s, {:.1} updates/s, mean policy lag \
                 {:.2}, last 20 episodes' return {:.1} ({:.0} s){}",
                if o.deterministic { "deterministic" } else { "asynchronous, not repeatable" },
                o.env_steps,
                o.episodes,
                o.env_steps_per_sec,
                o.updates_per_sec,
                o.mean_policy_lag,
                o.recent_return,
                o.seconds,
                if o.actor_failures > 0 {
                    format!(
                        "; {} actor failures recovered, {} steps of unfinished episodes given up",
                        o.actor_failures, o.lost_steps
                    )
                } else {
                    String::new()
                }
            );
        }
    }
}
