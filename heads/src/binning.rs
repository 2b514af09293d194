//! Binning of continuous values into ordered bins, and permutations that order discrete ids into rings.

use serde::{Deserialize, Serialize};

use crate::error::HeadError;

/// `bins` uniform bins over `[low, high]` for one dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UniformBins {
    /// Lower edge of the first bin.
    pub low: f64,
    /// Upper edge of the last bin.
    pub high: f64,
    /// Number of bins.
    pub bins: usize,
}

impl UniformBins {
    /// Uniform bins, checking `low < high` (both finite) and `bins >= 2`.
    pub fn new(low: f64, high: f64, bins: usize) -> Result<Self, HeadError> {
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(HeadError::invalid("low/high", format!("[{low}, {high}]"), "need finite low < high"));
        }
        if bins < 2 {
            return Err(HeadError::invalid("bins", bins, "must be at least 2"));
        }
        Ok(Self { low, high, bins })
    }

    /// Edge `i` of `bins + 1`, as `numpy.linspace(low, high, bins + 1)[i]`.
    pub fn edge(&self, i: usize) -> f64 {
        if i == self.bins {
            return self.high;
        }
        self.low + (self.high - self.low) / self.bins as f64 * i as f64
    }

    /// The bin holding `value` (`numpy.digitize(value, edges) - 1`); values outside `[low, high]` clip to the end
    /// bins, NaN is an error.
    pub fn bin(&self, value: f64) -> Result<usize, HeadError> {
        if value.is_nan() {
            return Err(HeadError::NanValue { dim: 0 });
        }
        let guess = ((value - self.low) / (self.high - self.low) * self.bins as f64).floor();
        let mut i = guess.clamp(0.0, (self.bins - 1) as f64) as usize;
        // Correct the float guess against the exact edges, as digitize would.
        while i > 0 && value < self.edge(i) {
            i -= 1;
        }
        while i + 1 < self.bins && value >= self.edge(i + 1) {
            i += 1;
        }
        Ok(i)
    }

    /// Centre of bin `i`.
    pub fn centre(&self, i: usize) -> f64 {
        let width = (self.high - self.low) / self.bins as f64;
        self.low + width * (i.min(self.bins - 1) as f64 + 0.5)
    }
}

/// A permutation from raw ids (e.g. an env's action numbers) to ordered bin positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "PermutationSpec", into = "Vec<usize>")]
#[schemars(with = "PermutationSpec")]
pub struct Permutation {
    to_bin: Vec<usize>,
    to_id: Vec<usize>,
}

impl Permutation {
    /// A permutation given as `to_bin[id] = bin`; every bin must appear exactly once.
    pub fn new(to_bin: Vec<usize>) -> Result<Self, HeadError> {
        let n = to_bin.len();
        let mut to_id = vec![usize::MAX; n];
        for (id, &b) in to_bin.iter().enumerate() {
            if b >= n || to_id[b] != usize::MAX {
                return Err(HeadError::invalid(
                    "permutation",
                    format!("{to_bin:?}"),
                    "must hold each of 0..n exactly once",
                ));
            }
            to_id[b] = id;
        }
        Ok(Self { to_bin, to_id })
    }

    /// The 18 full Atari actions ordered as a ring of directions: NOOP, the eight directions, the eight with
    /// FIRE, then FIRE (the Decision Transformer Seaquest ring of the Fourier-head paper).
    pub fn atari_direction_ring() -> Self {
        let to_bin = vec![0, 17, 3, 5, 1, 7, 4, 2, 6, 8, 11, 13, 9, 15, 12, 10, 14, 16];
        Self::new(to_bin).expect("the ring is a permutation")
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.to_bin.len()
    }

    /// Whether the permutation is empty.
    pub fn is_empty(&self) -> bool {
        self.to_bin.is_empty()
    }

    /// Bin position of raw id `id`.
    pub fn bin(&self, id: usize) -> Option<usize> {
        self.to_bin.get(id).copied()
    }

    /// Raw id at bin position `bin`.
    pub fn id(&self, bin: usize) -> Option<usize> {
        self.to_id.get(bin).copied()
    }
}

/// A permutation as a job file gives it: `to_bin` as a list, or the name of a built-in one.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PermutationSpec {
    /// `to_bin[id] = bin`.
    Ids(Vec<usize>),
    /// A built-in permutation: `"atari_direction_ring"`.
    Named(String),
}

impl TryFrom<PermutationSpec> for Permutation {
    type Error = HeadError;
    fn try_from(spec: PermutationSpec) -> Result<Self, Self::Error> {
        match spec {
            PermutationSpec::Ids(v) => Self::new(v),
            PermutationSpec::Named(name) if name == "atari_direction_ring" => Ok(Self::atari_direction_ring()),
            PermutationSpec::Named(name) => Err(HeadError::invalid(
                "permutation",
                format!("{name:?}"),
                "must be a list of bin positions or the name of a built-in one (\"atari_direction_ring\")",
            )),
        }
    }
}

