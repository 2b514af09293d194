//! Observation and action spaces.

use serde::{Deserialize, Serialize};

/// A Gymnasium-style space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// Integers `0..n`.
    Discrete(usize),
    /// A box of f32 values with per-element bounds.
    Box {
        /// Lower bounds, one per element.
        low: Vec<f32>,
        /// Upper bounds, one per element.
        high: Vec<f32>,
        /// Shape of one value.
        shape: Vec<usize>,
    },
}

impl Space {
    /// A one-dimensional f32 box.
    pub fn vector(low: &[f32], high: &[f32]) -> Self {
        Space::Box { low: low.to_vec(), high: high.to_vec(), shape: vec![low.len()] }
    }

    /// Number of scalar elements of one value (1 for discrete).
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Discrete(_) => 1,
            Space::Box { shape, .. } => shape.iter().product(),
        }
    }
}
