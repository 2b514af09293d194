//! The synthetic benchmark of the Fourier-head paper (FOURIER_HEAD.md §5): datasets × heads × seeds, run in
//! parallel, resumable, reported as the paper's table with the reference numbers beside ours.

#![warn(missing_docs)]

pub mod data;
pub mod direct;
pub mod replay;
pub mod report;
pub mod train;

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use frl_heads::{FourierHeadConfig, HeadConfig, MixtureHeadConfig};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

pub use data::Dataset;
pub use report::{Cell, Check};
pub use train::{RunError, RunResult, RunSpec};

use frl_dataset::fsutil::write_atomic;

/// What to run. Defaults are the paper's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToyJob {
    /// Datasets to run.
    pub datasets: Vec<Dataset>,
    /// Heads to run on every dataset; when empty, the paper's list (linear, Fourier for each frequency × gamma,
    /// GMM with the paper's component count per dataset).
    pub heads: Vec<HeadConfig>,
    /// Frequencies of the Fourier heads in the paper's list.
    pub frequencies: Vec<usize>,
    /// Regulariser weights of the Fourier heads in the paper's list.
    pub gammas: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Epochs per run.
    pub epochs: usize,
    /// Number of bins.
    pub bins: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Runs in parallel (0: one per core).
    pub jobs: usize,
}

impl Default for ToyJob {
    fn default() -> Self {
        Self {
            datasets: Dataset::ALL.to_vec(),
            heads: Vec::new(),
            frequencies: vec![12],
            gammas: vec![0.0, 1e-6],
            seeds: vec![1, 2, 3, 42],
            epochs: 500,
            bins: 50,
            batch_size: 32,
            lr: 1e-3,
            jobs: 0,
        }
    }
}

impl ToyJob {
    /// Heads run on `dataset`.
    pub fn heads_for(&self, dataset: Dataset) -> Vec<HeadConfig> {
        if !self.heads.is_empty() {
            return self.heads.clone();
        }
        let mut heads = vec![HeadConfig::Linear];
        for &n in &self.frequencies {
            for &g in &self.gammas {
                heads.push(HeadConfig::Fourier(FourierHeadConfig::new(n, g)));
            }
        }
        heads.push(HeadConfig::Mixture(MixtureHeadConfig::new(dataset.paper_components())));
        heads
    }

    /// Checks the job, naming the first bad field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.datasets.is_empty() {
            bail!("`datasets` is empty: name at least one of gaussian, gmm2, beta");
        }
        if self.seeds.is_empty() {
            bail!("`seeds` is empty");
        }
        if self.epochs == 0 {
            bail!("`epochs` = 0: must be at least 1");
        }
        if self.bins < 2 {
            bail!("`bins` = {}: must be at least 2", self.bins);
        }
        if self.batch_size == 0 {
            bail!("`batch_size` = 0: must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("`lr` = {}: must be finite and > 0", self.lr);
        }
        if self.heads.is_empty() && (self.frequencies.is_empty() || self.gammas.is_empty()) {
            bail!("`frequencies` and `gammas` must be non-empty when `heads` is not given");
        }
        for d in &self.datasets {
            for h in self.heads_for(*d) {
                h.validate().with_context(|| format!("head `{h}`"))?;
            }
        }
        Ok(())
    }

    /// Every run of the job, dataset-major.
    pub fn plan(&self) -> Vec<RunSpec> {
        let mut runs = Vec::new();
        for &dataset in &self.datasets {
            for head in self.heads_for(dataset) {
                for &seed in &self.seeds {
                    runs.push(RunSpec {
                        dataset,
                        head: head.clone(),
                        seed,
                        epochs: self.epochs,
                        bins: self.bins,
                        batch_size: self.batch_size,
                        lr: self.lr,
                    });
                }
            }
        }
        runs
    }
}

/// The finished job: every run, the table's cells and the checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToyReport {
    /// The job as run.
    pub job: ToyJob,
    /// Aggregated cells.
    pub cells: Vec<Cell>,
    /// The paper's claims checked.
    pub checks: Vec<Check>,
    /// Wall-clock seconds of this invocation.
    pub wall_seconds: f64,
    /// Runs taken from an earlier, interrupted invocation.
    pub resumed_runs: usize,
    /// Per-run results.
    pub runs: Vec<RunResult>,
}

/// How the job ended.
pub enum ToyOutcome {
    /// All runs finished.
    Done(Box<ToyReport>),
    /// Ctrl-C: this many of the total runs are saved; rerunning resumes.
    Interrupted {
        /// Runs finished and saved.
        done: usize,
        /// Runs planned.
        total: usize,
    },
}

/// Rough relative cost of a training step with `head`, for scheduling (measured: GMM > regularised Fourier >
/// Fourier > linear).
fn relative_cost(head: &HeadConfig) -> u32 {
    match head {
        HeadConfig::Mixture(_) => 3,
        HeadConfig::Fourier(f) if f.gamma > 0.0 => 2,
        HeadConfig::Fourier(_) => 1,
        HeadConfig::Linear => 0,
    }
}

/// The file a finished run is saved to inside the job's output folder.
pub fn run_path(out: &Path, spec: &RunSpec) -> PathBuf {
    out.join("runs").join(format!("{}.json", spec.stem()))
}

