//! Aggregation of runs into the paper's table, the reference comparison, and PMF plots.

use std::path::Path;

use anyhow::Context;
use frl_heads::HeadConfig;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Dataset;
use super::train::RunResult;
use frl_dataset::fsutil::write_atomic;

/// Mean and spread of one metric over runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (sample std over seeds for KL/MSE; over all test PMFs for smoothness).
    pub std: f64,
}

impl Stat {
    /// Mean and sample standard deviation (`ddof = 1`; 0 for one value).
    pub fn sample(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var =
            if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        Self { mean, std: var.sqrt() }
    }
}

/// The paper's reference numbers for one cell (FOURIER_HEAD.md §5).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Reference {
    /// Reference KL.
    pub kl: Stat,
    /// Reference smoothness.
    pub smoothness: Stat,
}

/// One (dataset, head) cell aggregated over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Dataset.
    pub dataset: Dataset,
    /// Head.
    pub head: HeadConfig,
    /// Seeds aggregated.
    pub seeds: Vec<u64>,
    /// Final-epoch test KL over seeds.
    pub kl: Stat,
    /// Expected-bin MSE over seeds.
    pub mse: Stat,
    /// Smoothness over all test PMFs of all seeds.
    pub smoothness: Stat,
    /// Mean milliseconds per training step.
    pub ms_per_step: f64,
    /// The paper's numbers for this cell, where it has them.
    pub reference: Option<Reference>,
    /// Whether mean KL is within the reference mean + 2 std (or lower).
    pub kl_within_reference: Option<bool>,
    /// Seeds whose final training loss is no better than a uniform prediction (`ln m`): runs that never left
    /// the starting plateau.
    #[serde(default)]
    pub uniform_seeds: Vec<u64>,
}

/// Nats below `ln m` within which a final training loss counts as a uniform prediction.
pub const UNIFORM_TOLERANCE: f64 = 0.01;

/// Whether a run's final training loss is no better than predicting every bin equally likely.
pub fn no_better_than_uniform(run: &RunResult) -> bool {
    run.final_train_loss >= (run.spec.bins as f64).ln() - UNIFORM_TOLERANCE
}

/// One of the paper's claims checked on this table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// What is claimed.
    pub claim: String,
    /// Whether it holds.
    pub holds: bool,
}

fn stat(mean: f64, std: f64) -> Stat {
    Stat { mean, std }
}

/// The paper's reference cell for `head` on `dataset`, if it reports one.
pub fn reference(dataset: Dataset, head: &HeadConfig) -> Option<Reference> {
    use Dataset::*;
    let kind = match head {
        HeadConfig::Linear => 0,
        HeadConfig::Mixture(c) if c.components == dataset.paper_components() && !c.learned_weights => 1,
        HeadConfig::Fourier(c) if c.frequencies == 12 => 2,
        _ => return None,
    };
    let (kl, sm) = match (dataset, kind) {
        (Gaussian, 0) => (stat(0.170, 0.052), stat(0.116, 0.050)),
        (Gaussian, 1) => (stat(0.026, 0.011), stat(0.068, 0.012)),
        (Gaussian, _) => (stat(0.116, 0.043), stat(0.057, 0.011)),
        (Gmm2, 0) => (stat(0.238, 0.032), stat(0.068, 0.022)),
        (Gmm2, 1) => (stat(0.030, 0.006), stat(0.043, 0.009)),
        (Gmm2, _) => (stat(0.146, 0.033), stat(0.038, 0.007)),
        (Beta, 0) => (stat(0.234, 0.032), stat(0.127, 0.044)),
        (Beta, 1) => (stat(0.407, 0.012), stat(0.061, 0.003)),
        (Beta, _) => (stat(0.191, 0.016), stat(0.076, 0.021)),
    };
    Some(Reference { kl, smoothness: sm })
}