impl TryFrom<Vec<usize>> for Permutation {
    type Error = HeadError;
    fn try_from(v: Vec<usize>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<Permutation> for Vec<usize> {
    fn from(p: Permutation) -> Self {
        p.to_bin
    }
}

/// Per-dimension uniform binning of continuous vectors (e.g. continuous actions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binning {
    /// One set of bins per dimension.
    pub dims: Vec<UniformBins>,
}

impl Binning {
    /// `bins` uniform bins per dimension over `[low[d], high[d]]`.
    pub fn new(low: &[f64], high: &[f64], bins: usize) -> Result<Self, HeadError> {
        if low.len() != high.len() {
            return Err(HeadError::Shape { what: "binning high bounds", expected: low.len(), got: high.len() });
        }
        let dims = low.iter().zip(high).map(|(&l, &h)| UniformBins::new(l, h, bins)).collect::<Result<_, _>>()?;
        Ok(Self { dims })
    }

    /// Bin indices of one vector; out-of-range values clip, NaN is an error naming the dimension.
    pub fn encode(&self, values: &[f64]) -> Result<Vec<usize>, HeadError> {
        if values.len() != self.dims.len() {
            return Err(HeadError::Shape { what: "binned vector", expected: self.dims.len(), got: values.len() });
        }
        values
            .iter()
            .zip(&self.dims)
            .enumerate()
            .map(|(d, (&v, bins))| bins.bin(v).map_err(|_| HeadError::NanValue { dim: d }))
            .collect()
    }

    /// Bin centres of one vector of bin indices.
    pub fn decode(&self, bins: &[usize]) -> Result<Vec<f64>, HeadError> {
        if bins.len() != self.dims.len() {
            return Err(HeadError::Shape { what: "bin index vector", expected: self.dims.len(), got: bins.len() });
        }
        Ok(bins.iter().zip(&self.dims).map(|(&i, b)| b.centre(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_match_digitize_and_clip() {
        let b = UniformBins::new(-1.0, 1.0, 50).unwrap();
        assert_eq!(b.bin(-1.0).unwrap(), 0);
        assert_eq!(b.bin(-0.96).unwrap(), 1); // exactly on edge 1 goes right, as digitize does
        assert_eq!(b.bin(-0.9600001).unwrap(), 0);
        assert_eq!(b.bin(0.0).unwrap(), 25);
        assert_eq!(b.bin(1.0).unwrap(), 49);
        assert_eq!(b.bin(7.0).unwrap(), 49);
        assert_eq!(b.bin(-7.0).unwrap(), 0);
        assert!(matches!(b.bin(f64::NAN), Err(HeadError::NanValue { .. })));
    }

    #[test]
    fn centre_round_trips() {
        let b = UniformBins::new(-2.0, 2.0, 64).unwrap();
        for i in 0..64 {
            assert_eq!(b.bin(b.centre(i)).unwrap(), i);
        }
        assert!((b.centre(0) - (-2.0 + 2.0 / 64.0)).abs() < 1e-12);
    }

    #[test]
    fn binning_names_nan_dimension_and_checks_lengths() {
        let b = Binning::new(&[-1.0, 0.0], &[1.0, 10.0], 8).unwrap();
        assert_eq!(b.encode(&[0.0, 10.0]).unwrap(), vec![4, 7]);
        assert_eq!(b.encode(&[0.0, f64::NAN]), Err(HeadError::NanValue { dim: 1 }));
        assert!(b.encode(&[0.0]).is_err());
        assert!(Binning::new(&[1.0], &[1.0], 8).is_err());
        assert!(Binning::new(&[0.0], &[1.0], 1).is_err());
        let centres = b.decode(&[0, 7]).unwrap();
        assert!((centres[0] + 0.875).abs() < 1e-12 && (centres[1] - 9.375).abs() < 1e-12);
    }

    #[test]
    fn atari_ring_matches_the_paper_table() {
        let p = Permutation::atari_direction_ring();
        let table = [
            (0, 0),
            (4, 1),
            (7, 2),
            (2, 3),
            (6, 4),
            (3, 5),
            (8, 6),
            (5, 7),
            (9, 8),
            (12, 9),
            (15, 10),
            (10, 11),
            (14, 12),
            (11, 13),
            (16, 14),
            (13, 15),
            (17, 16),
            (1, 17),
        ];
        for (id, bin) in table {
            assert_eq!(p.bin(id), Some(bin));
            assert_eq!(p.id(bin), Some(id));
        }
        assert!(Permutation::new(vec![0, 0, 1]).is_err());
        assert!(Permutation::new(vec![0, 3]).is_err());
        let json = serde_json::to_string(&p).unwrap();
        let back: Permutation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<Permutation>("[1, 1]").is_err());
        let named: Permutation = serde_json::from_str("\"atari_direction_ring\"").unwrap();
        assert_eq!(named, p);
        let err = serde_json::from_str::<Permutation>("\"atari_ring\"").unwrap_err().to_string();
        assert!(err.contains("atari_ring") && err.contains("atari_direction_ring"), "{err}");
    }
}
