//! [`ActionCoding`]: how env actions become model inputs, head targets, and back (every agent with action heads).

use frl_envs::{Action, Space};
use frl_heads::Binning;
use frl_heads::binning::Permutation;
use frl_learner::BinAxis;
use serde::{Deserialize, Serialize};

use super::AgentError as DtError;

/// How one action space maps onto an agent: input features for an action, one head per action dimension with its
/// bins, and decoding of chosen bins back into an env action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionCoding {
    /// `n` discrete actions: one-hot input, one head over `n` bins (ids reordered by `permutation` when given).
    Discrete {
        /// Number of actions.
        n: usize,
        /// Raw id → bin order for the head, e.g. the Atari direction ring.
        permutation: Option<Permutation>,
    },
    /// A box of continuous actions: inputs scaled to `[-1, 1]`, each dimension binned into its own head.
    Continuous {
        /// The per-dimension bins over the (widened) bounds.
        binning: Binning,
        /// The space's own bounds per dimension; decoded actions are clipped to them.
        bounds: Vec<(f32, f32)>,
    },
}

impl ActionCoding {
    /// The coding of `space` with `bins` bins per continuous dimension spanning the bounds widened by `margin`
    /// (a fraction of the range) on each side.
    pub fn new(space: &Space, bins: usize, margin: f64, permutation: Option<Permutation>) -> Result<Self, DtError> {
        match space {
            Space::Discrete(n) => {
                if let Some(p) = &permutation
                    && p.len() != *n
                {
                    return Err(DtError::Config(format!(
                        "action permutation has {} entries but the action space has {n} actions",
                        p.len()
                    )));
                }
                Ok(ActionCoding::Discrete { n: *n, permutation })
            }
            Space::Box { low, high, .. } => {
                if permutation.is_some() {
                    return Err(DtError::Config("an action permutation applies to discrete actions only".into()));
                }
                if low.iter().chain(high).any(|v| !v.is_finite() || v.abs() > 1e6) {
                    return Err(DtError::Config(format!(
                        "continuous actions need finite bounds to be binned, got low {low:?} high {high:?}"
                    )));
                }
                if !(0.0..=1.0).contains(&margin) {
                    return Err(DtError::Config(format!("`bin_margin` = {margin}: must be in [0, 1]")));
                }
                let widen = |l: f32, h: f32, side: f64| {
                    let (l, h) = (l as f64, h as f64);
                    if side < 0.0 { l - margin * (h - l) } else { h + margin * (h - l) }
                };
                let lo: Vec<f64> = low.iter().zip(high).map(|(&l, &h)| widen(l, h, -1.0)).collect();
                let hi: Vec<f64> = low.iter().zip(high).map(|(&l, &h)| widen(l, h, 1.0)).collect();
                let binning = Binning::new(&lo, &hi, bins).map_err(|e| DtError::Config(e.to_string()))?;
                let bounds = low.iter().zip(high).map(|(&l, &h)| (l, h)).collect();
                Ok(ActionCoding::Continuous { binning, bounds })
            }
        }
    }

    /// Elements of one stored action (1 for discrete).
    pub fn act_dim(&self) -> usize {
        match self {
            ActionCoding::Discrete { .. } => 1,
            ActionCoding::Continuous { binning, .. } => binning.dims.len(),
        }
    }

    /// Size of the action token's input features.
    pub fn feature_dim(&self) -> usize {
        match self {
            ActionCoding::Discrete { n, .. } => *n,
            ActionCoding::Continuous { binning, .. } => binning.dims.len(),
        }
    }

    /// Number of heads (one per action dimension).
    pub fn heads(&self) -> usize {
        self.act_dim()
    }

    /// Bins of each head.
    pub fn bins(&self) -> usize {
        match self {
            ActionCoding::Discrete { n, .. } => *n,
            ActionCoding::Continuous { binning, .. } => binning.dims[0].bins,
        }
    }

    /// What each head's bins stand for: the (widened) action range of a continuous dimension, or the action id of
    /// each bin.
    pub fn bin_axes(&self) -> Vec<BinAxis> {
        match self {
            ActionCoding::Discrete { n, permutation } => {
                let id = |b: usize| permutation.as_ref().and_then(|p| p.id(b)).unwrap_or(b);
                vec![BinAxis::Labels((0..*n).map(|b| id(b).to_string()).collect())]
            }
            ActionCoding::Continuous { binning, .. } => {
                binning.dims.iter().map(|d| BinAxis::Range { low: d.low, high: d.high }).collect()
            }
        }
    }

    /// Appends the action token's features for a stored action (`act_dim` values).
    pub fn push_features(&self, action: &[f32], out: &mut Vec<f32>) {
        match self {
            ActionCoding::Discrete { n, .. } => {
                let id = action[0] as usize;
                out.extend((0..*n).map(|i| if i == id { 1.0 } else { 0.0 }));
            }
            ActionCoding::Continuous { bounds, .. } => {
                for (v, (l, h)) in action.iter().zip(bounds) {
                    out.push((2.0 * (v - l) / (h - l) - 1.0).clamp(-1.0, 1.0));
                }
            }
        }
    }

