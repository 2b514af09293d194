//! The DT's layers as single fused operations on the CPU: a linear layer with its bias, LayerNorm, causal
//! multi-head attention from the packed `qkv` projection, and the exact GELU (in [`super::gelu`]).
//!
//! burn records each layer as a chain of small operations (LayerNorm: nine forward, more backward; attention:
//! a dozen, plus copies for the head layout), and every one allocates a zero-filled output that burn's CPU
//! backend then copies into an aligned buffer. Here each layer is one operation of burn's autodiff graph
//! (burn's backend-extension API, `burn_autodiff::ops::Backward`) whose forward and backward passes are a few
//! GEMMs and one pass over the rows each, writing straight into their outputs. The arithmetic is the layer's
//! own (same formulas as burn's composition; results agree to rounding, tested against it); other devices
//! (the GPU) and other dtypes use burn's layers unchanged.

mod attention;
mod layer_norm;
mod linear;
#[cfg(test)]
mod tests;

pub use attention::causal_attention;
pub use layer_norm::layer_norm;
pub use linear::linear;

pub use frl_heads::fused::set_enabled;
pub(crate) use frl_heads::fused::{Inputs, Mat, cpu, dense, matmul, plain_output, tensor, tracked_output, values};
