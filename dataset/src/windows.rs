//! [`WindowIndex`]: where length-`K` windows of consecutive steps can start inside a dataset's episodes, and uniform
//! sampling of window starts, for sequence models (the Decision Transformer builds its token windows from these).

use rand::{Rng, RngCore};

use crate::episodes::EpisodeBatch;

/// Window starts over the steps of all episodes, flat; a window never crosses its episode's end.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowIndex {
    context: usize,
    /// End (exclusive, flat step index) of the episode each step belongs to.
    episode_end: Vec<usize>,
}

impl WindowIndex {
    /// Windows of up to `context` steps over `episodes`.
    pub fn new(episodes: &EpisodeBatch, context: usize) -> Self {
        Self::from_lengths((0..episodes.episodes()).map(|e| episodes.offsets[e + 1] - episodes.offsets[e]), context)
    }

    /// Windows of up to `context` steps over consecutive episodes of the given lengths.
    pub fn from_lengths(lengths: impl IntoIterator<Item = usize>, context: usize) -> Self {
        let mut episode_end = Vec::new();
        for len in lengths {
            let end = episode_end.len() + len;
            episode_end.extend(std::iter::repeat_n(end, len));
        }
        Self { context, episode_end }
    }

    /// Steps (possible starts).
    pub fn steps(&self) -> usize {
        self.episode_end.len()
    }

    /// The window length `K`.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Real steps in the window starting at `start`: `K`, or fewer where the episode ends first.
    pub fn len_at(&self, start: usize) -> usize {
        (self.episode_end[start] - start).min(self.context)
    }

    /// `batch` starts drawn uniformly over all steps (so episodes are drawn in proportion to their length).
    pub fn sample_starts(&self, batch: usize, rng: &mut dyn RngCore) -> Vec<usize> {
        (0..batch).map(|_| rng.random_range(0..self.steps())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::EpisodeTag;
    use frl_envs::Action;
    use rand::SeedableRng;

    #[test]
    fn windows_stop_at_their_episode_end() {
        let mut b = EpisodeBatch::new(1, 1);
        for (e, len) in [3usize, 5].into_iter().enumerate() {
            b.begin(&[0.0]);
            for t in 0..len {
                b.record(&Action::Discrete(0), 1.0, &[t as f32], false, t + 1 == len);
            }
            b.finish(EpisodeTag { index: e as u64, seed: 0, policy_version: 0 });
        }
        let w = WindowIndex::new(&b, 4);
        assert_eq!(w.steps(), 8);
        let lens: Vec<usize> = (0..8).map(|s| w.len_at(s)).collect();
        assert_eq!(lens, vec![3, 2, 1, 4, 4, 3, 2, 1]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let starts = w.sample_starts(1000, &mut rng);
        assert!(starts.iter().all(|&s| s < 8));
        assert!((0..8).all(|s| starts.contains(&s)));
    }
}
