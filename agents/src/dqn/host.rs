//! The DQN / C51 update without a graph, for networks so small that a graph's per-operation overhead is most of a
//! step (CartPole's 120-84 MLP at batch 128): the same network, targets, loss and AdamW as the graph path in
//! `super`, written out on host `f32` slices with `frl_heads::host::dense`'s register-tiled products. Used on the
//! CPU for scalar Q-values, the linear head (C51) and the Fourier head (its regulariser too); the mixture head keeps
//! the graph path.
//!
//! Parameters keep the graph module's names and layouts, so checkpoints, moments and policies are interchangeable
//! with the graph path. Sums run in another order than burn's, so results equal the graph's to float rounding
//! (tested in `tests/dqn_host.rs`).

use std::sync::Arc;

use frl_heads::HeadConfig;
use frl_heads::host::{FourierRows, dense};
use frl_learner::Optimizers;
use frl_learner::adamw::HostTensor;
use frl_learner::params::NamedTensor;

use super::{DqnConfig, Support};

/// A dense layer `x · W + b` on the host, `W` `[d_in, d_out]` as burn's `Linear`.
#[derive(Debug, Clone)]
struct Dense {
    /// Module path of the layer, e.g. `layers.0` or `heads.1.Linear.linear`.
    name: String,
    /// `name.weight` and `name.bias`.
    param_names: [String; 2],
    weight: Vec<f32>,
    bias: Vec<f32>,
    d_in: usize,
    d_out: usize,
}

impl Dense {
    fn forward(&self, x: &[f32], out: &mut Vec<f32>) {
        let rows = x.len() / self.d_in;
        out.resize(rows * self.d_out, 0.0);
        dense::linear(x, &self.weight, &self.bias, out, self.d_in, self.d_out);
    }

    fn zeroed(&self) -> Self {
        Self { weight: vec![0.0; self.weight.len()], bias: vec![0.0; self.bias.len()], ..self.clone() }
    }
}

/// A Q network's parameters on the host: the ReLU torso, then one scalar per action (one layer `d → actions`) or
/// one linear head over the atoms per action.
#[derive(Debug, Clone)]
pub struct HostQNet {
    layers: Vec<Dense>,
    outs: Vec<Dense>,
    /// Atoms per action; 0 for scalar Q-values.
    atoms: usize,
    actions: usize,
    /// The Fourier head's arithmetic when the heads are Fourier heads (`outs` then give their coefficients).
    fourier: Option<Arc<FourierRows>>,
}

/// Buffers of one head's evaluation.
#[derive(Debug, Default, Clone)]
struct HeadBufs {
    out: Vec<f32>,
    z: Vec<f32>,
    ri: Vec<f32>,
}

/// Per-call buffers of [`HostQNet::q_values`].
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    acts: Vec<Vec<f32>>,
    head: HeadBufs,
}

impl HostQNet {
    /// Whether `config`'s network has a host path (scalar Q-values, the linear or the Fourier head).
    pub fn supports(config: &DqnConfig) -> bool {
        matches!(config.head, None | Some(HeadConfig::Linear) | Some(HeadConfig::Fourier(_)))
    }

