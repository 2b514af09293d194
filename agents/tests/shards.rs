//! Data-parallel DT steps (`train.shards`): a batch split into parts on parallel threads gives the step one pass
//! over the whole batch gives, up to rounding, and the same bits on any number of threads.

mod common;

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::Device;
use common::{serial, tiny_pendulum};
use frl_agents::dt::{Batch, DecisionTransformerConfig, DropoutDraw, Dt, EntropyConfig, Windows, dropout_mask};
use frl_dataset::dataset::Dataset;
use frl_heads::HeadConfig;
use frl_heads::head::to_host;
use frl_learner::{AdamWConfig, Agent, DataSpec, Optimizers, TrainJob, Trainable};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn device() -> Device {
    Device::flex().autodiff()
}

fn spec() -> DataSpec {
    DataSpec {
        env: "Pendulum-v1".into(),
        obs_dim: 3,
        action_space: frl_envs::Space::vector(&[-2.0], &[2.0]),
        obs_mean: vec![0.0; 3],
        obs_std: vec![1.0; 3],
        best_return: 0.0,
    }
}

/// A small DT with dropout on (so that the masks matter) and windows of 4 steps over 6-step episodes, so that some
/// windows are padded.
fn tiny_dt(head: HeadConfig, entropy: Option<EntropyConfig>) -> Dt {
    let config = DecisionTransformerConfig {
        layers: 2,
        heads: 2,
        embed_dim: 16,
        context: 4,
        dropout: 0.1,
        max_episode_len: 50,
        bins: 16,
        head,
        entropy,
        ..Default::default()
    };
    Dt::new(&config, &spec(), &mut StdRng::seed_from_u64(3), &device()).unwrap()
}

fn windows(dt: &Dt) -> Windows {
    let dir = tempfile::tempdir().unwrap();
    tiny_pendulum(&dir.path().join("data"));
    let data = Dataset::open(&dir.path().join("data")).unwrap();
    dt.prepare(&data.episodes).unwrap()
}

/// The batch of every window start, twice over (24 windows, lengths 4, 4, 4, 3, 2, 1, ...), with dropout seed
/// `seed`.
fn all_windows(windows: &Windows, seed: u64) -> Batch {
    let starts: Vec<usize> = (0..windows.steps()).chain(0..windows.steps()).collect();
    Batch { dropout_seed: seed, ..windows.batch_at(&starts, &device()) }
}

/// `steps` steps with `opt`, a new dropout seed each step; the scalars of each step and the gradient norms.
fn train(mut dt: Dt, windows: &Windows, mut opt: Optimizers, steps: u64) -> (Dt, Vec<HashMap<&'static str, f64>>) {
    let mut seen = Vec::new();
    for step in 1..=steps {
        opt.begin_step(step, 1e-3);
        let scalars = dt.train_step(all_windows(windows, 100 + step), &mut opt).unwrap();
        let mut s: HashMap<&'static str, f64> = scalars.into_iter().collect();
        s.insert("grad_norm", opt.grad_norms()[0].1);
        seen.push(s);
    }
    (dt, seen)
}

fn opt(shards: usize) -> Optimizers {
    Optimizers::new(AdamWConfig { grad_clip: 0.0, ..Default::default() }).with_shards(shards)
}

