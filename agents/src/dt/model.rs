//! The Decision Transformer network: token embeddings, GPT blocks with causal self-attention, and one action head
//! per action dimension.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use frl_heads::head::nll;
use frl_heads::{AnyHead, Head, HeadLoss};
use frl_nn::{Block, DropoutDraw, DropoutMasks, INIT_STD, fused, normal, normal_linear};
use rand::RngCore;

use super::{DecisionTransformerConfig, DtError, StateEncoderConfig};

/// The state encoder: an MLP for vector observations, or the Nature-DQN conv stack for stacked frames.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum StateEncoder {
    /// Linear layers with ReLU between them.
    Mlp(MlpEncoder),
    /// Three convolutions, then a linear layer and tanh.
    NatureCnn(NatureCnn),
}

impl StateEncoder {
    fn new(kind: &StateEncoderConfig, obs_dim: usize, d: usize, rng: &mut dyn RngCore, device: &Device) -> Self {
        match kind {
            StateEncoderConfig::Mlp { hidden } => StateEncoder::Mlp(MlpEncoder::new(obs_dim, hidden, d, rng, device)),
            StateEncoderConfig::NatureCnn { frames, height, width } => {
                StateEncoder::NatureCnn(NatureCnn::new(*frames, *height, *width, d, rng, device))
            }
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            StateEncoder::Mlp(m) => m.forward(x),
            StateEncoder::NatureCnn(c) => c.forward(x),
        }
    }
}

/// Linear layers with ReLU between them (a single linear embedding when there are no hidden layers).
#[derive(Module, Debug)]
pub struct MlpEncoder {
    layers: Vec<Linear>,
}

impl MlpEncoder {
    fn new(obs_dim: usize, hidden: &[usize], d: usize, rng: &mut dyn RngCore, device: &Device) -> Self {
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(d);
        let layers = sizes.windows(2).map(|w| normal_linear(w[0], w[1], INIT_STD, rng, device)).collect();
        Self { layers }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (i, l)| {
            let y = l.forward(x);
            if i < last { burn::tensor::activation::relu(y) } else { y }
        })
    }
}

/// The Nature-DQN encoder of the DT Atari reference: conv 8×8/4 (32), 4×4/2 (64), 3×3/1 (64) with ReLU, flatten,
/// linear to `d`, tanh. Observations are flat `frames × height × width` values (channel-first frame stacks).
#[derive(Module, Debug)]
pub struct NatureCnn {
    convs: Vec<Conv2d>,
    fc: Linear,
    frames: usize,
    height: usize,
    width: usize,
}

impl NatureCnn {
    fn new(frames: usize, height: usize, width: usize, d: usize, rng: &mut dyn RngCore, device: &Device) -> Self {
        let specs = [(frames, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)];
        let convs = specs.iter().map(|&(c_in, c_out, k, s)| conv(c_in, c_out, k, s, rng, device)).collect();
        let (h, w) = nature_cnn_output(height, width);
        Self { convs, fc: normal_linear(64 * h * w, d, INIT_STD, rng, device), frames, height, width }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let mut y = x.reshape([b * t, self.frames, self.height, self.width]);
        for c in &self.convs {
            y = burn::tensor::activation::relu(c.forward(y));
        }
        let [n, ch, h, w] = y.dims();
        let y = self.fc.forward(y.reshape([n, ch * h * w])).tanh();
        let d = y.dims()[1];
        y.reshape([b, t, d])
    }
}

/// Spatial size after the three Nature-DQN convolutions (84×84 → 7×7).
pub fn nature_cnn_output(height: usize, width: usize) -> (usize, usize) {
    let out = |x: usize| ((((x.saturating_sub(8)) / 4 + 1).saturating_sub(4)) / 2 + 1).saturating_sub(3) + 1;
    (out(height), out(width))
}

/// A convolution with PyTorch's default uniform init, drawn from `rng`.
fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, rng: &mut dyn RngCore, device: &Device) -> Conv2d {
    let mut layer = Conv2dConfig::new([c_in, c_out], [k, k]).with_stride([stride, stride]).init(device);
    let fan_in = c_in * k * k;
    let bound = 1.0 / (fan_in as f32).sqrt();
    let w = frl_heads::init::uniform(rng, c_out * fan_in, bound);
    let b = frl_heads::init::uniform(rng, c_out, bound);
    layer.weight = Param::from_tensor(Tensor::<4>::from_data(TensorData::new(w, [c_out, c_in, k, k]), device));
    layer.bias = Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b, [c_out]), device)));
    layer
}