    /// The network of `config` with the values of `params` (the graph module's names, unprefixed); `None` when the
    /// network has no host path or a parameter is missing or of another size.
    pub fn from_params(params: &[NamedTensor], config: &DqnConfig, obs_dim: usize, actions: usize) -> Option<Self> {
        if !Self::supports(config) {
            return None;
        }
        let find = |name: &str, d_in: usize, d_out: usize| -> Option<Dense> {
            let get = |suffix: &str, len: usize| {
                let p = params.iter().find(|p| p.name == format!("{name}.{suffix}"))?;
                (p.data.len() == len).then(|| p.data.clone())
            };
            Some(Dense {
                name: name.to_string(),
                param_names: [format!("{name}.weight"), format!("{name}.bias")],
                weight: get("weight", d_in * d_out)?,
                bias: get("bias", d_out)?,
                d_in,
                d_out,
            })
        };
        let mut sizes = vec![obs_dim];
        sizes.extend(&config.hidden);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| find(&format!("layers.{i}"), w[0], w[1]))
            .collect::<Option<_>>()?;
        let d = *sizes.last()?;
        let heads = |variant: &str, width: usize| -> Option<Vec<Dense>> {
            (0..actions).map(|a| find(&format!("heads.{a}.{variant}.linear"), d, width)).collect()
        };
        let (outs, atoms, fourier) = match &config.head {
            None => (vec![find("out", d, actions)?], 0, None),
            Some(HeadConfig::Linear) => (heads("Linear", config.atoms)?, config.atoms, None),
            Some(HeadConfig::Fourier(f)) => {
                let rows = FourierRows::new(f, config.atoms);
                (heads("Fourier", rows.width())?, config.atoms, Some(Arc::new(rows)))
            }
            Some(_) => return None,
        };
        Some(Self { layers, outs, atoms, actions, fourier })
    }

    /// The parameters under the graph module's names, each prefixed with `prefix.`.
    pub fn params(&self, prefix: &str) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for l in self.layers.iter().chain(&self.outs) {
            let shape = vec![l.d_in, l.d_out];
            out.push(NamedTensor { name: format!("{prefix}.{}.weight", l.name), shape, data: l.weight.clone() });
            let shape = vec![l.d_out];
            out.push(NamedTensor { name: format!("{prefix}.{}.bias", l.name), shape, data: l.bias.clone() });
        }
        out
    }

    fn feature_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.d_out)
    }

    /// The torso's activations of the rows `x`: `acts[i]` is layer `i`'s output after its ReLU.
    fn torso(&self, x: &[f32], acts: &mut Vec<Vec<f32>>) {
        acts.resize(self.layers.len(), Vec::new());
        for (i, layer) in self.layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(i);
            let input = if i == 0 { x } else { &done[i - 1][..] };
            layer.forward(input, &mut rest[0]);
            rest[0].iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }

    /// Q-values `[rows, actions]` of the features `f` `[rows, d]`: the scalar outputs, or `Σ_i p_i z_i` of each
    /// action's distribution over `atoms`. `probs`, when given, receives every action's PMF, action-major
    /// (`[actions][rows, atoms]`).
    fn q_of_features(
        &self,
        f: &[f32],
        atoms: &[f32],
        bufs: &mut HeadBufs,
        mut probs: Option<&mut Vec<f32>>,
    ) -> Vec<f32> {
        let rows = f.len() / self.feature_dim();
        if self.atoms == 0 {
            self.outs[0].forward(f, &mut bufs.out);
            return bufs.out.clone();
        }
        let n = self.atoms;
        let mut q = vec![0.0f32; rows * self.actions];
        if let Some(p) = probs.as_deref_mut() {
            p.resize(self.actions * rows * n, 0.0);
        }
        for a in 0..self.actions {
            self.head_pmf(a, f, bufs);
            for (r, row) in bufs.out.chunks_exact(n).enumerate() {
                q[r * self.actions + a] = expectation(row, atoms);
            }
            if let Some(p) = probs.as_deref_mut() {
                p[a * rows * n..(a + 1) * rows * n].copy_from_slice(&bufs.out);
            }
        }
        q
    }

    /// Action `a`'s return distribution (PMF over the atoms) for each row of the features `f` into `bufs.out`.
    fn head_pmf(&self, a: usize, f: &[f32], bufs: &mut HeadBufs) {
        match &self.fourier {
            None => {
                self.outs[a].forward(f, &mut bufs.out);
                bufs.out.chunks_exact_mut(self.atoms).for_each(softmax_in_place);
            }
            Some(rows) => {
                self.outs[a].forward(f, &mut bufs.z);
                rows.pmf(&bufs.z, &mut bufs.ri, &mut bufs.out);
            }
        }
    }

    /// Q-values `[rows, actions]` of the normalised observations `obs` `[rows, obs_dim]`.
    pub fn q_values(&self, obs: &[f32], atoms: &[f32], scratch: &mut Scratch) -> Vec<f32> {
        self.torso(obs, &mut scratch.acts);
        let f = std::mem::take(&mut scratch.acts[self.layers.len() - 1]);
        let q = self.q_of_features(&f, atoms, &mut scratch.head, None);
        scratch.acts[self.layers.len() - 1] = f;
        q
    }

    fn each_mut(&mut self) -> impl Iterator<Item = &mut Dense> {
        self.layers.iter_mut().chain(self.outs.iter_mut())
    }

    fn each(&self) -> impl Iterator<Item = &Dense> {
        self.layers.iter().chain(self.outs.iter())
    }
}