fn params(dt: &Dt) -> Vec<(String, Vec<f32>)> {
    dt.params().into_iter().map(|p| (p.name, p.data)).collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

#[test]
fn a_batch_splits_into_parts_with_their_own_rows_and_targets() {
    let dt = tiny_dt(HeadConfig::Linear, None);
    let windows = windows(&dt);
    let whole = all_windows(&windows, 7);
    let k = 4;
    let lengths = whole.lengths.clone();
    assert!(lengths.iter().any(|&l| l < k), "some windows are padded: {lengths:?}");
    let rows = frl_agents::dt::int_to_host(whole.rows.clone()).unwrap();
    let targets = frl_agents::dt::int_to_host(whole.targets.clone()).unwrap();
    let returns = to_host(whole.input.returns.clone());
    let total: usize = lengths.iter().sum();
    let parts = all_windows(&windows, 7).split(5);
    assert_eq!(parts.len(), 5);
    let (mut start, mut row, mut weight) = (0, 0, 0.0);
    for (part, w) in parts {
        let b = part.lengths.len();
        assert_eq!((part.first_window, part.dropout_seed), (start, 7));
        assert_eq!(part.lengths, lengths[start..start + b]);
        let n: usize = part.lengths.iter().sum();
        assert!((w - n as f64 / total as f64).abs() < 1e-12);
        let part_rows = frl_agents::dt::int_to_host(part.rows.clone()).unwrap();
        let want: Vec<i64> = rows[row..row + n].iter().map(|r| r - (start * k) as i64).collect();
        assert_eq!(part_rows, want, "rows of the part at window {start}");
        assert_eq!(frl_agents::dt::int_to_host(part.targets.clone()).unwrap(), targets[row..row + n]);
        assert_eq!(to_host(part.input.returns.clone()), returns[start * k..(start + b) * k]);
        weight += w;
        start += b;
        row += n;
    }
    assert_eq!((start, row), (lengths.len(), total));
    assert!((weight - 1.0).abs() < 1e-12);
}

#[test]
fn dropout_masks_keep_their_share_and_a_part_draws_its_rows_of_the_whole() {
    let draw = |seed, first_window| DropoutDraw { seed, first_window };
    let per_window = 3 * 20 * 128 + 1; // odd, to cover the last value of a row
    let whole = dropout_mask(draw(9, 0), 2, 64, per_window, 0.9, 1.0);
    assert_eq!(whole.len(), 64 * per_window);
    assert!(whole.iter().all(|&v| v == 0.0 || v == 1.0));
    let kept = whole.iter().sum::<f32>() as f64 / whole.len() as f64;
    // 491 584 draws: the standard error of the kept share is 0.0004.
    assert!((kept - 0.9).abs() < 0.002, "kept {kept}");
    let part = dropout_mask(draw(9, 10), 2, 5, per_window, 0.9, 1.0);
    assert_eq!(part, whole[10 * per_window..15 * per_window]);
    // Another site, another seed or another window draws other values.
    let first = |seed, site| dropout_mask(draw(seed, 0), site, 1, per_window, 0.9, 1.0);
    assert_ne!(first(9, 2), first(9, 3));
    assert_ne!(first(9, 2), first(10, 2));
    assert_ne!(whole[..per_window], whole[per_window..2 * per_window]);
    // Neighbouring values are not correlated (the two halves of each 64-bit draw).
    let both_dropped = whole.chunks_exact(2).filter(|p| p[0] == 0.0 && p[1] == 0.0).count() as f64;
    let pairs = (whole.len() / 2) as f64;
    assert!((both_dropped / pairs - 0.01).abs() < 0.001, "{} pairs both dropped", both_dropped / pairs);
    assert!(dropout_mask(draw(9, 0), 0, 3, 100, 1.0, 1.0).iter().all(|&v| v == 1.0));
}

#[test]
fn a_sharded_step_is_the_whole_batch_step_up_to_rounding() {
    let _turn = serial();
    for (head, entropy) in [
        (HeadConfig::Linear, None),
        ("{ fourier = { frequencies = 4 } }".parse::<HeadConfig>().unwrap(), None),
        (HeadConfig::Linear, Some(EntropyConfig { target: 1.0, init_temperature: 0.5 })),
    ] {
        let case = format!("{} head, entropy {entropy:?}", head.slug());
        let windows = windows(&tiny_dt(head.clone(), entropy.clone()));
        let (one, seen_one) = train(tiny_dt(head.clone(), entropy.clone()), &windows, opt(1), 4);
        let (three, seen_three) = train(tiny_dt(head.clone(), entropy.clone()), &windows, opt(3), 4);
        for (step, (a, b)) in seen_one.iter().zip(&seen_three).enumerate() {
            assert_eq!(a.len(), b.len(), "{case}: the same scalars");
            for (name, x) in a {
                assert!(
                    rel(*x, b[name]) < 1e-4,
                    "{case}, step {}: {name} {x} (one pass) vs {} (3 shards)",
                    step + 1,
                    b[name]
                );
            }
        }
        // The losses moved (the steps did something), and the two trainings moved the same way.
        assert!(rel(seen_one[0]["loss"], seen_one[3]["loss"]) > 1e-3, "{case}: {seen_one:?}");
        for ((name, a), (_, b)) in params(&one).iter().zip(params(&three)) {
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "{case}: {name} differs by {worst}");
        }
    }
}

#[test]
fn a_sharded_step_gives_the_same_bits_on_any_number_of_threads() {
    let _turn = serial();
    let head = "{ mixture = { components = 2 } }".parse::<HeadConfig>().unwrap();
    let windows = windows(&tiny_dt(head.clone(), None));
    let run = |threads| train(tiny_dt(head.clone(), None), &windows, opt(4).with_threads(threads), 3);
    let (a, seen_a) = run(1);
    let (b, seen_b) = run(4);
    assert_eq!(seen_a, seen_b);
    assert_eq!(params(&a), params(&b));
}

