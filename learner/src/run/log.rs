//! What the run layer writes to TensorBoard besides its scalars' values: the window of a step's scalars, PMF
//! images, histograms and smoothness of probe rows, weight histograms.

use frl_heads::head::argmax;
use frl_heads::metrics::smoothness_rows;
use frl_rollout::EvalReport;
use frl_tensorboard::{BinAxis, PmfLabels, SummaryWriter, pmf_png_labelled};

use crate::agent::ActionPmfs;
use crate::params::NamedTensor;

/// Sums of each named scalar over a logging window, in order of first appearance.
#[derive(Default)]
pub(crate) struct ScalarWindow {
    sums: Vec<(&'static str, f64)>,
    pub(crate) n: u64,
}

impl ScalarWindow {
    pub(crate) fn add(&mut self, scalars: &[(&'static str, f64)]) {
        for &(name, v) in scalars {
            match self.sums.iter_mut().find(|(k, _)| *k == name) {
                Some((_, s)) => *s += v,
                None => self.sums.push((name, v)),
            }
        }
        self.n += 1;
    }

    pub(crate) fn means(&self) -> Vec<(&'static str, f64)> {
        let n = self.n.max(1) as f64;
        self.sums.iter().map(|&(k, s)| (k, s / n)).collect()
    }

    pub(crate) fn mean(&self, name: &str) -> f64 {
        self.means().into_iter().find(|(k, _)| *k == name).map(|(_, v)| v).unwrap_or(f64::NAN)
    }
}

/// `, eval return R` for a progress bar, when an evaluation report exists.
pub(crate) fn eval_msg(r: &Option<EvalReport>) -> String {
    r.as_ref().map(|r| format!(", eval return {:.1}", r.mean)).unwrap_or_default()
}

/// Mean smoothness of every probe row's PMF, over all heads.
pub(crate) fn mean_smoothness(p: &ActionPmfs) -> anyhow::Result<f64> {
    let mut all = Vec::new();
    for pmf in &p.pmfs {
        let v: Vec<f64> = pmf.iter().map(|&x| x as f64).collect();
        all.extend(smoothness_rows(&v, p.bins)?);
    }
    Ok(all.iter().sum::<f64>() / all.len().max(1) as f64)
}

/// PMF images of the probe's image rows (the dataset's action marked), bin histograms and the smoothness scalar.
pub(crate) fn log_probe(tb: &mut SummaryWriter, kind: &str, pmfs: Option<ActionPmfs>, step: u64) -> anyhow::Result<()> {
    let Some(p) = pmfs else { return Ok(()) };
    let (m, heads) = (p.bins, p.pmfs.len());
    let mut smooth = Vec::new();
    for (h, pmf) in p.pmfs.iter().enumerate() {
        let v: Vec<f64> = pmf.iter().map(|&x| x as f64).collect();
        smooth.extend(smoothness_rows(&v, m)?);
        let labels =
            PmfLabels { title: format!("{} dim {h}", p.title), axis: p.axes.get(h).cloned().unwrap_or(BinAxis::Index) };
        for (row, tag) in &p.images {
            let png = pmf_png_labelled(&pmf[row * m..(row + 1) * m], p.targets[row * heads + h], &labels);
            tb.image(&format!("{kind}_pmf/{tag}_dim{h}"), step, &png)?;
        }
        let mode: Vec<f32> = pmf.chunks(m).map(|row| argmax(row) as f32).collect();
        tb.histogram(&format!("{kind}s/predicted_bin_dim{h}"), step, &mode, m.min(64))?;
        tb.histogram(&format!("{kind}s/pmf_dim{h}"), step, pmf, 50)?;
    }
    let s = smooth.iter().sum::<f64>() / smooth.len().max(1) as f64;
    tb.scalar(&format!("{kind}s/pmf_smoothness"), step, s)?;
    Ok(())
}

/// Histograms of every 2-D parameter (weights) at `step`.
pub(crate) fn log_weights(tb: &mut SummaryWriter, params: &[NamedTensor], step: u64) -> anyhow::Result<()> {
    for p in params {
        if p.shape.len() == 2 {
            tb.histogram(&format!("weights/{}", p.name), step, &p.data, 50)?;
        }
    }
    Ok(())
}
