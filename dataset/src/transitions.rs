//! [`Transitions`]: every step of a dataset as an `n`-step transition (observation, action, discounted reward sum,
//! the observation `n` steps later and the discount to bootstrap from it), and uniform sampling of them. Host
//! arrays only: agents turn a [`TransitionBatch`] into tensors.

use rand::{Rng, RngCore};

use crate::episodes::EpisodeBatch;

/// The transitions of a dataset, flat over all episodes; or, with a capacity, a replay buffer that keeps the newest
/// `capacity` transitions (a ring: the oldest is overwritten first).
#[derive(Debug, Clone, PartialEq)]
pub struct Transitions {
    /// Elements of one observation.
    pub obs_dim: usize,
    /// Elements of one action.
    pub act_dim: usize,
    n_step: usize,
    gamma: f64,
    capacity: Option<usize>,
    /// Where the next transition goes once the ring is full.
    cursor: usize,
    /// Transitions ever added (including overwritten ones).
    added: u64,
    obs: Vec<f32>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    next_obs: Vec<f32>,
    discounts: Vec<f32>,
}
/// A sampled batch of transitions, row-major host arrays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TransitionBatch {
    /// Rows.
    pub len: usize,
    /// Observations, `len × obs_dim`.
    pub obs: Vec<f32>,
    /// Actions, `len × act_dim`.
    pub actions: Vec<f32>,
    /// `Σ_{k<n'} γ^k r_{t+k}`, where `n' ≤ n` is cut short by the episode's end.
    pub rewards: Vec<f32>,
    /// The observation after those `n'` steps, `len × obs_dim`.
    pub next_obs: Vec<f32>,
    /// `γ^{n'}`, or 0 when the episode terminated within the `n'` steps (a time-limit cut still bootstraps).
    pub discounts: Vec<f32>,
}

impl Transitions {
    /// The `n_step` transitions of every step of `episodes` with discount `gamma`.
    pub fn new(episodes: &EpisodeBatch, n_step: usize, gamma: f64) -> Self {
        let mut t = Self::empty(episodes.obs_dim, episodes.act_dim, n_step, gamma, None);
        t.reserve(episodes.steps());
        t.push_episodes(episodes);
        t
    }

    /// An empty store of `n_step` transitions with discount `gamma`; with `capacity`, a replay buffer that keeps
    /// the newest `capacity` transitions.
    pub fn empty(obs_dim: usize, act_dim: usize, n_step: usize, gamma: f64, capacity: Option<usize>) -> Self {
        let mut t = Transitions {
            obs_dim,
            act_dim,
            n_step: n_step.max(1),
            gamma,
            capacity: capacity.map(|c| c.max(1)),
            cursor: 0,
            added: 0,
            obs: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            next_obs: Vec::new(),
            discounts: Vec::new(),
        };
        if let Some(c) = t.capacity {
            t.reserve(c);
        }
        t
    }

    fn reserve(&mut self, steps: usize) {
        let (o, a) = (self.obs_dim, self.act_dim);
        self.obs.reserve(steps * o);
        self.actions.reserve(steps * a);
        self.rewards.reserve(steps);
        self.next_obs.reserve(steps * o);
        self.discounts.reserve(steps);
    }

    /// Adds every step of `episodes` (complete episodes, so `n`-step sums stop at their ends); a full buffer
    /// overwrites its oldest transitions.
    pub fn push_episodes(&mut self, episodes: &EpisodeBatch) {
        assert_eq!(
            (episodes.obs_dim, episodes.act_dim),
            (self.obs_dim, self.act_dim),
            "episodes' observation/action sizes differ from the buffer's"
        );
        let (o, a) = (self.obs_dim, self.act_dim);
        for ep in episodes.iter() {
            let len = ep.len();
            for s in 0..len {
                let n = self.n_step.min(len - s);
                let mut ret = 0.0f64;
                let mut disc = 1.0f64;
                let mut terminal = false;
                for k in 0..n {
                    ret += disc * ep.rewards[s + k] as f64;
                    disc *= self.gamma;
                    if ep.terminated[s + k] {
                        terminal = true;
                        break;
                    }
                }
                let ahead = s + n;
                self.put(
                    &ep.observations[s * o..(s + 1) * o],
                    &ep.actions[s * a..(s + 1) * a],
                    ret as f32,
                    &ep.observations[ahead * o..(ahead + 1) * o],
                    if terminal { 0.0 } else { disc as f32 },
                );
            }
        }
    }

    fn put(&mut self, obs: &[f32], action: &[f32], reward: f32, next_obs: &[f32], discount: f32) {
        self.added += 1;
        match self.capacity {
            Some(c) if self.rewards.len() == c => {
                let (i, o, a) = (self.cursor, self.obs_dim, self.act_dim);
                self.obs[i * o..(i + 1) * o].copy_from_slice(obs);
                self.actions[i * a..(i + 1) * a].copy_from_slice(action);
                self.rewards[i] = reward;
                self.next_obs[i * o..(i + 1) * o].copy_from_slice(next_obs);
                self.discounts[i] = discount;
                self.cursor = (i + 1) % c;
            }
            _ => {
                self.obs.extend_from_slice(obs);
                self.actions.extend_from_slice(action);
                self.rewards.push(reward);
                self.next_obs.extend_from_slice(next_obs);
                self.discounts.push(discount);
            }
        }
    }

    /// The capacity of a replay buffer (`None`: unbounded).
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Transitions ever added, overwritten ones included.
    pub fn added(&self) -> u64 {
        self.added
    }

    /// Number of transitions.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// True without transitions.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Every transition's action, `len × act_dim`.
    pub fn actions(&self) -> &[f32] {
        &self.actions
    }