#[test]
fn shards_are_checked_in_job_files() {
    let job = |train: &str| TrainJob::parse(&format!("name = \"x\"\ndataset = \"d\"\n[train]\n{train}\n"));
    assert!(job("shards = 2").is_ok());
    for bad in ["shards = 0", "batch_size = 4\nshards = 5"] {
        let err = format!("{:#}", job(bad).unwrap_err());
        assert!(err.contains("train.shards"), "{bad}: {err}");
    }
    // Shards are CPU threads: a GPU job with shards is refused before anything is read.
    let job = job("shards = 2").unwrap();
    let options = frl_learner::TrainOptions {
        quiet: true,
        device: frl_learner::backend::DeviceChoice::Gpu,
        ..Default::default()
    };
    let err = format!("{:#}", frl_learner::fit::<Dt>(&job, &options, common::no_stop()).unwrap_err());
    assert!(err.contains("train.shards") && err.contains("gpu"), "{err}");
}

#[test]
fn behaviour_cloning_shards_its_rows_the_same_way() {
    use frl_agents::bc::{Bc, BcConfig};
    let dir = tempfile::tempdir().unwrap();
    tiny_pendulum(&dir.path().join("data"));
    let data = Dataset::open(&dir.path().join("data")).unwrap();
    let head = "{ fourier = { frequencies = 4 } }".parse::<HeadConfig>().unwrap();
    let config = BcConfig { hidden: vec![32], bins: 16, head, ..Default::default() };
    let fresh = || Bc::new(&config, &spec(), &mut StdRng::seed_from_u64(4), &device()).unwrap();
    let prepared = fresh().prepare(&data.episodes).unwrap();
    let run = |shards: usize| {
        let (mut bc, mut opt, mut losses) = (fresh(), opt(shards), Vec::new());
        for step in 1..=4 {
            let batch = bc.sample(&prepared, 11, &mut StdRng::seed_from_u64(step), &device());
            opt.begin_step(step, 1e-3);
            let scalars = bc.train_step(batch, &mut opt).unwrap();
            losses.push((scalars[0].1, opt.grad_norms()[0].1));
        }
        (losses, bc.params().into_iter().map(|p| p.data).collect::<Vec<_>>())
    };
    let (one, p1) = run(1);
    let (three, p3) = run(3);
    for (a, b) in one.iter().zip(&three) {
        assert!(rel(a.0, b.0) < 1e-5 && rel(a.1, b.1) < 1e-5, "loss, grad norm: {one:?} vs {three:?}");
    }
    assert!(rel(one[0].0, one[3].0) > 1e-3, "the steps trained: {one:?}");
    for (a, b) in p1.iter().zip(&p3) {
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "a parameter differs by {worst}");
    }
}

#[test]
fn a_training_pass_drops_by_its_seed_and_inference_does_not() {
    let dt = tiny_dt(HeadConfig::Linear, None);
    let batch = |seed| all_windows(&windows(&dt), seed);
    let train = |seed| {
        let b = batch(seed);
        to_host(dt.model.features_train(b.input, DropoutDraw { seed: b.dropout_seed, first_window: 0 }))
    };
    assert!(train(1) == train(1), "the same seed drops the same values");
    assert!(train(1) != train(2), "another seed drops others");
    let plain = to_host(dt.model.features(batch(1).input));
    assert!(plain == to_host(dt.model.features(batch(2).input)), "no dropout without a training pass");
    assert!(plain != train(1), "a training pass drops");
    // The inference copy has no dropout even when asked for a training pass.
    let valid = dt.model.valid();
    let b = batch(1);
    let inner = |t: burn::tensor::Tensor<3>| t.inner();
    let input = frl_agents::dt::DtInput {
        returns: inner(b.input.returns),
        states: inner(b.input.states),
        actions: inner(b.input.actions),
        timesteps: b.input.timesteps.inner(),
    };
    let inference = to_host(valid.features_train(input, DropoutDraw { seed: 1, first_window: 0 }));
    let worst = inference.iter().zip(&plain).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst < 1e-5, "inference differs from the training model without dropout by {worst}");
}

#[test]
fn one_step_moves_every_parameter_of_the_dt() {
    // A gradient that stops at some layer (an untracked op in the forward pass) leaves its parameters where they
    // were; without weight decay only a gradient moves a parameter.
    let _turn = serial();
    for shards in [1, 2] {
        let dt = tiny_dt("{ fourier = { frequencies = 4 } }".parse::<HeadConfig>().unwrap(), None);
        let windows = windows(&dt);
        let before = params(&dt);
        let mut opt = Optimizers::new(AdamWConfig { weight_decay: 0.0, grad_clip: 0.0, ..Default::default() })
            .with_shards(shards);
        opt.begin_step(1, 1e-3);
        let mut dt = dt;
        dt.train_step(all_windows(&windows, 5), &mut opt).unwrap();
        for ((name, a), (_, b)) in before.iter().zip(params(&dt)) {
            assert!(a.iter().zip(&b).any(|(x, y)| x != y), "{shards} shards: {name} did not move");
        }
    }
}
