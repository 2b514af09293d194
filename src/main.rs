//! `frl`: the command-line tool over the frl libraries.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

mod data;
mod forecast;
mod learn;
mod toy;

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
    Toy(toy::ToyArgs),
    /// Train and evaluate one synthetic-benchmark run (the worker process of `frl toy`).
    #[command(hide = true)]
    ToyRun(toy::ToyRunArgs),
    /// Time components against each other in one run.
    #[command(subcommand)]
    Bench(frl_runners::bench::cli::BenchCommand),
    /// List environments.
    #[command(subcommand)]
    Envs(data::EnvsCommand),
    /// Collect behaviour-policy episodes into a dataset with actor threads.
    Collect(data::CollectArgs),
    /// Inspect datasets.
    #[command(subcommand)]
    Dataset(data::DatasetCommand),
    /// Train an agent from a job file: offline from a dataset, or online (`[online]`) from its own actors.
    Train(learn::TrainArgs),
    /// Evaluate a checkpoint with actor threads.
    Eval(learn::EvalArgs),
    /// Collect Pendulum data, train DTs with a linear and a Fourier head, evaluate and compare them.
    Demo(learn::DemoArgs),
    /// Time-series forecasting with any head (the paper's Chronos experiment): train, eval, predict.
    #[command(subcommand)]
    Forecast(forecast::ForecastCommand),
    /// Print a complete job file for an agent, every field at its default with its doc comment.
    Template {
        /// The agent kind (`dt`, `bc`, `iql`, `dqn`).
        agent: String,
        /// A job that trains online from its own actors (`[online]`).
        #[arg(long)]
        online: bool,
    },
    /// Print the job-file reference (Markdown): every section's fields with type, default and description.
    Reference,
    /// Print a shell completion script (`frl completions bash > ~/.local/share/bash-completion/completions/frl`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// List the devices this build can train on (`--device cpu|gpu|software-gpu`) and the hardware behind each.
    Devices {
        /// Exit with status 1 unless a hardware GPU adapter is usable (for scripts choosing a Vulkan driver).
        #[arg(long)]
        require_gpu: bool,
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
        Command::Toy(args) => toy::run_toy(args),
        Command::ToyRun(args) => toy::run_toy_worker(args),
        Command::Bench(command) => frl_runners::bench::cli::run(command),
        Command::Envs(data::EnvsCommand::List) => data::list_envs(),
        Command::Envs(data::EnvsCommand::Info { id, kwargs }) => data::env_info(&id, kwargs.as_deref()),
        Command::Collect(args) => data::run_collect(args),
        Command::Train(args) => learn::run_train(args),
        Command::Eval(args) => learn::run_eval(args),
        Command::Demo(args) => learn::run_demo_cmd(args),
        Command::Forecast(command) => forecast::run(command),
        Command::Devices { require_gpu } => devices(require_gpu),
        Command::Template { agent, online } => {
            frl_runners::reference::template(&agent, online).map(|t| print!("{t}")).map(|()| ExitCode::SUCCESS)
        }
        Command::Reference => frl_runners::reference::markdown().map(|t| print!("{t}")).map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "frl", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dataset(data::DatasetCommand::Info { path, json }) => data::dataset_info(&path, json),
        Command::Dataset(data::DatasetCommand::Subsample { src, out, steps, seed }) => {
            frl_dataset::dataset::subsample(&src, &out, steps, seed)
                .map_err(anyhow::Error::from)
                .and_then(|_| data::dataset_info(&out, false))
        }
        Command::Dataset(data::DatasetCommand::ImportMinari { src, out, env }) => {
            frl_dataset::dataset::import_minari(&src, &out, env.as_deref(), 50_000)
                .map_err(anyhow::Error::from)
                .and_then(|_| data::dataset_info(&out, false))
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::Parser;
    use std::path::Path;

    /// `frl` command lines of the fenced shell blocks of README.md and the guide, with where they are.
    fn documented_frl_commands() -> Vec<(String, Vec<String>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut docs = vec![root.join("README.md")];
        docs.extend(std::fs::read_dir(root.join("docs/src")).unwrap().map(|e| e.unwrap().path()));
        let mut out = Vec::new();
        for doc in docs.iter().filter(|p| p.extension().is_some_and(|e| e == "md")) {
            let text = std::fs::read_to_string(doc).unwrap().replace("\\\n", " ");
            let mut shell = false;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if let Some(lang) = line.strip_prefix("```") {
                    shell = !shell && matches!(lang, "sh" | "bash" | "shell" | "console");
                    continue;
                }
                let Some(mut words) = shell.then(|| shlex::split(line.split(" #").next().unwrap())).flatten() else {
                    continue;
                };
                // The command ends where a redirection or another command begins.
                if let Some(end) =
                    words.iter().position(|w| [">", ">>", "<", "|", "&&", "||", ";"].contains(&w.as_str()))
                {
                    words.truncate(end);
                }
                let program = words.iter().position(|w| !w.contains('='));
                let Some(at) = program else { continue };
                let args = match (words[at].as_str(), words.get(at + 1).map(String::as_str)) {
                    (p, _) if p == "frl" || p.ends_with("/frl") => words[at..].to_vec(),
                    ("cargo", Some("run")) => match words.iter().position(|w| w == "--") {
                        Some(dash) => std::iter::once("frl".to_string()).chain(words[dash + 1..].to_vec()).collect(),
                        None => continue,
                    },
                    _ => continue,
                };
                out.push((format!("{}:{}", doc.display(), n + 1), args));
            }
        }
        out
    }

    #[test]
    fn every_documented_frl_command_parses() {
        let commands = documented_frl_commands();
        assert!(commands.len() >= 10, "found only {commands:?}");
        let bad: Vec<String> = commands
            .iter()
            .filter_map(|(at, args)| Cli::try_parse_from(args).err().map(|e| format!("{at}: {}\n{e}", args.join(" "))))
            .collect();
        assert!(bad.is_empty(), "documented commands the CLI refuses:\n{}", bad.join("\n"));
        // The check can fail: a flag the CLI does not have is refused.
        assert!(Cli::try_parse_from(["frl", "collect", "--no-such-flag"]).is_err());
    }
}
