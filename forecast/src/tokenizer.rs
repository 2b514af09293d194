//! Chronos' tokenisers: a series is divided by its mean absolute value over the context (mean scaling; 1 when that
//! is not positive) and each scaled value is put in a bin; token ids `0..n_special` are special (PAD 0 for missing
//! values, EOS 1 after a sequence), the bins follow. Two bin layouts:
//!
//! - [`Bins::Uniform`] — Chronos' `MeanScaleUniformBins`: `n_tokens − n_special − 1` evenly spaced centres on
//!   `[low, high]`, bin edges halfway between centres, the outer bins open.
//! - [`Bins::Mixed`] — the Fourier-head paper's `MeanScaleMixedUniformBins`: three uniform layouts side by side,
//!   sparse on `[low, mid1)` and `[mid2, high]`, dense on `[mid1, mid2)`; the sparse ones share `sparse_density` of
//!   the tokens in proportion to their widths. Token ids are the paper's exactly.
//!
//! Arithmetic is in `f32` as PyTorch does it (centres as `torch.linspace` computes them), so tokens equal the
//! reference implementations' (tested against a fixture they wrote).

use serde::{Deserialize, Serialize};

/// How values are binned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Bins {
    /// Evenly spaced centres on `[low, high]` (Chronos).
    Uniform {
        /// The lowest centre.
        low: f32,
        /// The highest centre.
        high: f32,
    },
    /// Sparse, dense and sparse uniform layouts (the Fourier-head paper).
    Mixed {
        /// The lowest centre.
        low: f32,
        /// Where the dense layout starts.
        mid1: f32,
        /// Where the dense layout ends.
        mid2: f32,
        /// The highest centre.
        high: f32,
        /// Share of the tokens in the two sparse layouts together.
        sparse_density: f32,
    },
}

/// A tokeniser's settings; the defaults are the paper's (4096 tokens, PAD 0, EOS 1, mixed bins on [−15, 15] with
/// the dense part on [−1, 10) and 20% of the tokens outside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizerConfig {
    /// Vocabulary size, special tokens included.
    pub n_tokens: usize,
    /// Special tokens before the bins.
    pub n_special: usize,
    /// The id of a missing value.
    pub pad: u32,
    /// The id that ends a sequence.
    pub eos: u32,
    /// Whether EOS follows a context and a label.
    pub use_eos: bool,
    /// The bin layout.
    pub bins: Bins,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            n_tokens: 4096,
            n_special: 2,
            pad: 0,
            eos: 1,
            use_eos: true,
            bins: Bins::Mixed { low: -15.0, mid1: -1.0, mid2: 10.0, high: 15.0, sparse_density: 0.2 },
        }
    }
}

/// A tokeniser setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tokenizer: `{field}` = {value}: {reason}")]
pub struct TokenizerError {
    /// The field at fault.
    pub field: &'static str,
    /// Its value.
    pub value: String,
    /// What it must satisfy.
    pub reason: &'static str,
}

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> TokenizerError {
    TokenizerError { field, value: value.to_string(), reason }
}

/// One uniform layout: its centres, bin edges, and the id of its first bucket.
#[derive(Debug, Clone)]
struct Layout {
    centres: Vec<f32>,
    /// `centres.len() + 1` edges: open outer bins (±1e20 as in Chronos), then halfway between centres.
    edges: Vec<f32>,
    /// Token id = bucket index + `offset` (bucket 1 is the first centre).
    offset: u32,
}

impl Layout {
    fn new(low: f32, high: f32, centres: usize, offset: u32) -> Self {
        let centres = linspace(low, high, centres);
        let mut edges = Vec::with_capacity(centres.len() + 1);
        edges.push(-1e20);
        edges.extend(centres.windows(2).map(|w| (w[1] + w[0]) / 2.0));
        edges.push(1e20);
        Self { centres, edges, offset }
    }

    /// The bucket `torch.bucketize(x, edges, right=True)` gives: the number of edges at or below `x`.
    fn token(&self, x: f32) -> u32 {
        self.edges.partition_point(|&e| e <= x) as u32 + self.offset
    }

    /// The centre of `token` if it is one of this layout's.
    fn centre(&self, token: u32) -> Option<f32> {
        let bucket = token.checked_sub(self.offset)?;
        self.centres.get((bucket as usize).checked_sub(1)?).copied()
    }
}

/// `steps` evenly spaced values from `start` to `end` as `torch.linspace` computes them in `f32`: the first half
/// `start + step·i`, the second half `end − step·(steps − 1 − i)`, each a fused multiply-add (one rounding).
pub fn linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    let at = |i: usize| {
        if i < half { step.mul_add(i as f32, start) } else { (-step).mul_add((steps - i - 1) as f32, end) }
    };
    (0..steps).map(at).collect()
}

/// Values ↔ tokens with mean scaling (see the module documentation).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    config: TokenizerConfig,
    /// The layouts in value order, each with the scaled values it takes (`[from, to)`).
    layouts: Vec<(f32, f32, Layout)>,
}