/// `row ← softmax(row)`.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    row.iter_mut().for_each(|v| *v -= max);
    dense::exp_in_place(row);
    let inv = 1.0 / row.iter().sum::<f32>();
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `Σ_i p_i z_i`.
fn expectation(p: &[f32], atoms: &[f32]) -> f32 {
    p.iter().zip(atoms).map(|(p, z)| p * z).sum()
}

/// The first index of the largest value.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// One batch of `n`-step transitions on the host.
pub struct HostBatch<'a> {
    /// Normalised observations, `[B, obs_dim]`.
    pub obs: &'a [f32],
    /// Action ids.
    pub actions: &'a [usize],
    /// Scaled `n`-step reward sums.
    pub rewards: &'a [f32],
    /// Bootstrap discounts `γ^n` (0 after a terminal).
    pub discounts: &'a [f32],
    /// Normalised observations `n` steps later.
    pub next_obs: &'a [f32],
}

/// The online and target networks on the host, their gradients and the step's buffers.
#[derive(Debug, Clone)]
pub struct HostLearner {
    /// The network trained.
    pub online: HostQNet,
    /// The network bootstrapped from.
    pub target: HostQNet,
    grads: HostQNet,
    transposed: Vec<Vec<f32>>,
    input: Vec<f32>,
    online_acts: Vec<Vec<f32>>,
    target_acts: Vec<Vec<f32>>,
    out: Vec<f32>,
    bufs: HeadBufs,
    probs: Vec<f32>,
    targets: Vec<f32>,
    rows_x: Vec<f32>,
    d_rows: Vec<f32>,
    d_features: Vec<f32>,
    d_hidden: Vec<f32>,
}

impl HostLearner {
    /// A learner over `online` and `target` (of one structure).
    pub fn new(online: HostQNet, target: HostQNet) -> Self {
        let mut grads = online.clone();
        grads.each_mut().for_each(|l| *l = l.zeroed());
        Self {
            online,
            target,
            grads,
            transposed: Vec::new(),
            input: Vec::new(),
            online_acts: Vec::new(),
            target_acts: Vec::new(),
            out: Vec::new(),
            bufs: HeadBufs::default(),
            probs: Vec::new(),
            targets: Vec::new(),
            rows_x: Vec::new(),
            d_rows: Vec::new(),
            d_features: Vec::new(),
            d_hidden: Vec::new(),
        }
    }

