//! What the agent tests share: a tiny dataset and turns for trainings in one process.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use frl_dataset::dataset::{Collection, DatasetWriter};
use frl_dataset::episodes::{EpisodeBatch, EpisodeTag};
use frl_envs::{Action, Space};

/// Dropout and sampling draw from the backend's process-wide RNG (reseeded every step), so trainings in one test
/// binary take turns to stay reproducible.
static SERIAL: Mutex<()> = Mutex::new(());

/// This test's turn to train.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Training options without a progress bar; `resume` continues a run from its checkpoints.
pub fn quiet(resume: bool) -> frl_learner::TrainOptions {
    frl_learner::TrainOptions { resume, quiet: true, ..Default::default() }
}

/// A stop flag that is never set.
pub fn no_stop() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

/// Pendulum's observation and action spaces.
pub fn pendulum_spaces() -> (Space, Space) {
    (Space::vector(&[-1.0, -1.0, -8.0], &[1.0, 1.0, 8.0]), Space::vector(&[-2.0], &[2.0]))
}

/// Writes to `dir` two six-step Pendulum-shaped episodes whose actions are a fixed function of the episode and the
/// step.
pub fn tiny_pendulum(dir: &Path) {
    let (obs, act) = pendulum_spaces();
    let collection = Collection { policy: "scripted".into(), seed: 0, first_episode: 0, episodes: 0, requested: 2 };
    let mut w = DatasetWriter::open(dir, "Pendulum-v1", &obs, &act, collection, 1000, false).unwrap();
    for e in 0..2u64 {
        let mut b = EpisodeBatch::new(3, 1);
        let o = |t: usize| vec![(t as f32 * 0.5 + e as f32).cos(), (t as f32 * 0.5).sin(), e as f32 - 0.5];
        b.begin(&o(0));
        for t in 0..6 {
            let a = if e == 0 { -1.8 + 0.6 * t as f32 } else { 1.7 - 0.5 * t as f32 };
            b.record(&Action::Continuous(vec![a]), -(t as f64), &o(t + 1), false, t == 5);
        }
        b.finish(EpisodeTag { index: e, seed: e, policy_version: 0 });
        w.write(&b.episode(0)).unwrap();
    }
    w.finish().unwrap();
}