    /// Appends the head targets (one bin per head) of a stored action; NaN or an id out of range is an error.
    pub fn push_targets(&self, action: &[f32], out: &mut Vec<i64>) -> Result<(), DtError> {
        match self {
            ActionCoding::Discrete { n, permutation } => {
                let v = action[0];
                if !(v >= 0.0 && (v as usize) < *n && v.fract() == 0.0) {
                    return Err(DtError::Data(format!("discrete action {v} is not in 0..{n}")));
                }
                let id = v as usize;
                let bin = permutation.as_ref().and_then(|p| p.bin(id)).unwrap_or(id);
                out.push(bin as i64);
            }
            ActionCoding::Continuous { binning, .. } => {
                let values: Vec<f64> = action.iter().map(|&v| v as f64).collect();
                let bins = binning.encode(&values).map_err(|e| DtError::Data(e.to_string()))?;
                out.extend(bins.into_iter().map(|b| b as i64));
            }
        }
        Ok(())
    }

    /// The env action for one chosen bin per head.
    pub fn decode(&self, bins: &[usize]) -> Action {
        match self {
            ActionCoding::Discrete { permutation, .. } => {
                let id = permutation.as_ref().and_then(|p| p.id(bins[0])).unwrap_or(bins[0]);
                Action::Discrete(id)
            }
            ActionCoding::Continuous { binning, bounds } => Action::Continuous(
                bins.iter()
                    .zip(&binning.dims)
                    .zip(bounds)
                    .map(|((&i, b), (l, h))| (b.centre(i) as f32).clamp(*l, *h))
                    .collect(),
            ),
        }
    }

    /// The env action for an expected bin centre on `[-1, 1]` per head (continuous actions); discrete actions
    /// round to the nearest bin.
    pub fn decode_mean(&self, centres: &[f32]) -> Action {
        match self {
            ActionCoding::Discrete { n, .. } => {
                let pos = ((centres[0] + 1.0) / 2.0 * *n as f32 - 0.5).round().clamp(0.0, (*n - 1) as f32);
                self.decode(&[pos as usize])
            }
            ActionCoding::Continuous { binning, bounds } => Action::Continuous(
                centres
                    .iter()
                    .zip(&binning.dims)
                    .zip(bounds)
                    .map(|((&c, b), (l, h))| ((b.low + (c as f64 + 1.0) / 2.0 * (b.high - b.low)) as f32).clamp(*l, *h))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_round_trip_lands_in_the_same_bin() {
        let space = Space::vector(&[-2.0], &[2.0]);
        let c = ActionCoding::new(&space, 64, 0.0, None).unwrap();
        let mut t = Vec::new();
        c.push_targets(&[0.7], &mut t).unwrap();
        let Action::Continuous(a) = c.decode(&[t[0] as usize]) else { panic!("continuous") };
        assert!((a[0] - 0.7).abs() <= 4.0 / 64.0);
        let mut f = Vec::new();
        c.push_features(&[2.0], &mut f);
        assert_eq!(f, vec![1.0]);
        assert!(c.push_targets(&[f32::NAN], &mut t).is_err());
    }

    #[test]
    fn margin_keeps_the_bounds_apart_and_decoding_inside_them() {
        let space = Space::vector(&[-2.0], &[2.0]);
        let c = ActionCoding::new(&space, 12, 0.25, None).unwrap();
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        c.push_targets(&[-2.0], &mut lo).unwrap();
        c.push_targets(&[2.0], &mut hi).unwrap();
        // The range [-3, 3] in 12 bins of width 0.5: the bounds fall in bins 2 and 10, two bins from each end.
        assert_eq!((lo[0], hi[0]), (2, 10));
        assert_eq!(c.decode(&[0]), Action::Continuous(vec![-2.0]));
        assert_eq!(c.decode(&[11]), Action::Continuous(vec![2.0]));
        assert_eq!(c.decode_mean(&[1.0]), Action::Continuous(vec![2.0]));
        assert!(ActionCoding::new(&space, 12, -0.1, None).is_err());
    }

    #[test]
    fn discrete_permutation_maps_both_ways() {
        let p = Permutation::atari_direction_ring();
        let c = ActionCoding::new(&Space::Discrete(18), 64, 0.0, Some(p)).unwrap();
        let mut t = Vec::new();
        c.push_targets(&[1.0], &mut t).unwrap();
        assert_eq!(t, vec![17]);
        assert_eq!(c.decode(&[17]), Action::Discrete(1));
        assert!(c.push_targets(&[18.0], &mut t).is_err());
        assert!(ActionCoding::new(&Space::Discrete(4), 8, 0.0, Some(Permutation::atari_direction_ring())).is_err());
    }
}
