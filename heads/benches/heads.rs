//! Forward + backward of each head at Decision-Transformer-like shapes (batch 4096, d 128, m 64, N 16).

use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{Criterion, criterion_group, criterion_main};
use frl_heads::{FourierHeadConfig, Head, HeadConfig, MixtureHeadConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// The same allocator as the `frl` binary, so the figures match `frl bench heads`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 4096;
const DIM: usize = 128;
const BINS: usize = 64;
const FREQS: usize = 16;

fn heads(c: &mut Criterion) {
    let device = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::<2>::random([BATCH, DIM], Distribution::Normal(0.0, 1.0), &device);
    let y: Vec<i64> = (0..BATCH).map(|_| rng.random_range(0..BINS as i64)).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(y, [BATCH]), &device);
    let mut group = c.benchmark_group("head_fwd_bwd_b4096_d128_m64");
    group.sample_size(10);
    for cfg in [
        HeadConfig::Linear,
        HeadConfig::Fourier(FourierHeadConfig::new(FREQS, 0.0)),
        HeadConfig::Fourier(FourierHeadConfig::new(FREQS, 1e-6)),
        HeadConfig::Mixture(MixtureHeadConfig::new(2)),
    ] {
        let head = cfg.init(DIM, BINS, &mut rng, &device).expect("valid head");
        group.bench_function(cfg.slug(), |b| {
            b.iter(|| {
                let loss = head.loss(x.clone(), y.clone()).total;
                GradientsParams::from_grads(loss.backward(), &head)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, heads);
criterion_main!(benches);