    /// The observations of the transitions at `idx`, `idx.len() × obs_dim`.
    pub fn observations(&self, idx: &[usize]) -> Vec<f32> {
        let o = self.obs_dim;
        idx.iter().flat_map(|&i| self.obs[i * o..(i + 1) * o].iter().copied()).collect()
    }

    /// Replaces every observation `x` (current and next) by `f(x)` in place, e.g. normalisation.
    pub fn map_observations(&mut self, mut f: impl FnMut(&[f32], &mut Vec<f32>)) {
        for buf in [&mut self.obs, &mut self.next_obs] {
            let mut out = Vec::with_capacity(buf.len());
            for row in buf.chunks_exact(self.obs_dim) {
                f(row, &mut out);
            }
            *buf = out;
        }
    }

    /// Multiplies every reward sum by `scale`.
    pub fn scale_rewards(&mut self, scale: f32) {
        self.rewards.iter_mut().for_each(|r| *r *= scale);
    }

    /// `batch` indices drawn uniformly with replacement.
    pub fn indices(&self, batch: usize, rng: &mut dyn RngCore) -> Vec<usize> {
        (0..batch).map(|_| rng.random_range(0..self.len())).collect()
    }

    /// `batch` transitions drawn uniformly with replacement.
    pub fn sample(&self, batch: usize, rng: &mut dyn RngCore) -> TransitionBatch {
        let idx = self.indices(batch, rng);
        self.gather(&idx)
    }

    /// The transitions at `idx`.
    pub fn gather(&self, idx: &[usize]) -> TransitionBatch {
        let (o, a) = (self.obs_dim, self.act_dim);
        let mut b = TransitionBatch { len: idx.len(), ..Default::default() };
        for &i in idx {
            b.obs.extend_from_slice(&self.obs[i * o..(i + 1) * o]);
            b.actions.extend_from_slice(&self.actions[i * a..(i + 1) * a]);
            b.rewards.push(self.rewards[i]);
            b.next_obs.extend_from_slice(&self.next_obs[i * o..(i + 1) * o]);
            b.discounts.push(self.discounts[i]);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episodes::EpisodeTag;
    use frl_envs::Action;

    /// One 3-step episode with rewards 1, 2, 4 and observations 0..=3, terminated or truncated at the end.
    fn episode(terminated: bool) -> EpisodeBatch {
        let mut b = EpisodeBatch::new(1, 1);
        b.begin(&[0.0]);
        for (t, r) in [1.0, 2.0, 4.0].into_iter().enumerate() {
            let last = t == 2;
            b.record(&Action::Discrete(t), r, &[t as f32 + 1.0], last && terminated, last && !terminated);
        }
        b.finish(EpisodeTag { index: 0, seed: 0, policy_version: 0 });
        b
    }

    #[test]
    fn n_step_sums_stop_at_the_episode_end_and_terminals_do_not_bootstrap() {
        let t = Transitions::new(&episode(true), 2, 0.5);
        let all = t.gather(&[0, 1, 2]);
        assert_eq!(all.rewards, vec![1.0 + 0.5 * 2.0, 2.0 + 0.5 * 4.0, 4.0]);
        assert_eq!(all.next_obs, vec![2.0, 3.0, 3.0]);
        assert_eq!(all.discounts, vec![0.25, 0.0, 0.0]);
        assert_eq!(all.actions, vec![0.0, 1.0, 2.0]);
        // A time-limit cut bootstraps from the last observation.
        let cut = Transitions::new(&episode(false), 2, 0.5).gather(&[1, 2]);
        assert_eq!(cut.discounts, vec![0.25, 0.5]);
        let one = Transitions::new(&episode(true), 1, 0.9).gather(&[0]);
        assert_eq!((one.rewards[0], one.next_obs[0], one.discounts[0]), (1.0, 1.0, 0.9));
    }

    #[test]
    fn a_full_replay_buffer_overwrites_its_oldest_transitions_and_keeps_n_step_sums_within_episodes() {
        let mut ring = Transitions::empty(1, 1, 2, 0.5, Some(4));
        ring.push_episodes(&episode(true)); // transitions from observations 0, 1, 2
        assert_eq!((ring.len(), ring.added()), (3, 3));
        ring.push_episodes(&episode(false)); // 0', 1', 2': the first goes to slot 3, then slots 0 and 1 are reused
        assert_eq!((ring.len(), ring.added(), ring.capacity()), (4, 6, Some(4)));
        let all = ring.gather(&[0, 1, 2, 3]);
        // Slots 0 and 1 now hold the second episode's steps 1 and 2 (time-limit cut: bootstraps), slot 2 the first
        // episode's last step (terminal), slot 3 the second episode's first step.
        assert_eq!(all.obs, vec![1.0, 2.0, 2.0, 0.0]);
        assert_eq!(all.actions, vec![1.0, 2.0, 2.0, 0.0]);
        assert_eq!(all.rewards, vec![2.0 + 0.5 * 4.0, 4.0, 4.0, 1.0 + 0.5 * 2.0]);
        assert_eq!(all.next_obs, vec![3.0, 3.0, 3.0, 2.0]);
        assert_eq!(all.discounts, vec![0.25, 0.5, 0.0, 0.25]);
        // One more episode overwrites slots 2, 3, 0 in that order.
        ring.push_episodes(&episode(true));
        let all = ring.gather(&[0, 1, 2, 3]);
        assert_eq!(all.obs, vec![2.0, 2.0, 0.0, 1.0]);
        assert_eq!(all.discounts, vec![0.0, 0.5, 0.25, 0.0]);
        assert_eq!(ring.added(), 9);
    }
}