    /// One update on `b`: loss, gradients, the optimiser group `q`'s AdamW, and the target network's update at its
    /// steps. Returns the logged values, named as the graph path names them.
    pub fn train_step(
        &mut self,
        b: &HostBatch<'_>,
        config: &DqnConfig,
        support: &Support,
        opt: &mut Optimizers,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let rows = b.actions.len();
        let d = self.online.feature_dim();
        let atoms = &support.atoms;
        // Online torso over the observations (and the next observations for double DQN), target over the next.
        self.input.clear();
        self.input.extend_from_slice(b.obs);
        if config.double {
            self.input.extend_from_slice(b.next_obs);
        }
        let input = std::mem::take(&mut self.input);
        self.online.torso(&input, &mut self.online_acts);
        self.input = input;
        self.target.torso(b.next_obs, &mut self.target_acts);
        let depth = self.online.layers.len();
        let online_features = std::mem::take(&mut self.online_acts[depth - 1]);
        let target_features = std::mem::take(&mut self.target_acts[depth - 1]);
        let (features, next_features) = online_features.split_at(rows * d);

        for g in self.grads.each_mut() {
            g.weight.fill(0.0);
            g.bias.fill(0.0);
        }
        self.d_features.clear();
        self.d_features.resize(rows * d, 0.0);
        let mut probs = std::mem::take(&mut self.probs);
        // Double DQN of a distribution needs the target's distribution of the online network's greedy action only.
        let target_all = !(config.double && self.target.atoms > 0);
        let target_q = if target_all {
            self.target.q_of_features(&target_features, atoms, &mut self.bufs, Some(&mut probs))
        } else {
            Vec::new()
        };
        let greedy: Vec<usize> = if config.double {
            let q = self.online.q_of_features(next_features, atoms, &mut self.bufs, None);
            q.chunks_exact(self.online.actions).map(argmax).collect()
        } else {
            target_q.chunks_exact(self.target.actions).map(argmax).collect()
        };
        let inv_rows = 1.0 / rows as f32;
        let a_n = self.online.actions;
        let logged = if self.online.atoms == 0 {
            // Scalar Q: Huber loss towards r + γ^n Q_target(s', a*).
            let out = &self.online.outs[0];
            out.forward(features, &mut self.out);
            let (mut loss, mut q_sum) = (0.0f32, 0.0f32);
            for r in 0..rows {
                let y = b.rewards[r] + b.discounts[r] * target_q[r * a_n + greedy[r]];
                let q = self.out[r * a_n + b.actions[r]];
                q_sum += q;
                let err = q - y;
                let quad = err.abs().min(1.0);
                loss += 0.5 * quad * quad + (err.abs() - quad);
                self.out[r * a_n..(r + 1) * a_n].fill(0.0);
                self.out[r * a_n + b.actions[r]] = err.clamp(-1.0, 1.0) * inv_rows;
            }
            let g = &mut self.grads.outs[0];
            dense::linear_backward_params(features, &self.out, &mut g.weight, &mut g.bias, d, a_n);
            transpose_into(&mut self.transposed, 0, &out.weight, d, a_n);
            dense::linear_backward_input(&self.out, &self.transposed[0], &mut self.d_features, d, a_n);
            vec![("loss", loss * inv_rows), ("q", q_sum * inv_rows)]
        } else {
            // Distributional: cross-entropy of the taken action's distribution against the projected target,
            // each action's head over the rows that took it.
            let n = self.online.atoms;
            self.targets.clear();
            self.targets.resize(rows * n, 0.0);
            if target_all {
                for r in 0..rows {
                    let a = greedy[r];
                    let p = &probs[(a * rows + r) * n..(a * rows + r + 1) * n];
                    project_row(p, b.rewards[r], b.discounts[r], support, &mut self.targets[r * n..(r + 1) * n]);
                }
            } else {
                for a in 0..a_n {
                    let chosen: Vec<usize> = (0..rows).filter(|&r| greedy[r] == a).collect();
                    if chosen.is_empty() {
                        continue;
                    }
                    gather_rows(&target_features, d, &chosen, &mut self.rows_x);
                    self.target.head_pmf(a, &self.rows_x, &mut self.bufs);
                    for (p, &r) in self.bufs.out.chunks_exact(n).zip(&chosen) {
                        project_row(p, b.rewards[r], b.discounts[r], support, &mut self.targets[r * n..(r + 1) * n]);
                    }
                }
            }
            if let Some(fourier) = self.online.fourier.clone() {
                self.fourier_loss(&fourier, features, b.actions, atoms)
            } else {
                self.linear_loss(features, b.actions, atoms)
            }
        };
        self.probs = probs;
        self.backward_and_step(b, online_features, target_features, logged, config, opt)
    }

    /// The linear heads' cross-entropy against `self.targets`, each action's head over the rows that took it;
    /// gradients into `self.grads` and `self.d_features`. Returns the logged values.
    fn linear_loss(&mut self, features: &[f32], actions: &[usize], atoms: &[f32]) -> Vec<(&'static str, f32)> {
        let (rows, d, n, a_n) = (actions.len(), self.online.feature_dim(), self.online.atoms, self.online.actions);
        let inv_rows = 1.0 / rows as f32;
        let (mut ce, mut q_sum) = (0.0f32, 0.0f32);
        for a in 0..a_n {
            let taken: Vec<usize> = (0..rows).filter(|&r| actions[r] == a).collect();
            if taken.is_empty() {
                continue;
            }
            gather_rows(features, d, &taken, &mut self.rows_x);
            let head = &self.online.outs[a];
            head.forward(&self.rows_x, &mut self.out);
            for (row, &r) in self.out.chunks_exact_mut(n).zip(&taken) {
                let t = &self.targets[r * n..(r + 1) * n];
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let weighted: f32 = row.iter().zip(t).map(|(l, t)| t * (l - max)).sum();
                row.iter_mut().for_each(|v| *v -= max);
                dense::exp_in_place(row);
                let sum: f32 = row.iter().sum();
                ce += sum.ln() - weighted;
                let inv = 1.0 / sum;
                row.iter_mut().for_each(|v| *v *= inv);
                q_sum += expectation(row, atoms);
                for (g, t) in row.iter_mut().zip(t) {
                    *g = (*g - t) * inv_rows;
                }
            }
            let g = &mut self.grads.outs[a];
            dense::linear_backward_params(&self.rows_x, &self.out, &mut g.weight, &mut g.bias, d, n);
            transpose_into(&mut self.transposed, a, &head.weight, d, n);
            self.d_rows.resize(taken.len() * d, 0.0);
            dense::linear_backward_input(&self.out, &self.transposed[a], &mut self.d_rows, d, n);
            for (i, &r) in taken.iter().enumerate() {
                self.d_features[r * d..(r + 1) * d].copy_from_slice(&self.d_rows[i * d..(i + 1) * d]);
            }
        }
        let ce = ce * inv_rows;
        vec![("loss", ce), ("cross_entropy", ce), ("q", q_sum * inv_rows)]
    }

