//! Errors raised while configuring heads or binning values.

use thiserror::Error;

/// Errors from head configuration, binning and metrics.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeadError {
    /// A configuration field holds a value outside its allowed range.
    #[error("invalid head config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// Name of the offending field.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What the field must satisfy.
        reason: &'static str,
    },
    /// A head config could not be parsed.
    #[error("cannot parse head config: {0}")]
    Parse(String),
    /// A value to be binned is NaN.
    #[error("cannot bin NaN (dimension {dim})")]
    NanValue {
        /// The dimension that held the NaN.
        dim: usize,
    },
    /// Two inputs that must agree in size do not.
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    Shape {
        /// What was being compared.
        what: &'static str,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
}

impl HeadError {
    pub(crate) fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> Self {
        HeadError::InvalidConfig { field, value: value.to_string(), reason }
    }
}

/// Checks the sizes every head shares: `d_in >= 1`, `bins >= 2`.
pub(crate) fn check_sizes(d_in: usize, bins: usize) -> Result<(), HeadError> {
    if d_in == 0 {
        return Err(HeadError::invalid("input_dim", d_in, "must be at least 1"));
    }
    if bins < 2 {
        return Err(HeadError::invalid("bins", bins, "must be at least 2"));
    }
    Ok(())
}

/// Checks that a real-valued field is finite and `>= 0`.
pub(crate) fn check_non_negative(field: &'static str, value: f64) -> Result<(), HeadError> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(HeadError::invalid(field, value, "must be finite and >= 0"))
    }
}
