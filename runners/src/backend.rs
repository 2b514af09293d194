//! The one place that picks the tensor backend: burn's pure-Rust `flex` CPU backend.

use burn::tensor::Device;

/// The device models train on (with autodiff).
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// A short name of the backend, for logs and summaries.
pub fn backend_name() -> &'static str {
    "flex (CPU)"
}
