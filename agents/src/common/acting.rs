//! Acting through heads over bins: the choice of a bin (sample, mode or mean) and its decoding into an env action,
//! shared by every policy that acts through heads.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use frl_envs::Action;
use frl_heads::bin_centres;
use frl_heads::head::{argmax, sample_logits, to_host};
use frl_heads::{AnyHead, Head};
use frl_learner::Decode;
use rand::RngCore;

use super::ActionCoding;

/// The action that `heads` choose at features `[1, d]`, decoded by `coding`, with every head's PMF: the shared last
/// step of every policy that acts through heads over bins.
pub fn decode_heads(
    heads: &[AnyHead],
    features: Tensor<2>,
    coding: &ActionCoding,
    decode: Decode,
    temperature: f32,
    rng: &mut dyn RngCore,
) -> (Vec<Vec<f32>>, Action) {
    let mut pmfs = Vec::with_capacity(heads.len());
    let mut bins = Vec::with_capacity(heads.len());
    let mut means = Vec::with_capacity(heads.len());
    for head in heads {
        // One forward per head: the PMF and the sample both come from these logits.
        let logits = head.logits(features.clone());
        let pmf = to_host(softmax(logits.clone(), 1));
        match decode {
            Decode::Sample => bins.push(sample_logits(logits, temperature, rng)[0]),
            Decode::Mode => bins.push(argmax(&pmf)),
            Decode::Mean => means.push(pmf.iter().zip(bin_centres(pmf.len())).map(|(p, b)| p * b).sum()),
        }
        pmfs.push(pmf);
    }
    let action = if decode == Decode::Mean { coding.decode_mean(&means) } else { coding.decode(&bins) };
    (pmfs, action)
}
