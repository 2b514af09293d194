//! `frl bench`: the subcommands' flags and what each prints. The measurements are in the parent module; the
//! binary only dispatches here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use frl_heads::HeadConfig;

use super::torch;
use crate::args::positive;

/// `frl bench <what>`: speed measurements, each beside its baseline (a plain loop, PyTorch) in the same run.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Milliseconds per training step of each head (batch 4096, d 128, m 64, N 16) and of the toy MLP.
    Heads(BenchHeadsArgs),
    /// Steps per second of each native environment; in a `python` build also CartPole-v1 through the Gymnasium
    /// adapter next to a pure-Python loop over the same env.
    Envs {
        /// Steps per environment.
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 20_000_000)]
        steps: usize,
        /// Steps of the adapter and of the pure-Python loop per round (15 rounds; medians reported).
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 50_000)]
        python_steps: usize,
    },
    /// Steps per second of collecting episodes through the actor pool (random policy) next to a plain loop.
    Collect {
        /// Env id.
        #[arg(long, default_value = "CartPole-v1")]
        env: String,
        /// Steps per measurement (per actor for the pool).
        #[arg(long, value_parser = positive::<u64>(), default_value_t = 5_000_000)]
        steps: u64,
        /// Measurements of each; the median is reported.
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 7)]
        rounds: usize,
    },
    /// Milliseconds per DQN/C51 update at CartPole's shapes for a linear and a Fourier return head and scalar
    /// Q-values; with `--python` (an interpreter with torch) also PyTorch's C51 update of the same shapes
    /// (scripts/c51_torch_step.py) and the ratio.
    Dqn {
        /// Timed updates per measurement (median reported).
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 200)]
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
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 50)]
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
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 1)]
        actors: usize,
        /// Env steps per measurement.
        #[arg(long, value_parser = positive::<u64>(), default_value_t = 5_000_000)]
        steps: u64,
        /// Measurements of each; the median ratio is reported.
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 3)]
        rounds: usize,
    },
    /// Training speed on a device: the default DT config's steps/s and a Fourier head step; for a GPU also the
    /// CPU's figures in the same run and whether GPU and CPU losses agree on the same batches (1e-3 relative).
    Train {
        /// cpu, gpu or software-gpu.
        #[arg(long, default_value = "cpu")]
        device: frl_learner::backend::DeviceChoice,
        /// Timed steps per measurement (median reported).
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 10)]
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
    /// Milliseconds per forecaster training step (`frl forecast`'s network) for linear and Fourier heads over its
    /// 4096 tokens, beside PyTorch's step of the same network and shapes.
    Forecast(BenchForecastArgs),
    /// Milliseconds per Decision Transformer training step: the default config (batch 64, context 20, 3 layers,
    /// d 128) and the shape of the PyTorch reference's DT step (batch 64 × 90 tokens, 3 layers, 4 heads, d 128).
    Dt {
        /// Timed steps per shape (median reported).
        #[arg(long, value_parser = positive::<usize>(), default_value_t = 10)]
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
        #[arg(long, value_parser = positive::<usize>())]
        shards: Option<usize>,
        /// Also time each shape with burn's layers instead of frl's fused CPU layers, and print the speed-up.
        #[arg(long)]
        unfused: bool,
    },
}

/// `frl bench forecast`: the forecaster's shapes and the PyTorch baseline.
#[derive(Args)]
pub struct BenchForecastArgs {
    /// A forecasting job file whose `[forecast]` and `[train] batch_size` set the shapes (default: the defaults,
    /// those of configs/forecast.toml).
    #[arg(long)]
    pub job: Option<PathBuf>,
    /// Heads in job-file syntax (repeatable; default: linear and the Fourier head N=64 with the paper's options).
    #[arg(long = "head", value_name = "SPEC")]
    pub heads: Vec<HeadConfig>,
    /// Timed steps per head (median reported).
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 10)]
    pub steps: usize,
    /// A Python interpreter with torch: also times PyTorch's step of the same network and shapes
    /// (`scripts/torch_forecast_step.py`, 1 thread, as frl's step) and prints the ratio.
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// `frl bench heads`: the shapes, the heads and the PyTorch baseline.
#[derive(Args)]
pub struct BenchHeadsArgs {
    /// Rows per step.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 4096)]
    pub batch: usize,
    /// Feature size.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 128)]
    pub dim: usize,
    /// Bins.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 64)]
    pub bins: usize,
    /// Fourier frequencies.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 16)]
    pub frequencies: usize,
    /// Timed steps per head.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 20)]
    pub steps: usize,
    /// Timed steps of the toy MLP.
    #[arg(long, value_parser = positive::<usize>(), default_value_t = 2000)]
    pub toy_steps: usize,
    /// Heads in job-file syntax (repeatable; default: linear, Fourier with and without its regulariser, GMM K=2);
    /// when given, the toy MLP is not timed.
    #[arg(long = "head", value_name = "SPEC")]
    pub heads: Vec<HeadConfig>,
    /// Also write the timings as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A Python interpreter with torch: also times PyTorch's linear head and paper-style Fourier head steps of the
    /// same shapes (`torch_reference.py linear|head`, 2 threads) and prints the ratios.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// PyTorch's reference script (default: `torch_reference.py` in FRL_SCRIPTS or scripts/, else
    /// `../shared/bench/` beside this repository).
    #[arg(long, value_name = "PATH")]
    pub reference: Option<PathBuf>,
}