/// One batch of model inputs: `B` windows of `T` steps.
#[derive(Debug, Clone)]
pub struct DtInput {
    /// Scaled returns-to-go, `[B, T, 1]`.
    pub returns: Tensor<3>,
    /// Normalised observations, `[B, T, obs_dim]`.
    pub states: Tensor<3>,
    /// Action-token features, `[B, T, action_features]`.
    pub actions: Tensor<3>,
    /// Episode step of each position, `[B, T]`.
    pub timesteps: Tensor<2, Int>,
}

/// The Decision Transformer: `(R_t, s_t, a_t)` tokens with timestep embeddings, a causal GPT, and the action
/// heads read at the state tokens.
#[derive(Module, Debug)]
pub struct DecisionTransformer {
    embed_timestep: Embedding,
    embed_return: Linear,
    embed_state: StateEncoder,
    embed_action: Linear,
    embed_ln: LayerNorm,
    /// Dropout's probability and training switch (the masks: [`frl_nn::dropout_mask`]).
    dropout: Dropout,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// One action head per action dimension.
    pub heads: Vec<AnyHead>,
    embed_dim: usize,
    context: usize,
    max_episode_len: usize,
}

impl DecisionTransformer {
    /// Builds the network for `obs_dim` observations, `action_features` action-token inputs and `n_heads_out`
    /// heads of `bins` bins, drawing every initial parameter from `rng`.
    pub fn new(
        config: &DecisionTransformerConfig,
        obs_dim: usize,
        action_features: usize,
        n_heads_out: usize,
        bins: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<Self, DtError> {
        config.validate()?;
        if let Some(expected) = config.state_encoder.expected_obs_dim()
            && expected != obs_dim
        {
            return Err(DtError::Config(format!(
                "`state_encoder` expects observations of {expected} elements, the data has {obs_dim}"
            )));
        }
        let d = config.embed_dim;
        let heads = (0..n_heads_out)
            .map(|_| config.head.init(d, bins, rng, device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DtError::Config(format!("head: {e}")))?;
        Ok(Self {
            embed_timestep: Embedding {
                weight: Param::from_tensor(normal([config.max_episode_len, d], INIT_STD, rng, device)),
            },
            embed_return: normal_linear(1, d, INIT_STD, rng, device),
            embed_state: StateEncoder::new(&config.state_encoder, obs_dim, d, rng, device),
            embed_action: normal_linear(action_features, d, INIT_STD, rng, device),
            embed_ln: LayerNormConfig::new(d).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            blocks: (0..config.layers).map(|_| Block::new(d, config.heads, config.layers, rng, device)).collect(),
            ln_f: LayerNormConfig::new(d).init(device),
            heads,
            embed_dim: d,
            context: config.context,
            max_episode_len: config.max_episode_len,
        })
    }

    /// Context length `K` in steps.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Largest timestep the timestep embedding covers, plus one.
    pub fn max_episode_len(&self) -> usize {
        self.max_episode_len
    }

    /// Hidden states at the state tokens, `[B, T, d]`: the features the heads read to predict `a_t`, without dropout.
    pub fn features(&self, input: DtInput) -> Tensor<3> {
        self.features_with(input, DropoutMasks::none())
    }

    /// [`DecisionTransformer::features`] of a training step: with dropout (when the model trains on an autodiff
    /// device with a nonzero dropout), its masks drawn as `draw` says.
    pub fn features_train(&self, input: DtInput, draw: DropoutDraw) -> Tensor<3> {
        let prob = self.dropout.prob;
        let on = self.dropout.training.is_enabled() && input.states.device().is_autodiff() && prob > 0.0;
        let masks = if on { DropoutMasks::drawn(draw, 1.0 - prob) } else { DropoutMasks::none() };
        self.features_with(input, masks)
    }

    fn features_with(&self, input: DtInput, mut masks: DropoutMasks) -> Tensor<3> {
        let [b, t, _] = input.states.dims();
        let d = self.embed_dim;
        let time = self.embed_timestep.forward(input.timesteps); // [b, t, d]
        let r = self.embed_return.forward(input.returns) + time.clone();
        let s = self.embed_state.forward(input.states) + time.clone();
        let a = self.embed_action.forward(input.actions) + time;
        // Interleave as R_0, s_0, a_0, R_1, ...: stack on a new axis, then flatten it into the token axis.
        let tokens = Tensor::stack::<4>(vec![r, s, a], 2).reshape([b, 3 * t, d]);
        let mut x = masks.apply(fused::layer_norm(&self.embed_ln, tokens));
        for block in &self.blocks {
            x = block.forward(x, &mut masks);
        }
        let x = fused::layer_norm(&self.ln_f, x).reshape([b, t, 3, d]);
        x.narrow(2, 1, 1).reshape([b, t, d])
    }

    /// The loss over selected rows: `features` `[N, d]` (state-token features of the positions that count) and
    /// `targets` `[N, heads]` bins. Each head's loss is averaged over the heads.
    pub fn loss(&self, features: Tensor<2>, targets: Tensor<2, Int>) -> HeadLoss {
        self.loss_and_entropy(features, targets, false).0
    }

    /// The loss (as [`DecisionTransformer::loss`]) and, with `entropy`, the mean entropy (nats) of the heads' PMFs
    /// averaged over rows and heads, `[1]`, both from one forward per head.
    pub fn loss_and_entropy(
        &self,
        features: Tensor<2>,
        targets: Tensor<2, Int>,
        entropy: bool,
    ) -> (HeadLoss, Option<Tensor<1>>) {
        let mut total: Option<(HeadLoss, Option<Tensor<1>>)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            let t = targets.clone().narrow(1, i, 1).squeeze_dim::<1>(1);
            let (l, h) = if entropy {
                let out = head.forward(features.clone());
                let log_p = head.log_pmf(out.logits);
                (HeadLoss::new(nll(log_p.clone(), t), out.regularizer), Some(pmf_entropy(log_p)))
            } else {
                (head.loss(features.clone(), t), None)
            };
            total = Some(match total {
                None => (l, h),
                Some((acc, acc_h)) => (
                    HeadLoss {
                        total: acc.total + l.total,
                        cross_entropy: acc.cross_entropy + l.cross_entropy,
                        regularizer: match (acc.regularizer, l.regularizer) {
                            (Some(a), Some(b)) => Some(a + b),
                            (a, b) => a.or(b),
                        },
                    },
                    acc_h.zip(h).map(|(a, b)| a + b),
                ),
            });
        }
        let (l, h) = total.expect("a model has at least one head");
        let k = self.heads.len() as f32;
        let loss = HeadLoss {
            total: l.total.div_scalar(k),
            cross_entropy: l.cross_entropy.div_scalar(k),
            regularizer: l.regularizer.map(|r| r.div_scalar(k)),
        };
        (loss, h.map(|h| h.div_scalar(k)))
    }

    /// The mean entropy (nats) of the heads' PMFs at `features` `[N, d]`, averaged over rows and heads, `[1]`.
    pub fn entropy(&self, features: Tensor<2>) -> Tensor<1> {
        let k = self.heads.len() as f32;
        let mut heads = self.heads.iter().map(|head| pmf_entropy(head.log_pmf(head.logits(features.clone()))));
        let first = heads.next().expect("a model has at least one head");
        heads.fold(first, |acc, h| acc + h).div_scalar(k)
    }
}

/// Mean entropy `−Σ p ln p` over the rows of log-probabilities `[N, m]`, `[1]`.
fn pmf_entropy(log_p: Tensor<2>) -> Tensor<1> {
    (log_p.clone().exp() * log_p).sum_dim(1).mean().neg()
}

/// Random inputs of the right shapes, for tests and benchmarks.
pub fn random_input(b: usize, t: usize, obs_dim: usize, act_features: usize, device: &Device) -> DtInput {
    DtInput {
        returns: Tensor::random([b, t, 1], Distribution::Normal(0.0, 1.0), device),
        states: Tensor::random([b, t, obs_dim], Distribution::Normal(0.0, 1.0), device),
        actions: Tensor::random([b, t, act_features], Distribution::Normal(0.0, 1.0), device),
        timesteps: Tensor::<1, Int>::arange(0..t as i64, device).unsqueeze_dim::<2>(0).repeat_dim(0, b),
    }
}