impl Tokenizer {
    /// A tokeniser for `config`; an error names a field that cannot work.
    pub fn new(config: TokenizerConfig) -> Result<Self, TokenizerError> {
        let (n, special) = (config.n_tokens, config.n_special);
        if special < 1 || config.pad as usize >= special || config.eos as usize >= special {
            return Err(invalid("n_special", special, "PAD and EOS must be special tokens (ids below n_special)"));
        }
        let finite_order = |v: &[f32]| v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] < w[1]);
        let layouts = match config.bins {
            Bins::Uniform { low, high } => {
                if !finite_order(&[low, high]) {
                    return Err(invalid("bins", format!("[{low}, {high}]"), "needs finite low < high"));
                }
                if n < special + 3 {
                    return Err(invalid("n_tokens", n, "leaves fewer than 2 bins"));
                }
                vec![(f32::NEG_INFINITY, f32::INFINITY, Layout::new(low, high, n - special - 1, special as u32))]
            }
            Bins::Mixed { low, mid1, mid2, high, sparse_density } => {
                if !finite_order(&[low, mid1, mid2, high]) {
                    return Err(invalid(
                        "bins",
                        format!("{low}, {mid1}, {mid2}, {high}"),
                        "needs low < mid1 < mid2 < high",
                    ));
                }
                if !(sparse_density > 0.0 && sparse_density < 1.0) {
                    return Err(invalid("sparse_density", sparse_density, "must be in (0, 1)"));
                }
                // The paper's split: truncated shares of the sparse tokens by width, the rest dense.
                let sparse = (mid1 - low) + (high - mid2);
                let sparse1 = (sparse_density as f64 * n as f64 * (mid1 - low) as f64 / sparse as f64) as usize;
                let sparse2 = (sparse_density as f64 * n as f64 * (high - mid2) as f64 / sparse as f64) as usize;
                let dense = n.saturating_sub(sparse1 + sparse2);
                if sparse1 < special + 3 || sparse2 < 3 || dense < 3 {
                    return Err(invalid("n_tokens", n, "too few tokens for three layouts of at least 2 bins"));
                }
                vec![
                    (f32::NEG_INFINITY, mid1, Layout::new(low, mid1, sparse1 - special - 1, special as u32)),
                    (mid1, mid2, Layout::new(mid1, mid2, dense - 1, sparse1 as u32)),
                    (mid2, f32::INFINITY, Layout::new(mid2, high, sparse2 - 1, (sparse1 + dense) as u32)),
                ]
            }
        };
        Ok(Self { config, layouts })
    }

    /// Its settings.
    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// The mean absolute value of the non-missing values of `context` (in `f32`), or 1 when that is not positive
    /// (an all-zero or all-missing context).
    pub fn scale(context: &[f32]) -> f32 {
        let (sum, n) =
            context.iter().filter(|x| !x.is_nan()).fold((0.0f64, 0usize), |(s, n), x| (s + x.abs() as f64, n + 1));
        let scale = (sum as f32) / n as f32;
        if scale > 0.0 { scale } else { 1.0 }
    }

    /// The token of one value at `scale` (PAD for NaN).
    pub fn token(&self, value: f32, scale: f32) -> u32 {
        if value.is_nan() {
            return self.config.pad;
        }
        let x = value / scale;
        let (_, _, layout) = self
            .layouts
            .iter()
            .find(|(from, to, _)| x >= *from && x < *to)
            .unwrap_or(&self.layouts[self.layouts.len() - 1]);
        layout.token(x)
    }

    /// Tokens of `values` at `scale`, then EOS when the tokeniser appends one.
    pub fn encode(&self, values: &[f32], scale: f32) -> Vec<u32> {
        let mut out: Vec<u32> = values.iter().map(|&v| self.token(v, scale)).collect();
        if self.config.use_eos {
            out.push(self.config.eos);
        }
        out
    }

    /// The last `context_length` values of `context` as tokens (EOS appended when set), with their scale.
    pub fn encode_context(&self, context: &[f32], context_length: usize) -> (Vec<u32>, f32) {
        let context = &context[context.len().saturating_sub(context_length)..];
        let scale = Self::scale(context);
        (self.encode(context, scale), scale)
    }

    /// The value a token stands for at `scale`: its bin's centre; special tokens and unused ids are `None`.
    pub fn value(&self, token: u32, scale: f32) -> Option<f32> {
        self.layouts.iter().find_map(|(_, _, l)| l.centre(token)).map(|c| c * scale)
    }

    /// The value any token id stands for at `scale`, as Chronos decodes samples: its bin's centre; ids that are no
    /// bin's (special tokens, unused ids) take the centre of the nearest bin below, or the lowest bin.
    pub fn decode(&self, token: u32, scale: f32) -> f32 {
        let below = (0..=token).rev().find_map(|t| self.value(t, 1.0));
        let centre = below.unwrap_or_else(|| self.layouts[0].2.centres[0]);
        centre * scale
    }

    /// Every bin centre in token order (special tokens excluded).
    pub fn centres(&self) -> Vec<f32> {
        self.layouts.iter().flat_map(|(_, _, l)| l.centres.iter().copied()).collect()
    }
}