    /// The Fourier heads' cross-entropy against `self.targets` over the rows that took each action, plus the
    /// heads' mean regulariser over every row (as the graph's loss); gradients into `self.grads` and
    /// `self.d_features`. Returns the logged values.
    fn fourier_loss(
        &mut self,
        fourier: &FourierRows,
        features: &[f32],
        actions: &[usize],
        atoms: &[f32],
    ) -> Vec<(&'static str, f32)> {
        let (rows, d, n, a_n) = (actions.len(), self.online.feature_dim(), self.online.atoms, self.online.actions);
        let w = fourier.width();
        let inv_rows = 1.0 / rows as f32;
        // Each head's regulariser is a mean over the rows; the loss adds the mean over the heads.
        let reg_scale = 1.0 / (a_n * rows) as f64;
        let (mut ce, mut q_sum, mut reg) = (0.0f32, 0.0f32, 0.0f64);
        let mut dz = vec![0.0f32; rows * w];
        let (mut z_taken, mut t_taken, mut dz_taken) = (Vec::new(), Vec::new(), Vec::new());
        for a in 0..a_n {
            let head = &self.online.outs[a];
            head.forward(features, &mut self.bufs.z);
            dz.fill(0.0);
            let taken: Vec<usize> = (0..rows).filter(|&r| actions[r] == a).collect();
            if !taken.is_empty() {
                gather_rows(&self.bufs.z, w, &taken, &mut z_taken);
                gather_rows(&self.targets, n, &taken, &mut t_taken);
                dz_taken.resize(taken.len() * w, 0.0);
                let bufs = &mut self.bufs;
                ce += fourier.soft_cross_entropy_backward(
                    &z_taken,
                    &t_taken,
                    inv_rows,
                    &mut dz_taken,
                    &mut bufs.ri,
                    &mut bufs.out,
                );
                q_sum += bufs.out.chunks_exact(n).map(|p| expectation(p, atoms)).sum::<f32>();
                for (i, &r) in taken.iter().enumerate() {
                    dz[r * w..(r + 1) * w].copy_from_slice(&dz_taken[i * w..(i + 1) * w]);
                }
            }
            if fourier.gamma() > 0.0 {
                reg += fourier.regularizer(&self.bufs.z[..rows * w], Some((reg_scale, &mut dz)));
            }
            let g = &mut self.grads.outs[a];
            dense::linear_backward_params(features, &dz, &mut g.weight, &mut g.bias, d, w);
            transpose_into(&mut self.transposed, a, &head.weight, d, w);
            self.d_rows.resize(rows * d, 0.0);
            dense::linear_backward_input(&dz, &self.transposed[a], &mut self.d_rows, d, w);
            for (f, g) in self.d_features.iter_mut().zip(&self.d_rows) {
                *f += g;
            }
        }
        let ce = ce * inv_rows;
        let q = q_sum * inv_rows;
        if fourier.gamma() > 0.0 {
            let reg = (reg * reg_scale) as f32;
            vec![("loss", ce + reg), ("cross_entropy", ce), ("q", q), ("regularizer", reg)]
        } else {
            vec![("loss", ce), ("cross_entropy", ce), ("q", q)]
        }
    }

