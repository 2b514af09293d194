//! The forecaster: a decoder-only transformer over Chronos' tokens with any head over the vocabulary, its job-file
//! section (`[forecast]`), and its training on the run layer ([`Trainable`]): a batch is a window of context tokens
//! followed by the forecast window's tokens, and the loss is the head's on the forecast window only.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use frl_heads::{AnyHead, Head, HeadConfig};
use frl_learner::optim::DEFAULT_GROUP;
use frl_learner::params::{NamedTensor, load_params, named_params};
use frl_learner::{ActionPmfs, BinAxis, ModelConfig, Optimizers, Scalars, Trainable};
use frl_nn::{Block, DropoutDraw, DropoutMasks, INIT_STD, fused, normal};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::data::{self, TrainingData, TrainingDataConfig};
use crate::tokenizer::{Tokenizer, TokenizerConfig};

/// The `[forecast]` section: the network, its tokeniser, its training data and how it samples forecasts. Defaults
/// are this machine's scale; the paper's values are named field by field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// Context tokens the model reads (the paper: 512).
    pub context: usize,
    /// Forecast tokens per training window (the paper: 64); longer horizons are forecast by feeding forecasts back.
    pub prediction: usize,
    /// Shortest context a training window has; shorter ones are padded on the left with PAD.
    pub min_context: usize,
    /// Width of the transformer (the paper: 384, T5-efficient-mini).
    pub d_model: usize,
    /// Transformer blocks (the paper: 4 encoder and 4 decoder layers).
    pub layers: usize,
    /// Attention heads per block (the paper: 8).
    pub heads: usize,
    /// Dropout after the embeddings and in every residual branch (the paper: 0.1).
    pub dropout: f64,
    /// The output head over the vocabulary (`"linear"`, `{ fourier = { frequencies = 550, gamma = 1e-6, ... } }`,
    /// `{ mixture = ... }`).
    pub head: HeadConfig,
    /// Values ↔ tokens (the paper's mixed bins by default).
    pub tokenizer: TokenizerConfig,
    /// Synthetic training series (TSMixup over a pool of real series, KernelSynth).
    pub data: TrainingDataConfig,
    /// Sample paths per forecast (Chronos: 20).
    pub samples: usize,
    /// Tokens sampled from the `top_k` most likely only (Chronos: 50; 0: all).
    pub top_k: usize,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            context: 96,
            prediction: 24,
            min_context: 8,
            d_model: 64,
            layers: 4,
            heads: 4,
            dropout: 0.0,
            head: HeadConfig::Linear,
            tokenizer: TokenizerConfig::default(),
            data: TrainingDataConfig::default(),
            samples: 20,
            top_k: 50,
        }
    }
}

impl ModelConfig for ForecastConfig {
    fn validate(&self) -> anyhow::Result<()> {
        for (field, v) in [
            ("context", self.context),
            ("prediction", self.prediction),
            ("min_context", self.min_context),
            ("d_model", self.d_model),
            ("layers", self.layers),
            ("heads", self.heads),
            ("samples", self.samples),
        ] {
            if v == 0 {
                bail!("`{field}` must be at least 1");
            }
        }
        if self.min_context > self.context {
            bail!("`min_context` = {}: must be at most `context` = {}", self.min_context, self.context);
        }
        if !self.d_model.is_multiple_of(self.heads) {
            bail!("`d_model` = {} must be a multiple of `heads` = {}", self.d_model, self.heads);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("`dropout` = {}: must be in [0, 1)", self.dropout);
        }
        Tokenizer::new(self.tokenizer.clone()).map_err(|e| anyhow::anyhow!("`tokenizer.{}`: {e}", e.field))?;
        self.data.validate()?;
        self.head.validate().context("`head`")?;
        Ok(())
    }

    fn head(&self) -> Option<&HeadConfig> {
        Some(&self.head)
    }
}

