//! `frl collect`, `frl dataset` and `frl envs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use frl_envs::BehaviourSpec;
use frl_envs::behaviour::Preset;
use frl_rollout::collect::CollectJob;
use frl_runners::args::Overrides;

use crate::{load_toml, stop_flag};

/// Flags of `frl collect`.
#[derive(Args)]
pub struct CollectArgs {
    /// A TOML job file with the fields of the flags below; flags given on the command line override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Env id, e.g. Pendulum-v1.
    #[arg(long)]
    pub env: Option<String>,
    /// Behaviour policy: random, expert, expert:NOISE (e.g. expert:0.3) or mixed.
    #[arg(long)]
    pub policy: Option<BehaviourSpec>,
    /// Noise of the expert policy (epsilon for discrete actions, Gaussian std in half-ranges for continuous ones).
    #[arg(long)]
    pub noise: Option<f32>,
    /// D4RL-style preset instead of --policy: expert, medium or mixed.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Episodes to collect.
    #[arg(long)]
    pub episodes: Option<u64>,
    /// Actor threads.
    #[arg(long)]
    pub actors: Option<usize>,
    /// Base seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Dataset folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add the episodes to an existing dataset.
    #[arg(long)]
    pub append: bool,
    /// Steps per shard file.
    #[arg(long)]
    pub shard_steps: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `frl dataset <what>`.
#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Validate a dataset and print its summary.
    Info {
        /// Dataset folder.
        path: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a smaller dataset of whole episodes drawn at random from a larger one (as DQN-Replay's 1% subsets).
    Subsample {
        /// The dataset folder to draw from.
        src: PathBuf,
        /// The new dataset folder (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Steps at most: episodes are drawn in a random order until the next would take the total past this.
        #[arg(long)]
        steps: u64,
        /// Seed of the draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Convert a Minari dataset (arrow format, e.g. ~/.minari/datasets/ID) into an frl dataset.
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

/// `frl envs <what>`.
#[derive(Subcommand)]
pub enum EnvsCommand {
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

/// Collects the episodes a job (file and flags) asks for.
pub fn run_collect(args: CollectArgs) -> anyhow::Result<ExitCode> {
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

/// Validates a dataset and prints its summary (or JSON).
pub fn dataset_info(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let info = frl_dataset::dataset::DatasetInfo::of(&frl_dataset::dataset::Dataset::open(path)?);
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the native env ids with their spaces.
pub fn list_envs() -> anyhow::Result<ExitCode> {
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
pub fn env_info(id: &str, kwargs: Option<&str>) -> anyhow::Result<ExitCode> {
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
