//! Evaluations while training, shared by the offline and the online learner: at most one runs on actor threads
//! beside training; each report is logged at the step (or env step) its parameters had; with `eval.keep_best` the
//! parameters of the best one so far are kept as `checkpoints/best.safetensors`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::bail;
use crossbeam_channel::{Receiver, TryRecvError};
use frl_envs::PolicyFactory;
use frl_rollout::{EvalReport, evaluate};
use frl_tensorboard::SummaryWriter;

use crate::checkpoint::{self, CheckpointMeta};
use crate::job::EvalConfig;
use crate::params::NamedTensor;

/// File name of the best checkpoint in a checkpoints folder.
pub const BEST_FILE: &str = "best.safetensors";

/// The parameters an evaluation judges, kept until its report arrives (only when the best are kept).
pub(crate) type Snapshot = (CheckpointMeta, Vec<NamedTensor>);

struct Pending {
    at: u64,
    rx: Receiver<anyhow::Result<EvalReport>>,
    snapshot: Option<Snapshot>,
}

/// Evaluations of one run: the one in flight, the last report, and the best kept so far.
pub(crate) struct Evaluations {
    env: String,
    eval: EvalConfig,
    stop: Arc<AtomicBool>,
    pending: Option<Pending>,
    /// The newest report.
    pub last: Option<EvalReport>,
    best_path: Option<PathBuf>,
    best_mean: Option<f64>,
}

impl Evaluations {
    /// Evaluations in `env` as `eval` says, for a run whose checkpoints live in `ckpt_dir`; with `eval.keep_best`, a
    /// best checkpoint already there (a resumed run) sets the mark to beat. `stop` cuts an evaluation short.
    pub fn new(env: &str, eval: &EvalConfig, stop: Arc<AtomicBool>, ckpt_dir: &Path) -> Self {
        let best_path = eval.keep_best.then(|| ckpt_dir.join(BEST_FILE));
        let best_mean = best_path
            .as_ref()
            .filter(|p| p.is_file())
            .and_then(|p| {
                checkpoint::load(p)
                    .inspect_err(|e| eprintln!("warning: {e:#}; the next evaluation's checkpoint replaces it"))
                    .ok()
            })
            .and_then(|c| c.meta.eval_return);
        Evaluations { env: env.to_string(), eval: eval.clone(), stop, pending: None, last: None, best_path, best_mean }
    }

    /// Whether an evaluation is in flight.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts evaluating `factory` on actor threads; its report will be logged at `at`. `snapshot` gives the
    /// parameters it judges, taken now only when the best are kept.
    pub fn start(&mut self, at: u64, factory: Arc<dyn PolicyFactory>, snapshot: impl FnOnce() -> Snapshot) {
        if self.eval.episodes == 0 {
            return;
        }
        let snapshot = self.best_path.is_some().then(snapshot);
        let rx = spawn_eval(&self.env, factory, &self.eval, self.stop.clone());
        self.pending = Some(Pending { at, rx, snapshot });
    }

    /// Evaluates `factory` now (the final evaluation) and logs it at `at`, as [`Evaluations::start`] would.
    pub fn run(
        &mut self,
        at: u64,
        factory: Arc<dyn PolicyFactory>,
        tb: &mut SummaryWriter,
        snapshot: impl FnOnce() -> Snapshot,
    ) -> anyhow::Result<()> {
        let e = &self.eval;
        if e.episodes == 0 {
            return Ok(());
        }
        let report = evaluate(&self.env, factory, e.episodes, e.actors, e.seed, self.stop.clone())?;
        let snapshot = self.best_path.is_some().then(snapshot);
        self.record(tb, at, report, snapshot)
    }

    /// Logs the evaluation in flight if it has finished.
    pub fn poll(&mut self, tb: &mut SummaryWriter) -> anyhow::Result<()> {
        let Some(p) = &self.pending else { return Ok(()) };
        match p.rx.try_recv() {
            Ok(result) => {
                let p = self.pending.take().expect("checked above");
                self.record(tb, p.at, result?, p.snapshot)
            }
            Err(TryRecvError::Empty) => Ok(()),
            Err(TryRecvError::Disconnected) => bail!("the evaluation thread died"),
        }
    }

    /// Waits for the evaluation in flight and logs it; its error is returned unless the run was `interrupted` (an
    /// evaluation cut short by Ctrl-C).
    pub fn finish(&mut self, tb: &mut SummaryWriter, interrupted: bool) -> anyhow::Result<()> {
        let Some(p) = self.pending.take() else { return Ok(()) };
        match p.rx.recv() {
            Ok(Ok(report)) => self.record(tb, p.at, report, p.snapshot),
            Ok(Err(e)) if !interrupted => Err(e),
            _ => Ok(()),
        }
    }

    /// Logs a report at `at` and keeps `snapshot` as the best checkpoint when its mean return is the highest yet.
    fn record(
        &mut self,
        tb: &mut SummaryWriter,
        at: u64,
        report: EvalReport,
        snapshot: Option<Snapshot>,
    ) -> anyhow::Result<()> {
        log_eval(tb, at, &report)?;
        if let (Some(path), Some((mut meta, model))) = (&self.best_path, snapshot)
            && self.best_mean.is_none_or(|best| report.mean > best)
        {
            meta.eval_return = Some(report.mean);
            checkpoint::save(path, &meta, &model, &[])?;
            self.best_mean = Some(report.mean);
            tb.scalar("eval/best_return_mean", at, report.mean)?;
        }
        self.last = Some(report);
        Ok(())
    }
}

/// Evaluates `factory` on its own thread; the report arrives on the returned channel.
fn spawn_eval(
    env: &str,
    factory: Arc<dyn PolicyFactory>,
    eval: &EvalConfig,
    stop: Arc<AtomicBool>,
) -> Receiver<anyhow::Result<EvalReport>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (env, eval) = (env.to_string(), eval.clone());
    std::thread::spawn(move || {
        let _ = tx.send(evaluate(&env, factory, eval.episodes, eval.actors, eval.seed, stop));
    });
    rx
}

/// Logs an evaluation report's scalars and return histogram at `step`.
fn log_eval(tb: &mut SummaryWriter, step: u64, r: &EvalReport) -> anyhow::Result<()> {
    let mut values = vec![
        ("eval/return_mean", r.mean),
        ("eval/return_std", r.std),
        ("eval/return_min", r.min),
        ("eval/return_max", r.max),
    ];
    if let Some(n) = r.normalized {
        values.push(("eval/return_normalized", n));
    }
    tb.scalars(step, &values)?;
    let returns: Vec<f32> = r.returns.iter().map(|&v| v as f32).collect();
    tb.histogram("eval/returns", step, &returns, 20)?;
    tb.flush()?;
    Ok(())
}