/// Groups results by (dataset, head) in first-seen order.
pub fn aggregate(results: &[RunResult]) -> Vec<Cell> {
    let mut keys: Vec<(Dataset, HeadConfig)> = Vec::new();
    for r in results {
        let key = (r.spec.dataset, r.spec.head.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(dataset, head)| {
            let runs: Vec<&RunResult> =
                results.iter().filter(|r| r.spec.dataset == dataset && r.spec.head == head).collect();
            let kl = Stat::sample(&runs.iter().map(|r| r.kl).collect::<Vec<_>>());
            let mse = Stat::sample(&runs.iter().map(|r| r.mse).collect::<Vec<_>>());
            let count: usize = runs.iter().map(|r| r.smoothness_count).sum();
            let sum: f64 = runs.iter().map(|r| r.smoothness_sum).sum();
            let sq: f64 = runs.iter().map(|r| r.smoothness_sq_sum).sum();
            let mean = sum / count as f64;
            let smoothness = stat(mean, (sq / count as f64 - mean * mean).max(0.0).sqrt());
            let steps: usize = runs.iter().map(|r| r.steps).sum();
            let secs: f64 = runs.iter().map(|r| r.train_seconds).sum();
            let reference = reference(dataset, &head);
            let kl_within_reference = reference.map(|r| kl.mean <= r.kl.mean + 2.0 * r.kl.std);
            let uniform_seeds = runs.iter().filter(|r| no_better_than_uniform(r)).map(|r| r.spec.seed).collect();
            Cell {
                dataset,
                seeds: runs.iter().map(|r| r.spec.seed).collect(),
                head,
                kl,
                mse,
                smoothness,
                ms_per_step: 1e3 * secs / steps.max(1) as f64,
                reference,
                kl_within_reference,
                uniform_seeds,
            }
        })
        .collect()
}

/// One line per cell with runs that ended no better than a uniform prediction.
pub fn plateau_notes(cells: &[Cell], bins: usize) -> Vec<String> {
    cells
        .iter()
        .filter(|c| !c.uniform_seeds.is_empty())
        .map(|c| {
            let seeds: Vec<String> = c.uniform_seeds.iter().map(u64::to_string).collect();
            format!(
                "{} {}: seed(s) {} ended no better than a uniform prediction (final training loss at least ln {bins} − 0.01 = {:.3}); \
                 see plots/{}__{}__loss.svg",
                c.dataset,
                c.head,
                seeds.join(", "),
                (bins as f64).ln() - UNIFORM_TOLERANCE,
                c.dataset,
                c.head.slug()
            )
        })
        .collect()
}

/// Plots the training-loss curve of every run of one cell (one line per seed) with the uniform-prediction level
/// `ln m`, as SVG.
pub fn plot_losses(runs: &[&RunResult], path: &Path) -> anyhow::Result<()> {
    let Some(first) = runs.first() else { return Ok(()) };
    let uniform = (first.spec.bins as f64).ln();
    let epochs = runs.iter().map(|r| r.epoch_losses.len()).max().unwrap_or(0).max(2);
    let finite = runs.iter().flat_map(|r| r.epoch_losses.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((uniform, uniform), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = 0.05 * (hi - lo).max(1e-3);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} — {}: training loss per epoch", first.spec.dataset, first.spec.head),
                ("sans-serif", 20),
            )
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(52)
            .build_cartesian_2d(1f64..epochs as f64, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("mean cross-entropy")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .light_line_style(WHITE)
            .draw()?;
        chart
            .draw_series(LineSeries::new([(1.0, uniform), (epochs as f64, uniform)], BLACK.stroke_width(1)))?
            .label(format!("uniform prediction, ln {}", first.spec.bins))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(1)));
        for (k, run) in runs.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            let points = run.epoch_losses.iter().enumerate().map(|(e, v)| ((e + 1) as f64, *v));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(format!("seed {}", run.spec.seed))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        root.present()?;
    }
    write_atomic(path, svg.as_bytes()).with_context(|| format!("writing plot {}", path.display()))
}