/// Runs `spec` in a child process that writes its result to `file`; kills the child when `stop` is set.
fn run_in_child(program: &Path, spec: &RunSpec, file: &Path, stop: &AtomicBool) -> Result<RunResult, RunError> {
    let worker = |what: String| RunError::Worker(spec.stem(), what);
    let spec_json = serde_json::to_string(spec).map_err(|e| worker(e.to_string()))?;
    let mut child = Command::new(program)
        .arg("toy-run")
        .arg("--spec")
        .arg(spec_json)
        .arg("--out")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| worker(format!("cannot start {}: {e}", program.display())))?;
    let status = loop {
        if stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            // A child killed while saving leaves its temporary file; the result itself is never half-written.
            let _ = std::fs::remove_file(frl_dataset::fsutil::temp_path(file, child.id()));
            return Err(RunError::Interrupted);
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(worker(e.to_string())),
        }
    };
    if !status.success() {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            // Ctrl-C in a terminal reaches the whole process group: the child stopping on SIGINT is an interrupt.
            if status.signal() == Some(2) || stop.load(Ordering::Relaxed) {
                return Err(RunError::Interrupted);
            }
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        return Err(worker(format!("{status}: {}", stderr.trim())));
    }
    let text = std::fs::read_to_string(file).map_err(|e| worker(format!("reading {}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| worker(format!("{}: {e}", file.display())))
}

fn load_finished(out: &Path, spec: &RunSpec) -> Option<RunResult> {
    let text = std::fs::read_to_string(run_path(out, spec)).ok()?;
    let r: RunResult = serde_json::from_str(&text).ok()?;
    (r.spec == *spec).then_some(r)
}

/// Where the runs of a job execute.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// Worker threads in this process. burn's autodiff graph sits behind one process-wide lock, so tiny models
    /// scale poorly across threads.
    Threads,
    /// One child process per run, `program toy-run --spec JSON --out FILE`, so workers share no lock.
    Processes {
        /// The `frl` executable.
        program: PathBuf,
    },
}

/// Runs the job into `out`, skipping runs already saved there with the same spec; `stop` interrupts.
pub fn run_job(
    job: &ToyJob,
    out: &Path,
    stop: Arc<AtomicBool>,
    progress: bool,
    executor: &Executor,
) -> anyhow::Result<ToyOutcome> {
    job.validate()?;
    std::fs::create_dir_all(out.join("runs")).with_context(|| format!("creating output folder {}", out.display()))?;
    let started = Instant::now();
    let plan = job.plan();
    let total = plan.len();
    let mut results: Vec<Option<RunResult>> = plan.iter().map(|s| load_finished(out, s)).collect();
    let resumed = results.iter().filter(|r| r.is_some()).count();
    // Longest runs first, so no worker idles at the end while another finishes a slow run.
    let mut pending: Vec<(usize, RunSpec)> =
        plan.iter().cloned().enumerate().filter(|(i, _)| results[*i].is_none()).collect();
    pending.sort_by_key(|(_, spec)| std::cmp::Reverse(relative_cost(&spec.head)));
    let queue: VecDeque<(usize, RunSpec)> = pending.into();
    let jobs =
        if job.jobs == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { job.jobs };

    let bar = if progress { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs (eta {eta}) {msg}")
            .expect("valid template"),
    );
    bar.set_position(resumed as u64);
    if resumed > 0 {
        bar.println(format!("resuming: {resumed} of {total} runs already in {}", out.join("runs").display()));
    }

    let queue = Arc::new(Mutex::new(queue));
    let (tx, rx) = mpsc::channel::<(usize, Result<RunResult, RunError>)>();
    let workers: Vec<_> = (0..jobs.min(total.max(1)))
        .map(|_| {
            let (queue, tx, stop, executor) = (queue.clone(), tx.clone(), stop.clone(), executor.clone());
            let out = out.to_path_buf();
            std::thread::spawn(move || {
                loop {
                    let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                    let Some((i, spec)) = next else { break };
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = match &executor {
                        Executor::Threads => train::run(&spec, &stop),
                        Executor::Processes { program } => run_in_child(program, &spec, &run_path(&out, &spec), &stop),
                    };
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(tx);

    let mut failure = None;
    for (i, result) in rx {
        match result {
            Ok(r) => {
                let json = serde_json::to_vec_pretty(&r)?;
                write_atomic(&run_path(out, &r.spec), &json)
                    .with_context(|| format!("saving run {}", r.spec.stem()))?;
                // Kept as it reads back from its file (JSON floats parse to within an ulp), so that a resumed job
                // and worker processes give the same table as this one.
                let r: RunResult = serde_json::from_slice(&json)?;
                bar.set_message(format!("{} KL {:.3}", r.spec.stem(), r.kl));
                bar.inc(1);
                results[i] = Some(r);
            }
            Err(RunError::Interrupted) => {}
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(e);
            }
        }
    }
    for w in workers {
        let _ = w.join();
    }
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e.into());
    }
    let done = results.iter().filter(|r| r.is_some()).count();
    if done < total {
        return Ok(ToyOutcome::Interrupted { done, total });
    }
    let runs: Vec<RunResult> = results.into_iter().flatten().collect();
    let cells = report::aggregate(&runs);
    let checks = report::checks(&cells);
    for cell in &cells {
        let of_cell: Vec<&RunResult> =
            runs.iter().filter(|r| r.spec.dataset == cell.dataset && r.spec.head == cell.head).collect();
        if let Some(first) = of_cell.first() {
            let stem = format!("{}__{}", cell.dataset, cell.head.slug());
            report::plot_examples(first, &out.join("plots").join(format!("{stem}.svg")))?;
            report::plot_losses(&of_cell, &out.join("plots").join(format!("{stem}__loss.svg")))?;
        }
    }
    let report = ToyReport {
        job: job.clone(),
        cells,
        checks,
        wall_seconds: started.elapsed().as_secs_f64(),
        resumed_runs: resumed,
        runs,
    };
    write_atomic(&out.join("results.json"), &serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", out.join("results.json").display()))?;
    write_atomic(&out.join("table.md"), report::markdown_table(&report.cells).as_bytes())?;
    Ok(ToyOutcome::Done(Box::new(report)))
}