    /// Back through the torso, the optimiser step and the target network's update.
    fn backward_and_step(
        &mut self,
        b: &HostBatch<'_>,
        online_features: Vec<f32>,
        target_features: Vec<f32>,
        logged: Vec<(&'static str, f32)>,
        config: &DqnConfig,
        opt: &mut Optimizers,
    ) -> anyhow::Result<Vec<(&'static str, f64)>> {
        let rows = b.actions.len();
        let depth = self.online.layers.len();
        let features = &online_features[..rows * self.online.feature_dim()];

        // Back through the torso (ReLU: the gradient passes where the activation is positive).
        let mut grad = std::mem::take(&mut self.d_features);
        for i in (0..depth).rev() {
            let act: &[f32] =
                if i == depth - 1 { features } else { &self.online_acts[i][..rows * self.online.layers[i].d_out] };
            for (g, a) in grad.iter_mut().zip(act) {
                if *a <= 0.0 {
                    *g = 0.0;
                }
            }
            let layer = &self.online.layers[i];
            let x: &[f32] = if i == 0 { b.obs } else { &self.online_acts[i - 1][..rows * layer.d_in] };
            let g = &mut self.grads.layers[i];
            dense::linear_backward_params(x, &grad, &mut g.weight, &mut g.bias, layer.d_in, layer.d_out);
            if i > 0 {
                let slot = self.online.outs.len() + i;
                transpose_into(&mut self.transposed, slot, &layer.weight, layer.d_in, layer.d_out);
                self.d_hidden.resize(rows * layer.d_in, 0.0);
                dense::linear_backward_input(
                    &grad,
                    &self.transposed[slot],
                    &mut self.d_hidden,
                    layer.d_in,
                    layer.d_out,
                );
                std::mem::swap(&mut grad, &mut self.d_hidden);
            }
        }
        self.d_features = grad;
        self.online_acts[depth - 1] = online_features;
        self.target_acts[depth - 1] = target_features;

        let loss = logged[0].1 as f64;
        let params = self
            .online
            .each_mut()
            .zip(self.grads.each())
            .flat_map(|(p, g)| {
                let [w, b] = &p.param_names;
                [
                    HostTensor { name: w, value: &mut p.weight[..], grad: &g.weight[..], decay: true },
                    HostTensor { name: b, value: &mut p.bias[..], grad: &g.bias[..], decay: false },
                ]
            })
            .collect();
        let value = opt.step_host("q", loss, params)?;
        if opt.step_number().is_multiple_of(config.target_update_every) {
            if config.tau >= 1.0 {
                self.target = self.online.clone();
            } else {
                let tau = config.tau as f32;
                for (t, s) in self.target.each_mut().zip(self.online.each()) {
                    for (t, s) in t.weight.iter_mut().zip(&s.weight).chain(t.bias.iter_mut().zip(&s.bias)) {
                        *t = *t * (1.0 - tau) + s * tau;
                    }
                }
            }
        }
        let mut out: Vec<(&'static str, f64)> = vec![("loss", value)];
        out.extend(logged.into_iter().skip(1).map(|(k, v)| (k, v as f64)));
        Ok(out)
    }
}

/// `w` `[rows, cols]` transposed into `buffers[slot]`.
fn transpose_into(buffers: &mut Vec<Vec<f32>>, slot: usize, w: &[f32], rows: usize, cols: usize) {
    if buffers.len() <= slot {
        buffers.resize(slot + 1, Vec::new());
    }
    buffers[slot].resize(rows * cols, 0.0);
    dense::transpose(w, &mut buffers[slot], rows, cols);
}

/// The C51 projection of one row (as [`super::project`]): the distribution of `reward + discount · Z` with
/// `Z ~ p` over the atoms, each shifted atom clamped and split between its two neighbours; added to `out`.
fn project_row(p: &[f32], reward: f32, discount: f32, support: &Support, out: &mut [f32]) {
    let n = p.len();
    let (lo, hi) = support.clamp;
    let z0 = support.atoms[0];
    let delta = support.delta() as f32;
    for (&pj, &z) in p.iter().zip(&support.atoms) {
        let tz = (discount * z + reward).clamp(lo, hi);
        let pos = ((tz - z0) / delta).clamp(0.0, (n - 1) as f32);
        // `pos` is in [0, n − 1]: truncation is its floor.
        let l = (pos as usize).min(n - 1);
        let frac = pos - l as f32;
        let u = (l + 1).min(n - 1);
        let upper = pj * frac;
        out[l] += pj - upper;
        out[u] += upper;
    }
}

/// The rows `rows` of `src` (`width` values each), one after another, into `out`.
fn gather_rows(src: &[f32], width: usize, rows: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &r in rows {
        out.extend_from_slice(&src[r * width..(r + 1) * width]);
    }
}
