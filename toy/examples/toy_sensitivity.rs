//! How sensitive one synthetic-benchmark run is to float rounding: trains the run `K` times from its exact start
//! (written by `frl toy --export-start`), each time with every initial parameter moved by at most one float32 ulp in
//! a random direction, and reports how many end no better than a uniform prediction.
//!
//! `cargo run --release -p frl-toy --example toy_sensitivity -- START.json [K] [EPOCHS]`

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use frl_learner::params::{NamedTensor, load_params};
use frl_toy::replay::Replay;
use frl_toy::report::UNIFORM_TOLERANCE;
use frl_toy::train;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else { anyhow::bail!("usage: toy_sensitivity START.json [K] [EPOCHS]") };
    let replay: Replay = serde_json::from_slice(&std::fs::read(path)?)?;
    let k: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let epochs = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(replay.orders.len()).min(replay.orders.len());
    let uniform = (replay.spec.bins as f64).ln();
    let mut stuck = 0;
    for variant in 0..=k {
        // variant 0 is the unperturbed start
        let losses = train_from(&replay, variant, epochs)?;
        let last = *losses.last().unwrap_or(&f64::NAN);
        let is_stuck = last >= uniform - UNIFORM_TOLERANCE;
        if variant > 0 && is_stuck {
            stuck += 1;
        }
        println!(
            "{}: final loss {last:.4} (epoch 25: {:.4}){}",
            if variant == 0 { "exact start".to_string() } else { format!("perturbation {variant}") },
            losses.get(24).copied().unwrap_or(f64::NAN),
            if is_stuck { "  <- uniform plateau" } else { "" }
        );
    }
    println!(
        "{stuck} of {k} one-ulp perturbations end no better than uniform (ln {} = {uniform:.3})",
        replay.spec.bins
    );
    Ok(())
}

fn train_from(replay: &Replay, variant: u64, epochs: usize) -> anyhow::Result<Vec<f64>> {
    let spec = &replay.spec;
    let device = frl_learner::backend::training_device();
    let mut rng = StdRng::seed_from_u64(variant);
    let values: HashMap<String, NamedTensor> = replay
        .params
        .iter()
        .map(|p| {
            let data =
                p.data.iter().map(|&v| if variant == 0 { v } else { nudge(v, rng.random_range(-1..=1)) }).collect();
            (p.name.clone(), NamedTensor { name: p.name.clone(), shape: p.shape.clone(), data })
        })
        .collect();
    let model = train::start(spec, &device)?.model;
    let model = load_params(model, &values).map_err(anyhow::Error::msg)?;
    let orders = replay.orders[..epochs].iter().cloned();
    let fitted = train::fit(spec, model, &replay.train_x, &replay.train_y, orders, &AtomicBool::new(false))?;
    Ok(fitted.epoch_losses)
}

/// `v` moved by `steps` float32 ulps.
fn nudge(v: f32, steps: i32) -> f32 {
    match steps {
        0 => v,
        s if s > 0 => v.next_up(),
        _ => v.next_down(),
    }
}
