//! `frl forecast`: train a forecaster from a job file, score a checkpoint on evaluation datasets, forecast a CSV.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use frl_forecast::job::{load_job, load_predictor, read_csv, train};
use frl_forecast::metrics::path_quantiles;
use frl_forecast::predict::{DatasetReport, Predictor, QUANTILES, Sampling, evaluate, geometric_mean};
use frl_forecast::series::SeriesSet;

use crate::learn::RunFlags;
use crate::stop_flag;

/// Subcommands of `frl forecast`.
#[derive(Subcommand)]
pub enum ForecastCommand {
    /// Train a forecaster (decoder-only transformer over Chronos' tokens, any head) from a job file.
    Train(TrainArgs),
    /// Score a checkpoint on evaluation datasets (the last H values of every series held out) beside seasonal naive.
    Eval(EvalArgs),
    /// Forecast the series of a CSV file: quantiles as CSV and a fan chart per series as PNG.
    Predict(PredictArgs),
}

/// Flags of `frl forecast train`.
#[derive(Args)]
pub struct TrainArgs {
    /// The job file (TOML): name, seed, the forecast section (network, head, tokenizer, data) and the train section.
    job: PathBuf,
    #[command(flatten)]
    run: RunFlags,
}

/// Flags of `frl forecast eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// A checkpoint of `frl forecast train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset folders (frl's series format: meta.json and series.csv); repeat for several.
    #[arg(long, required = true)]
    dataset: Vec<PathBuf>,
    /// Sample paths per series (default: the job's `samples`).
    #[arg(long)]
    samples: Option<usize>,
    /// Seed of the sample paths.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the report as JSON to this file as well.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Flags of `frl forecast predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// A checkpoint of `frl forecast train`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The series: a CSV with a header and `series,value` lines, or one `value` per line.
    #[arg(long)]
    csv: PathBuf,
    /// Values to forecast after each series' end.
    #[arg(long)]
    horizon: usize,
    /// The forecast CSV (series, step, mean, median, the 9 deciles).
    #[arg(long, default_value = "forecast.csv")]
    out: PathBuf,
    /// Folder of fan charts (one PNG per series: history, median, 10–90% band); none when absent.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Sample paths per series (default: the job's `samples`).
    #[arg(long)]
    samples: Option<usize>,
    /// Seed of the sample paths.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs one `frl forecast` subcommand.
pub fn run(command: ForecastCommand) -> anyhow::Result<ExitCode> {
    match command {
        ForecastCommand::Train(args) => run_train(args),
        ForecastCommand::Eval(args) => run_eval(args),
        ForecastCommand::Predict(args) => run_predict(args),
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let job = load_job(&args.job, &args.run.sets)?;
    let stop = stop_flag("a checkpoint")?;
    let s = train(&job, &args.run.options(), stop)?;
    println!(
        "{}: {} steps in {:.1} s ({:.1} ms/step), loss {:.4} -> {:.4}, next-token PMF smoothness {:.4}",
        job.name, s.steps, s.train_seconds, s.ms_per_step, s.first_loss, s.final_loss, s.smoothness
    );
    if s.interrupted {
        eprintln!(
            "interrupted at step {}; continue with: {}",
            s.steps,
            args.run.resume_hint("forecast train", &args.job)
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn sampling(predictor: &Predictor, samples: Option<usize>, seed: u64) -> anyhow::Result<Sampling> {
    let mut s = Sampling::of(predictor.config(), seed);
    if let Some(n) = samples {
        if n == 0 {
            bail!("--samples must be at least 1");
        }
        s.samples = n;
    }
    Ok(s)
}

fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let device = burn::tensor::Device::flex();
    let sets = args
        .dataset
        .iter()
        .map(|d| SeriesSet::open(d).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (predictor, meta) = load_predictor(&args.checkpoint, &device)?;
    let sampling = sampling(&predictor, args.samples, args.seed)?;
    let mut reports: Vec<DatasetReport> = Vec::new();
    println!("{} ({} steps), {} paths per series", meta.job.name, meta.step, sampling.samples);
    println!(
        "{:<16} {:>6} {:>3} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "dataset", "series", "H", "MASE", "WQL", "naive MASE", "naive WQL", "rel MASE", "rel WQL"
    );
    for set in &sets {
        let r = evaluate(&predictor, set, &sampling).with_context(|| format!("dataset {}", set.meta.name))?;
        println!(
            "{:<16} {:>6} {:>3} {:>9.4} {:>9.4} {:>10.4} {:>9.4} {:>8.4} {:>8.4}",
            r.dataset,
            r.series,
            r.horizon,
            r.model.mase,
            r.model.wql,
            r.seasonal_naive.mase,
            r.seasonal_naive.wql,
            r.relative_mase(),
            r.relative_wql()
        );
        reports.push(r);
    }
    let rel_mase = geometric_mean(&reports.iter().map(DatasetReport::relative_mase).collect::<Vec<_>>());
    let rel_wql = geometric_mean(&reports.iter().map(DatasetReport::relative_wql).collect::<Vec<_>>());
    println!("geometric mean of model / seasonal naive: MASE {rel_mase:.4}, WQL {rel_wql:.4}");
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "checkpoint": args.checkpoint,
            "run": meta.job.name,
            "step": meta.step,
            "samples": sampling.samples,
            "seed": sampling.seed,
            "datasets": reports,
            "relative_mase": rel_mase,
            "relative_wql": rel_wql,
        });
        write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run_predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    if args.horizon == 0 {
        bail!("--horizon must be at least 1");
    }
    let series = read_csv(&args.csv)?;
    for (name, values) in &series {
        Predictor::check_context(name, values).with_context(|| format!("{}", args.csv.display()))?;
    }
    let device = burn::tensor::Device::flex();
    let (predictor, _) = load_predictor(&args.checkpoint, &device)?;
    let sampling = sampling(&predictor, args.samples, args.seed)?;
    let inputs: Vec<(&str, &[f64])> = series.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let forecasts = predictor.forecast(&inputs, args.horizon, &sampling)?;
    let mut csv = String::from("series,step,mean");
    for q in QUANTILES {
        csv.push_str(&format!(",q{q}"));
    }
    csv.push('\n');
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for ((name, history), paths) in series.iter().zip(&forecasts) {
        let samples: Vec<Vec<f64>> = paths.iter().map(|p| p.iter().map(|&v| v as f64).collect()).collect();
        let quantiles: Vec<Vec<f64>> = QUANTILES.iter().map(|&q| path_quantiles(&samples, q)).collect();
        for step in 0..args.horizon {
            let mean = samples.iter().map(|p| p[step]).sum::<f64>() / samples.len() as f64;
            csv.push_str(&format!("{name},{},{mean}", step + 1));
            for q in &quantiles {
                csv.push_str(&format!(",{}", q[step]));
            }
            csv.push('\n');
        }
        if let Some(dir) = &args.plots {
            let png = frl_tensorboard::fan_png(history, &quantiles[4], &quantiles[0], &quantiles[8], name);
            let file: String =
                name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
            write_atomic(&dir.join(format!("{file}.png")), &png.bytes)?;
        }
    }
    write_atomic(&args.out, csv.as_bytes())?;
    eprintln!("{} series, {} steps each: {}", series.len(), args.horizon, args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
