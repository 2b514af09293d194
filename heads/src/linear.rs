//! The linear head: `Linear(d, m)` whose outputs are the logits.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::HeadError;
use crate::head::{Head, HeadOutput, softmax_cross_entropy, softmax_cross_entropy_soft};
use crate::init;

/// Configuration of the linear head (it has no options of its own).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearHeadConfig {}

impl LinearHeadConfig {
    /// Builds a linear head from `d_in` features to `bins` logits.
    pub fn init(
        &self,
        d_in: usize,
        bins: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<LinearHead, HeadError> {
        crate::error::check_sizes(d_in, bins)?;
        Ok(LinearHead { linear: init::linear(d_in, bins, 1.0, 1.0, rng, device) })
    }
}

/// `Linear(d, m)`: the standard output layer the other heads replace.
#[derive(Module, Debug)]
pub struct LinearHead {
    /// The projection to logits.
    pub linear: Linear,
}

impl Head for LinearHead {
    fn input_dim(&self) -> usize {
        self.linear.weight.dims()[0]
    }

    fn bins(&self) -> usize {
        self.linear.weight.dims()[1]
    }

    fn forward(&self, features: Tensor<2>) -> HeadOutput {
        HeadOutput { logits: self.linear.forward(features), regularizer: None }
    }

    fn cross_entropy(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        softmax_cross_entropy(logits, targets)
    }

    fn cross_entropy_soft(&self, logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
        softmax_cross_entropy_soft(logits, targets)
    }
}