/// The paper's orderings, checked where the table has the cells they need.
pub fn checks(cells: &[Cell]) -> Vec<Check> {
    let mut out = Vec::new();
    for c in cells {
        if let (Some(ok), Some(r)) = (c.kl_within_reference, c.reference) {
            out.push(Check {
                claim: format!(
                    "{} {}: KL {:.3} <= reference {:.3} + 2·{:.3}",
                    c.dataset, c.head, c.kl.mean, r.kl.mean, r.kl.std
                ),
                holds: ok,
            });
        }
    }
    let datasets: Vec<Dataset> = Dataset::ALL.into_iter().filter(|d| cells.iter().any(|c| c.dataset == *d)).collect();
    for d in datasets {
        let in_d: Vec<&Cell> = cells.iter().filter(|c| c.dataset == d).collect();
        let linear = in_d.iter().find(|c| c.head == HeadConfig::Linear);
        let fourier = in_d
            .iter()
            .find(|c| matches!(&c.head, HeadConfig::Fourier(f) if f.gamma == 0.0))
            .or_else(|| in_d.iter().find(|c| matches!(c.head, HeadConfig::Fourier(_))));
        if let (Some(l), Some(f)) = (linear, fourier) {
            out.push(Check {
                claim: format!(
                    "{d}: {} smoother than linear ({:.3} < {:.3})",
                    f.head, f.smoothness.mean, l.smoothness.mean
                ),
                holds: f.smoothness.mean < l.smoothness.mean,
            });
            out.push(Check {
                claim: format!("{d}: {} KL below linear ({:.3} < {:.3})", f.head, f.kl.mean, l.kl.mean),
                holds: f.kl.mean < l.kl.mean,
            });
        }
        if matches!(d, Dataset::Gaussian | Dataset::Gmm2) {
            let gmm =
                in_d.iter().find(|c| matches!(&c.head, HeadConfig::Mixture(m) if m.components == d.paper_components()));
            if let Some(g) = gmm.filter(|_| in_d.len() > 1) {
                let best = in_d.iter().all(|c| c.head == g.head || g.kl.mean < c.kl.mean);
                out.push(Check { claim: format!("{d}: {} has the best KL ({:.3})", g.head, g.kl.mean), holds: best });
            }
        }
    }
    out
}

fn pm(s: Stat) -> String {
    format!("{:.3} ± {:.3}", s.mean, s.std)
}

/// The table as Markdown, with the reference numbers beside ours.
pub fn markdown_table(cells: &[Cell]) -> String {
    let mut t = String::from(
        "| dataset | head | KL ↓ | smoothness ↓ | MSE ↓ | reference KL | reference smoothness | KL within ref |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let (rk, rs) = c.reference.map(|r| (pm(r.kl), pm(r.smoothness))).unwrap_or(("—".into(), "—".into()));
        let ok = match c.kl_within_reference {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "—",
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.dataset,
            c.head,
            pm(c.kl),
            pm(c.smoothness),
            pm(c.mse),
            rk,
            rs,
            ok
        ));
    }
    t
}

/// Plots a few predicted PMFs against the true PMFs of one cell's first run, as SVG.
pub fn plot_examples(run: &RunResult, path: &Path) -> anyhow::Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 640)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!("{} — {} (seed {})", run.spec.dataset, run.spec.head, run.spec.seed);
        let root = root.titled(&title, ("sans-serif", 22))?;
        let panels = root.split_evenly((2, 2));
        for (panel, ex) in panels.iter().zip(&run.examples) {
            let m = ex.truth.len();
            let ymax = ex.truth.iter().chain(&ex.predicted).cloned().fold(0.0, f64::max) * 1.1 + 1e-9;
            let mut chart = ChartBuilder::on(panel)
                .caption(format!("input bins (x, y) = ({}, {})", ex.input[0], ex.input[1]), ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(44)
                .build_cartesian_2d(0f64..(m - 1) as f64, 0f64..ymax)?;
            chart
                .configure_mesh()
                .x_desc("bin")
                .y_desc("probability")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .light_line_style(WHITE)
                .draw()?;
            let series = |v: &[f64]| v.iter().enumerate().map(|(i, p)| (i as f64, *p)).collect::<Vec<_>>();
            chart
                .draw_series(LineSeries::new(series(&ex.truth), BLACK.stroke_width(2)))?
                .label("true")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(series(&ex.predicted), RED.stroke_width(2)))?
                .label("predicted")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .border_style(BLACK)
                .background_style(WHITE)
                .draw()?;
        }
        root.present()?;
    }
    write_atomic(path, svg.as_bytes()).with_context(|| format!("writing plot {}", path.display()))
}