/// Runs one bench subcommand; the exit code says whether its checks (the GPU's loss agreement) held.
pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Heads(args) => heads(args),
        BenchCommand::Envs { steps, python_steps } => bench_envs(steps, python_steps),
        BenchCommand::Collect { env, steps, rounds } => bench_collect(&env, steps, rounds),
        BenchCommand::Online { env, actors, steps, rounds } => bench_online(&env, actors, steps, rounds),
        BenchCommand::Dqn { steps, python } => bench_dqn(steps, python.as_deref()),
        BenchCommand::Forecast(args) => bench_forecast(args),
        BenchCommand::Ops { steps, python } => bench_ops(steps, python.as_deref()),
        BenchCommand::Dt { steps, head, python, reference, shards, unfused } => {
            let torch = python.map(|py| torch::TorchReference::new(py, reference.as_deref())).transpose()?;
            let shards = shards.unwrap_or_else(|| frl_learner::shards::threads_for(usize::MAX));
            bench_dt(steps, head, shards, unfused, torch.as_ref())
        }
        BenchCommand::Train { device, steps, json, atari, sweep, python } => {
            bench_train(device, steps, json, super::DtShape::list(atari, sweep), &python)
        }
    }
}

fn bench_collect(env: &str, steps: u64, rounds: usize) -> anyhow::Result<ExitCode> {
    let rows = super::bench_collect(env, steps, rounds)?;
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
            let text = torch::run_script(py, "c51_torch_step.py", &["--steps".into(), steps.to_string()])?;
            let ms = torch::parse_c51_ms(&text);
            Some(ms.ok_or_else(|| anyhow::anyhow!("unexpected output of c51_torch_step.py: {text}"))?)
        }
        None => None,
    };
    let fourier = HeadConfig::Fourier(FourierHeadConfig::new(16, 0.0));
    let cases =
        [("C51, linear head", Some(HeadConfig::Linear)), ("C51, Fourier N=16", Some(fourier)), ("DQN, scalar Q", None)];
    for (name, head) in cases {
        let ms = super::bench_dqn(head, steps)?;
        let ratio = match (name, torch) {
            ("C51, linear head", Some(t)) => format!("   PyTorch {t:.3} ms, frl / PyTorch {:.2}", ms / t),
            _ => String::new(),
        };
        println!("{ms:>9.3} ms/update  {name} (batch 128, 101 atoms, 2 actions, median of {steps}){ratio}");
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_ops(steps: usize, python: Option<&Path>) -> anyhow::Result<ExitCode> {
    // PyTorch's milliseconds per op, by name, with 2 threads and with 1.
    let mut torch: Vec<std::collections::HashMap<String, f64>> = Vec::new();
    if let Some(py) = python {
        for threads in [2, 1] {
            let args = ["--steps".into(), steps.to_string(), "--threads".into(), threads.to_string()];
            torch.push(torch::parse_ops(&torch::run_script(py, "torch_ops.py", &args)?)?);
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
    for t in super::bench_ops(steps) {
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
    let rows = super::bench_online(env, actors, steps, rounds)?;
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

fn bench_envs(steps: usize, python_steps: usize) -> anyhow::Result<ExitCode> {
    super::bench_envs(steps, |t| {
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

fn bench_forecast(args: BenchForecastArgs) -> anyhow::Result<ExitCode> {
    use frl_forecast::ForecastConfig;
    use frl_heads::FourierHeadConfig;
    let (base, batch): (ForecastConfig, usize) = match &args.job {
        Some(path) => {
            let job = frl_forecast::job::load_job(path, &[])?;
            (job.agent_config()?, job.train.batch_size)
        }
        None => (ForecastConfig::default(), 32),
    };
    let heads = if args.heads.is_empty() {
        let paper = FourierHeadConfig {
            init_weight_div: 1000.0,
            init_bias_div: 10.0,
            eps: 1e-5,
            ..FourierHeadConfig::new(64, 1e-6)
        };
        vec![HeadConfig::Linear, HeadConfig::Fourier(paper)]
    } else {
        args.heads
    };
    println!(
        "forecaster step: batch {batch}, {} tokens (context {} + prediction {} − 1), d {}, {} layers, {} heads, vocabulary {}",
        base.window_tokens(),
        base.context,
        base.prediction,
        base.d_model,
        base.layers,
        base.heads,
        base.tokenizer.n_tokens
    );
    for head in heads {
        let config = ForecastConfig { head: head.clone(), ..base.clone() };
        let torch_args = match (&head, args.python.is_some()) {
            (HeadConfig::Linear, true) => Some(vec!["--head".to_string(), "linear".into()]),
            (HeadConfig::Fourier(f), true) => Some(vec![
                "--head".into(),
                "fourier".into(),
                "--freqs".into(),
                f.frequencies.to_string(),
                "--gamma".into(),
                f.gamma.to_string(),
            ]),
            _ => None,
        };
        let torch_ms = match (torch_args, &args.python) {
            (Some(mut a), Some(py)) => {
                for (k, v) in [
                    ("--batch", batch),
                    ("--context", base.context),
                    ("--prediction", base.prediction),
                    ("--layers", base.layers),
                    ("--heads", base.heads),
                    ("--embed", base.d_model),
                    ("--vocab", base.tokenizer.n_tokens),
                    ("--steps", args.steps.max(5)),
                    ("--threads", 1),
                ] {
                    a.extend([k.to_string(), v.to_string()]);
                }
                let text = torch::run_script(py, "torch_forecast_step.py", &a)?;
                let ms = text
                    .trim()
                    .strip_prefix("forecast step: ")
                    .and_then(|t| t.strip_suffix(" ms")?.parse::<f64>().ok());
                Some(ms.ok_or_else(|| anyhow::anyhow!("unexpected output of torch_forecast_step.py: {text:?}"))?)
            }
            _ => None,
        };
        let ms = super::bench_forecast(&config, batch, args.steps)?;
        let vs = torch_ms.map(|t| format!("   PyTorch {t:.1} ms, frl / PyTorch {:.2}", ms / t)).unwrap_or_default();
        println!("{ms:>9.1} ms/step  {} head{vs}", head.slug());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_dt(
    steps: usize,
    head: HeadConfig,
    shards: usize,
    unfused: bool,
    torch: Option<&torch::TorchReference>,
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
            let ms = super::bench_dt(&config, 64, steps, n)?;
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
                let burns = super::bench_dt(&config, 64, steps, n);
                frl_agents::dt::fused::set_enabled(true);
                let burns = burns?;
                println!("{burns:>9.1} ms/step    the same with burn's layers (fused: {:.2}× faster)", burns / ms);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_train(
    device: frl_learner::backend::DeviceChoice,
    steps: usize,
    json: Option<PathBuf>,
    shapes: Vec<super::DtShape>,
    python: &Path,
) -> anyhow::Result<ExitCode> {
    use frl_learner::backend::DeviceChoice;
    // PyTorch on the same device: CUDA for a GPU, the CPU for the CPU (none for the software adapter).
    let torch_device = match device {
        DeviceChoice::Cpu => Some("cpu"),
        DeviceChoice::Gpu => Some("cuda"),
        DeviceChoice::SoftwareGpu => None,
    };
    let importable = torch_device.is_some_and(|d| torch::torch_runs_on(python, d));
    if torch_device.is_some() && !importable {
        eprintln!(
            "PyTorch: torch (with {}) does not import with {}; its steps are skipped",
            torch_device.unwrap_or("-"),
            python.display()
        );
    }
    let run_torch = |shape: &super::DtShape| -> anyhow::Result<f64> {
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
        let text = torch::run_script(python, "torch_dt_step.py", &args)?;
        torch::parse_dt_step(&text).ok_or_else(|| anyhow::anyhow!("unexpected output of torch_dt_step.py: {text:?}"))
    };
    let torch: Option<&super::TorchStep<'_>> = if importable { Some(&run_torch) } else { None };
    let r = super::bench_train(device, steps, &shapes, torch, |line| eprintln!("{line}"))?;
    let show = |t: &super::DeviceTimings| {
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

fn heads(args: BenchHeadsArgs) -> anyhow::Result<ExitCode> {
    let bench = super::HeadBench {
        batch: args.batch,
        dim: args.dim,
        bins: args.bins,
        frequencies: args.frequencies,
        steps: args.steps,
        toy_steps: args.toy_steps,
        heads: args.heads,
    };
    let torch = args.python.map(|py| torch::TorchReference::new(py, args.reference.as_deref())).transpose()?;
    let timings = bench.run(|t| println!("{:>10.3} ms/step  {}", t.ms_per_step, t.name))?;
    // Ratios of the graph path's medians (the heads' steps were taken in turn): each head against the first, and a
    // Fourier head with its regulariser against the same head without.
    let heads = bench.heads_timed();
    if heads.len() > 1 {
        println!("ratios (medians of steps taken in turn, same run):");
        for (h, t) in heads.iter().zip(&timings).skip(1) {
            println!("{:>10.3}×  {h} / {}", t.ms_per_step / timings[0].ms_per_step, heads[0]);
            if let HeadConfig::Fourier(f) = h
                && f.gamma > 0.0
                && let Some((plain, pt)) = heads.iter().zip(&timings).find(
                    |(p, _)| matches!(p, HeadConfig::Fourier(g) if g.gamma == 0.0 && g.frequencies == f.frequencies),
                )
            {
                println!("{:>10.3}×  {h} / {plain}", t.ms_per_step / pt.ms_per_step);
            }
        }
    }
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
