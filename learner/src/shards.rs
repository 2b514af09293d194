//! Data-parallel steps on the CPU: a batch split into shards whose forward and backward passes run on parallel
//! threads, each shard's gradients weighted by its share of the batch and summed in shard order.
//!
//! burn's CPU kernels run on one thread each; shards are how a training step uses more than one core. The result
//! depends on the shard count (gradients are summed in a different order than one backward pass would) but not on
//! how many threads run them, so a job stays reproducible on any machine.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// What one shard's forward pass gives: its loss and the values logged with it (means over the shard's rows).
pub struct ShardLoss {
    /// The loss to minimise, `[1]`.
    pub loss: Tensor<1>,
    /// Values for logging, each `[1]` (read untracked).
    pub scalars: Vec<Tensor<1>>,
}

/// Gradients, loss and scalars of one weighted shard, or their sums over shards.
pub(crate) struct Combined {
    pub grads: GradientsParams,
    pub loss: Tensor<1>,
    pub scalars: Vec<Tensor<1>>,
}

/// Runs `forward` on every shard with at most `threads` threads; each shard's loss and scalars are scaled by its
/// weight (its share of the batch's rows) before the backward pass, and everything is summed in shard order.
pub(crate) fn combine<M, S, F>(module: &M, shards: Vec<(S, f64)>, threads: usize, forward: F) -> Combined
where
    M: Module + Sync,
    S: Send,
    F: Fn(&M, S) -> ShardLoss + Sync,
{
    let n = shards.len();
    let threads = threads.clamp(1, n.max(1));
    // Shard i goes to thread i % threads; the results are put back in shard order.
    let mut buckets: Vec<Vec<(usize, S, f64)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, (shard, weight)) in shards.into_iter().enumerate() {
        buckets[i % threads].push((i, shard, weight));
    }
    let run = |bucket: Vec<(usize, S, f64)>| -> Vec<(usize, Combined)> {
        bucket
            .into_iter()
            .map(|(i, shard, weight)| {
                let module = module.clone().map(&mut OwnLeaves);
                let out = forward(&module, shard);
                let loss = out.loss.mul_scalar(weight);
                let scalars = out.scalars.into_iter().map(|s| s.detach().mul_scalar(weight)).collect();
                let value = loss.clone().detach();
                let grads = GradientsParams::from_grads(loss.backward(), &module);
                (i, Combined { grads, loss: value, scalars })
            })
            .collect()
    };
    let mut done: Vec<(usize, Combined)> = std::thread::scope(|s| {
        let mut buckets = buckets.into_iter();
        let own = buckets.next().unwrap_or_default();
        let helpers: Vec<_> = buckets.map(|bucket| s.spawn(|| run(bucket))).collect();
        let mut done = run(own);
        for h in helpers {
            done.extend(h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        done
    });
    done.sort_by_key(|(i, _)| *i);
    let mut parts = done.into_iter().map(|(_, part)| part);
    let mut total = parts.next().expect("at least one shard");
    let mut others = Vec::with_capacity(n - 1);
    for part in parts {
        total.loss = total.loss + part.loss;
        total.scalars = total.scalars.into_iter().zip(part.scalars).map(|(a, b)| a + b).collect();
        others.push(part.grads);
    }
    module.visit(&mut SumGrads { total: &mut total.grads, others: &mut others });
    total
}

/// Gives every trained parameter a leaf of its own in the autodiff graph (same values, same parameter id), so that
/// each shard's graph shares no node with another's: burn merges graphs that share nodes, and two threads
/// recording and back-propagating one merged graph wait on each other's locks.
struct OwnLeaves;

impl ModuleMapper for OwnLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = if tensor.is_require_grad() { Tensor::from_inner(tensor.inner()).require_grad() } else { tensor };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Adds every other shard's gradient of each parameter to the first shard's, in shard order.
struct SumGrads<'a> {
    total: &'a mut GradientsParams,
    others: &'a mut [GradientsParams],
}

impl ModuleVisitor for SumGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let mut sum = self.total.remove::<D>(param.id);
        for g in self.others.iter_mut() {
            if let Some(g) = g.remove::<D>(param.id) {
                sum = Some(match sum {
                    None => g,
                    Some(s) => s + g,
                });
            }
        }
        if let Some(sum) = sum {
            self.total.register::<D>(param.id, sum);
        }
    }
}

/// `0..n` cut into at most `parts` contiguous ranges of near-equal length (the first ones one longer), none empty.
pub fn ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = n / parts + usize::from(p < n % parts);
            start += len;
            start - len..start
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Threads to run `shards` shards on: one per shard, at most the machine's cores.
pub fn threads_for(shards: usize) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    shards.clamp(1, cores)
}