impl ForecastConfig {
    /// Tokens in one training window: the context and all forecast tokens but the last (the model predicts each
    /// token from those before it).
    pub fn window_tokens(&self) -> usize {
        self.context + self.prediction - 1
    }

    /// Its tokeniser (the config is valid).
    pub fn tokenizer(&self) -> anyhow::Result<Tokenizer> {
        Tokenizer::new(self.tokenizer.clone()).map_err(|e| anyhow::anyhow!("`tokenizer.{}`: {e}", e.field))
    }
}

/// What a forecaster was trained on, stored in its checkpoints: the pool its TSMixup series came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSpec {
    /// The pool folder.
    pub pool: PathBuf,
    /// Series in the pool.
    pub pool_series: usize,
    /// Values in the pool.
    pub pool_values: usize,
}

/// The network: token and position embeddings, pre-LN GPT blocks, a final LayerNorm and the head, which reads the
/// hidden state × `d_model^-0.5` (as T5 does before its tied output layer).
#[derive(Module, Debug)]
pub struct ForecastNet {
    embed_token: Embedding,
    embed_position: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// The head over the vocabulary.
    pub head: AnyHead,
    d_model: usize,
}

impl ForecastNet {
    /// A fresh network for `config`, every initial parameter drawn from `rng`.
    pub fn new(config: &ForecastConfig, rng: &mut dyn RngCore, device: &Device) -> anyhow::Result<Self> {
        let d = config.d_model;
        let vocab = config.tokenizer.n_tokens;
        Ok(Self {
            embed_token: Embedding { weight: Param::from_tensor(normal([vocab, d], INIT_STD, rng, device)) },
            embed_position: Embedding {
                weight: Param::from_tensor(normal([config.window_tokens(), d], INIT_STD, rng, device)),
            },
            blocks: (0..config.layers).map(|_| Block::new(d, config.heads, config.layers, rng, device)).collect(),
            ln_f: LayerNormConfig::new(d).init(device),
            head: config.head.init(d, vocab, rng, device).context("`head`")?,
            d_model: d,
        })
    }

    /// The head's input at every position of `tokens` `[b, t]` (`t` at most the window): `[b, t, d]`.
    pub fn features(&self, tokens: Tensor<2, Int>, masks: &mut DropoutMasks) -> Tensor<3> {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..t as i64, &device).unsqueeze_dim::<2>(0).repeat_dim(0, b);
        let x = self.embed_token.forward(tokens) + self.embed_position.forward(positions);
        let mut x = masks.apply(x);
        for block in &self.blocks {
            x = block.forward(x, masks);
        }
        fused::layer_norm(&self.ln_f, x).mul_scalar((self.d_model as f64).powf(-0.5))
    }

    /// Positions the window's tokens may take.
    pub fn max_tokens(&self) -> usize {
        self.embed_position.weight.dims()[0]
    }
}

/// The forecaster on the run layer.
#[derive(Debug)]
pub struct Forecaster {
    /// The network.
    pub net: ForecastNet,
    config: ForecastConfig,
}

/// One training batch: windows of tokens and the forecast tokens each position predicts.
#[derive(Debug, Clone)]
pub struct ForecastBatch {
    /// Input tokens `[B, context + prediction − 1]`, PAD on the left of short contexts.
    pub tokens: Tensor<2, Int>,
    /// The forecast window's tokens `[B · prediction]`, row-major.
    pub targets: Tensor<1, Int>,
    /// The step's dropout seed.
    pub dropout_seed: u64,
}

impl Forecaster {
    /// Its configuration.
    pub fn config(&self) -> &ForecastConfig {
        &self.config
    }

    /// Head inputs at the forecast positions of `batch` (the context's last position and every forecast position
    /// but the last), `[B · prediction, d]`.
    fn forecast_features(&self, batch: &ForecastBatch, train: bool) -> Tensor<2> {
        let [b, _] = batch.tokens.dims();
        let (c, p) = (self.config.context, self.config.prediction);
        let on = train && self.config.dropout > 0.0 && batch.tokens.device().is_autodiff();
        let mut masks = if on {
            DropoutMasks::drawn(DropoutDraw { seed: batch.dropout_seed, first_window: 0 }, 1.0 - self.config.dropout)
        } else {
            DropoutMasks::none()
        };
        let h = self.net.features(batch.tokens.clone(), &mut masks);
        let d = self.config.d_model;
        h.narrow(1, c - 1, p).reshape([b * p, d])
    }
}

impl Trainable for Forecaster {
    const KIND: &'static str = "forecast";
    const PMF_TAG: &'static str = "next_token";
    type Config = ForecastConfig;
    type Spec = ForecastSpec;
    type Data = TrainingData;
    type Batch = ForecastBatch;

    fn new(
        config: &ForecastConfig,
        _spec: &ForecastSpec,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(Self { net: ForecastNet::new(config, rng, device)?, config: config.clone() })
    }

    fn sample(&self, data: &TrainingData, batch_size: usize, rng: &mut dyn RngCore, device: &Device) -> ForecastBatch {
        let seeds: Vec<u64> = (0..batch_size).map(|_| rng.next_u64()).collect();
        let dropout_seed = rng.next_u64();
        let (tokens, targets) = data::windows(data, &seeds);
        let t = self.config.window_tokens();
        let p = self.config.prediction;
        let tokens: Vec<i64> = tokens.into_iter().map(i64::from).collect();
        let targets: Vec<i64> = targets.into_iter().map(i64::from).collect();
        ForecastBatch {
            tokens: Tensor::from_data(TensorData::new(tokens, [batch_size, t]), device),
            targets: Tensor::from_data(TensorData::new(targets, [batch_size * p]), device),
            dropout_seed,
        }
    }

    fn train_step(&mut self, batch: ForecastBatch, opt: &mut Optimizers) -> anyhow::Result<Scalars> {
        let features = self.forecast_features(&batch, true);
        let loss = self.net.head.loss(features, batch.targets);
        let mut logged = vec![loss.cross_entropy];
        if let Some(r) = loss.regularizer.clone() {
            logged.push(r);
        }
        let (value, read) = opt.step_reading(DEFAULT_GROUP, &mut self.net, loss.total, logged)?;
        let mut scalars = vec![("loss", value), ("cross_entropy", read[0])];
        if read.len() > 1 {
            scalars.push(("regularizer", read[1]));
        }
        Ok(scalars)
    }

    fn params(&self) -> Vec<NamedTensor> {
        named_params(&self.net)
    }

    fn load_params(mut self, values: &HashMap<String, NamedTensor>) -> Result<Self, String> {
        self.net = load_params(self.net, values)?;
        Ok(self)
    }

    fn probe_pmfs(&self, probe: &ForecastBatch) -> anyhow::Result<Option<ActionPmfs>> {
        let [b, _] = probe.tokens.dims();
        let p = self.config.prediction;
        let d = self.config.d_model;
        // The next-token PMF at the first forecast position of each probe window.
        let features = self.forecast_features(probe, false).reshape([b, p, d]).narrow(1, 0, 1).reshape([b, d]);
        let pmf = self.net.head.pmf(features.detach());
        let pmfs = vec![pmf.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading PMFs: {e:?}"))?];
        let targets = probe.targets.clone().reshape([b, p]).narrow(1, 0, 1).reshape([b]);
        let targets = targets.into_data().try_to_vec_as::<i64>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(Some(ActionPmfs {
            bins: self.config.tokenizer.n_tokens,
            pmfs,
            targets: targets.into_iter().map(|t| Some(t as usize)).collect(),
            images: (0..b).map(|r| (r, format!("window{r}"))).collect(),
            axes: vec![BinAxis::Index],
            title: format!("next token ({})", self.config.head.slug()),
        }))
    }
}
