//! Episodes in columnar form: the unit actors send and the layout dataset shards store.

use frl_envs::History;
use frl_envs::{Action, Transition};

/// Where an episode came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeTag {
    /// Index of the episode within its collection run (decides its seeds).
    pub index: u64,
    /// Seed passed to `reset`.
    pub seed: u64,
    /// Version of the policy that acted at the episode's first step.
    pub policy_version: u64,
}

/// Complete episodes stored column by column. Episode `e` has `len(e)` steps and `len(e) + 1` observations (the
/// last one is the observation after the final step).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EpisodeBatch {
    /// Elements of one observation.
    pub obs_dim: usize,
    /// Elements of one action (1 for a discrete action, stored as its index).
    pub act_dim: usize,
    /// Observations, flat: `(steps + episodes) * obs_dim`.
    pub observations: Vec<f32>,
    /// Actions, flat: `steps * act_dim`.
    pub actions: Vec<f32>,
    /// Rewards, one per step.
    pub rewards: Vec<f32>,
    /// Whether the step ended in a terminal state.
    pub terminated: Vec<bool>,
    /// Whether the step was cut by the time limit.
    pub truncated: Vec<bool>,
    /// Step offsets: episode `e` covers steps `offsets[e]..offsets[e + 1]`; starts with 0.
    pub offsets: Vec<usize>,
    /// One tag per episode.
    pub tags: Vec<EpisodeTag>,
    /// Per step, the version of the policy that chose its action (a Markov policy may take a newer version inside
    /// an episode). Steps recorded without one take their episode's `policy_version` when it finishes.
    pub versions: Vec<u64>,
}

/// One episode of a batch, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct EpisodeRef<'a> {
    /// Elements of one observation.
    pub obs_dim: usize,
    /// Elements of one action.
    pub act_dim: usize,
    /// `len + 1` observations.
    pub observations: &'a [f32],
    /// `len` actions.
    pub actions: &'a [f32],
    /// `len` rewards.
    pub rewards: &'a [f32],
    /// `len` terminal flags.
    pub terminated: &'a [bool],
    /// `len` truncation flags.
    pub truncated: &'a [bool],
    /// `len` policy versions (empty where they are not known: every step then counts as the tag's).
    pub versions: &'a [u64],
    /// Where it came from.
    pub tag: EpisodeTag,
}

impl EpisodeRef<'_> {
    /// Whether the episode ended (its last step terminated or was truncated); a fragment of a running episode did not.
    pub fn ended(&self) -> bool {
        matches!((self.terminated.last(), self.truncated.last()), (Some(true), _) | (_, Some(true)))
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// True for an episode without steps.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Sum of rewards.
    pub fn episode_return(&self) -> f64 {
        self.rewards.iter().map(|&r| r as f64).sum()
    }

    /// The version of the policy that chose step `t`'s action.
    pub fn version(&self, t: usize) -> u64 {
        self.versions.get(t).copied().unwrap_or(self.tag.policy_version)
    }

    /// CRC-32C of what the env produced in this episode (observations, rewards, termination and truncation flags):
    /// two runs of an env agree on an episode when their fingerprints do.
    pub fn fingerprint(&self) -> u32 {
        let mut crc = 0;
        for v in self.observations.iter().chain(self.rewards) {
            crc = crc32c::crc32c_append(crc, &v.to_le_bytes());
        }
        let flags: Vec<u8> =
            self.terminated.iter().zip(self.truncated).map(|(&a, &b)| u8::from(a) | u8::from(b) << 1).collect();
        crc32c::crc32c_append(crc, &flags)
    }
}

impl EpisodeBatch {
    /// An empty batch for the given sizes.
    pub fn new(obs_dim: usize, act_dim: usize) -> Self {
        EpisodeBatch { obs_dim, act_dim, offsets: vec![0], ..Default::default() }
    }

    /// An empty batch with room for `steps` steps in about `episodes` episodes.
    pub fn with_capacity(obs_dim: usize, act_dim: usize, steps: usize, episodes: usize) -> Self {
        let mut offsets = Vec::with_capacity(episodes + 1);
        offsets.push(0);
        EpisodeBatch {
            obs_dim,
            act_dim,
            observations: Vec::with_capacity((steps + episodes) * obs_dim),
            actions: Vec::with_capacity(steps * act_dim),
            rewards: Vec::with_capacity(steps),
            terminated: Vec::with_capacity(steps),
            truncated: Vec::with_capacity(steps),
            offsets,
            tags: Vec::with_capacity(episodes),
            versions: Vec::with_capacity(steps),
        }
    }

    /// Number of complete episodes.
    pub fn episodes(&self) -> usize {
        self.tags.len()
    }

    /// Number of steps in complete episodes.
    pub fn steps(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    /// True when it holds no complete episode.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Episode `e`.
    pub fn episode(&self, e: usize) -> EpisodeRef<'_> {
        let (s0, s1) = (self.offsets[e], self.offsets[e + 1]);
        let (o0, o1) = ((s0 + e) * self.obs_dim, (s1 + e + 1) * self.obs_dim);
        EpisodeRef {
            obs_dim: self.obs_dim,
            act_dim: self.act_dim,
            observations: &self.observations[o0..o1],
            actions: &self.actions[s0 * self.act_dim..s1 * self.act_dim],
            rewards: &self.rewards[s0..s1],
            terminated: &self.terminated[s0..s1],
            truncated: &self.truncated[s0..s1],
            versions: self.versions.get(s0..s1).unwrap_or(&[]),
            tag: self.tags[e],
        }
    }

    /// Per-element mean and standard deviation (floored at 1e-6) of every observation, in f64 sums.
    pub fn observation_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let d = self.obs_dim;
        let rows = self.observations.len() / d.max(1);
        let mut mean = vec![0.0f64; d];
        let mut sq = vec![0.0f64; d];
        for row in self.observations.chunks_exact(d.max(1)) {
            for (i, &x) in row.iter().enumerate() {
                mean[i] += x as f64;
                sq[i] += (x as f64) * (x as f64);
            }
        }
        let n = rows.max(1) as f64;
        let obs_mean = mean.iter().map(|m| (m / n) as f32).collect();
        let obs_std =
            mean.iter().zip(&sq).map(|(m, s)| ((s / n - (m / n).powi(2)).max(0.0).sqrt().max(1e-6)) as f32).collect();
        (obs_mean, obs_std)
    }

    /// Iterates over the complete episodes.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EpisodeRef<'_>> {
        (0..self.episodes()).map(|e| self.episode(e))
    }

    /// Appends a copy of `ep`.
    pub fn push(&mut self, ep: &EpisodeRef<'_>) {
        debug_assert!(self.in_flight().is_none());
        self.observations.extend_from_slice(ep.observations);
        self.actions.extend_from_slice(ep.actions);
        self.rewards.extend_from_slice(ep.rewards);
        self.terminated.extend_from_slice(ep.terminated);
        self.truncated.extend_from_slice(ep.truncated);
        self.versions.extend((0..ep.len()).map(|t| ep.version(t)));
        self.offsets.push(self.rewards.len());
        self.tags.push(ep.tag);
    }

    /// The highest-return episodes whose steps together fit in `max_steps` (taken best first until the next one does
    /// not fit), ordered worst first, so that a first-in-first-out store drops the worst of them first.
    pub fn best_that_fit(&self, max_steps: usize) -> EpisodeBatch {
        let mut order: Vec<(usize, f64)> = self.iter().enumerate().map(|(e, ep)| (e, ep.episode_return())).collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut kept = Vec::new();
        let mut steps = 0;
        for (e, _) in order {
            let len = self.offsets[e + 1] - self.offsets[e];
            if steps + len > max_steps {
                break;
            }
            steps += len;
            kept.push(e);
        }
        let mut out = EpisodeBatch::with_capacity(self.obs_dim, self.act_dim, steps, kept.len());
        for &e in kept.iter().rev() {
            out.push(&self.episode(e));
        }
        out
    }

    /// Appends every episode of `other`.
    pub fn extend(&mut self, other: &EpisodeBatch) {
        for ep in other.iter() {
            self.push(&ep);
        }
    }

    /// Starts an episode with its first observation.
    pub fn begin(&mut self, first_obs: &[f32]) {
        self.abort();
        self.observations.extend_from_slice(first_obs);
    }

    /// Records one step of the episode in flight.
    pub fn record(&mut self, action: &Action, reward: f64, next_obs: &[f32], terminated: bool, truncated: bool) {
        self.observations.extend_from_slice(next_obs);
        self.record_outcome(action, Transition { reward, terminated, truncated });
    }

    /// Records one step whose next observation the env already appended to `observations` ([`Env::step_into`]).
    ///
    /// [`Env::step_into`]: frl_envs::Env::step_into
    #[inline]
    pub fn record_outcome(&mut self, action: &Action, t: Transition) {
        match action {
            Action::Discrete(a) => self.actions.push(*a as f32),
            Action::Continuous(v) => self.actions.extend_from_slice(v),
        }
        self.rewards.push(t.reward as f32);
        self.terminated.push(t.terminated);
        self.truncated.push(t.truncated);
    }

    /// Completes the episode in flight; its steps recorded without a policy version take `tag`'s.
    pub fn finish(&mut self, tag: EpisodeTag) {
        self.versions.resize(self.rewards.len(), tag.policy_version);
        self.offsets.push(self.rewards.len());
        self.tags.push(tag);
    }

    /// Drops the episode in flight, if any, keeping the complete ones.
    pub fn abort(&mut self) {
        let steps = self.steps();
        let e = self.episodes();
        self.observations.truncate((steps + e) * self.obs_dim);
        self.actions.truncate(steps * self.act_dim);
        self.rewards.truncate(steps);
        self.terminated.truncate(steps);
        self.truncated.truncate(steps);
        self.versions.truncate(steps);
    }

    /// The episode in flight as a [`History`], or `None` when none was begun.
    #[inline]
    pub fn in_flight(&self) -> Option<History<'_>> {
        let steps = self.steps();
        let start = (steps + self.episodes()) * self.obs_dim;
        (self.observations.len() > start).then(|| History {
            obs_dim: self.obs_dim,
            observations: &self.observations[start..],
            act_dim: self.act_dim,
            actions: &self.actions[steps * self.act_dim..],
            rewards: &self.rewards[steps..],
        })
    }

    /// Appends steps `from..` of `src`'s episode in flight, with their observations (`from` to the newest), as one
    /// episode tagged `tag`: a fragment of an episode still running (its last step neither terminated nor
    /// truncated), or the last part of one that ended. `src` keeps its episode in flight.
    pub fn push_fragment(&mut self, src: &EpisodeBatch, from: usize, tag: EpisodeTag) {
        debug_assert!(self.in_flight().is_none() && (src.obs_dim, src.act_dim) == (self.obs_dim, self.act_dim));
        let (o, a) = (src.obs_dim, src.act_dim);
        let (s0, e0) = (src.steps(), src.episodes());
        let start = (s0 + e0) * o;
        self.observations.extend_from_slice(&src.observations[start + from * o..]);
        self.actions.extend_from_slice(&src.actions[(s0 + from) * a..]);
        self.rewards.extend_from_slice(&src.rewards[s0 + from..]);
        self.terminated.extend_from_slice(&src.terminated[s0 + from..]);
        self.truncated.extend_from_slice(&src.truncated[s0 + from..]);
        self.versions.extend_from_slice(src.versions.get(s0 + from..).unwrap_or(&[]));
        self.finish(tag);
    }

    /// Appends the steps of `next`, the fragment that continues this batch's last episode (its first observation is
    /// that episode's last one).
    fn continue_last(&mut self, next: &EpisodeRef<'_>) {
        self.observations.extend_from_slice(&next.observations[self.obs_dim..]);
        self.actions.extend_from_slice(next.actions);
        self.rewards.extend_from_slice(next.rewards);
        self.terminated.extend_from_slice(next.terminated);
        self.truncated.extend_from_slice(next.truncated);
        self.versions.extend((0..next.len()).map(|t| next.version(t)));
        *self.offsets.last_mut().expect("a batch with an episode") = self.rewards.len();
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.observations.clear();
        self.actions.clear();
        self.rewards.clear();
        self.terminated.clear();
        self.truncated.clear();
        self.versions.clear();
        self.offsets.truncate(1);
        self.tags.clear();
    }
}

/// Joins fragments into whole episodes: an entry of a batch that has not [ended](EpisodeRef::ended) continues in a
/// later entry with the same episode index (fragments of one episode arrive in order, from one actor).
#[derive(Debug, Default)]
pub struct FragmentJoiner {
    open: std::collections::HashMap<u64, EpisodeBatch>,
}

impl FragmentJoiner {
    /// The episodes that `batch` completes, in the order they complete; whole episodes pass through as they are.
    pub fn join(&mut self, batch: &EpisodeBatch) -> EpisodeBatch {
        let mut done = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
        for ep in batch.iter() {
            let index = ep.tag.index;
            match self.open.remove(&index) {
                Some(mut partial) => {
                    partial.continue_last(&ep);
                    if ep.ended() {
                        done.push(&partial.episode(0));
                    } else {
                        self.open.insert(index, partial);
                    }
                }
                None if ep.ended() => done.push(&ep),
                None => {
                    let mut partial = EpisodeBatch::new(batch.obs_dim, batch.act_dim);
                    partial.push(&ep);
                    self.open.insert(index, partial);
                }
            }
        }
        done
    }

    /// Gives up the episodes not ended whose index `pick` selects (their actor failed); the steps they held.
    pub fn abandon(&mut self, mut pick: impl FnMut(u64) -> bool) -> usize {
        let gone: Vec<u64> = self.open.keys().copied().filter(|&i| pick(i)).collect();
        gone.iter().filter_map(|i| self.open.remove(i)).map(|b| b.steps()).sum()
    }

    /// The episodes begun but not ended, each as far as it has arrived, by index.
    pub fn open_episodes(&self) -> impl Iterator<Item = (u64, EpisodeRef<'_>)> {
        self.open.iter().map(|(&i, b)| (i, b.episode(0)))
    }

    /// Episodes begun but not ended.
    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// Steps held in episodes not ended.
    pub fn open_steps(&self) -> usize {
        self.open.values().map(|b| b.steps()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Episode `i` of a small made-up env: `len` steps, observations `[i, t]`, ending terminated or truncated.
    fn record(batch: &mut EpisodeBatch, i: u64, len: usize, mut cut: impl FnMut(&EpisodeBatch, usize)) {
        batch.begin(&[i as f32, 0.0]);
        for t in 1..=len {
            let (term, trunc) = (t == len && i.is_multiple_of(2), t == len && !i.is_multiple_of(2));
            batch.record(&Action::Discrete(t % 3), (i * 100 + t as u64) as f64, &[i as f32, t as f32], term, trunc);
            cut(batch, t);
        }
    }

    fn tag(i: u64) -> EpisodeTag {
        EpisodeTag { index: i, seed: 7 * i, policy_version: i / 2 }
    }

    #[test]
    fn fragments_of_interleaved_episodes_join_into_the_whole_episodes() {
        let lens = [1usize, 7, 8, 9, 23];
        for k in [1usize, 3, 8] {
            // Whole episodes, recorded the ordinary way.
            let mut whole = EpisodeBatch::new(2, 1);
            for (i, &len) in lens.iter().enumerate() {
                record(&mut whole, i as u64, len, |_, _| {});
                whole.finish(tag(i as u64));
            }
            // The same episodes cut every k steps, each fragment in its own list.
            let mut per_episode: Vec<Vec<EpisodeBatch>> = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                let mut flight = EpisodeBatch::new(2, 1);
                let mut parts = Vec::new();
                let mut from = 0;
                record(&mut flight, i as u64, len, |b, t| {
                    if t.is_multiple_of(k) || t == len {
                        let mut part = EpisodeBatch::new(2, 1);
                        part.push_fragment(b, from, tag(i as u64));
                        assert_eq!(part.episode(0).ended(), t == len, "k={k} i={i} t={t}");
                        parts.push(part);
                        from = t;
                    }
                });
                per_episode.push(parts);
            }
            // Interleaved across episodes (round robin), in order within each, several fragments per batch.
            let mut joiner = FragmentJoiner::default();
            let mut joined = EpisodeBatch::new(2, 1);
            let mut batch = EpisodeBatch::new(2, 1);
            let rounds = per_episode.iter().map(Vec::len).max().unwrap();
            for r in 0..rounds {
                for parts in &per_episode {
                    if let Some(p) = parts.get(r) {
                        batch.extend(p);
                    }
                    if batch.episodes() == 2 {
                        joined.extend(&joiner.join(&batch));
                        batch.clear();
                    }
                }
            }
            joined.extend(&joiner.join(&batch));
            assert_eq!((joiner.open(), joiner.open_steps()), (0, 0), "k={k}");
            let mut by_index: Vec<EpisodeRef> = joined.iter().collect();
            by_index.sort_by_key(|e| e.tag.index);
            assert_eq!(by_index.len(), lens.len(), "k={k}");
            for (got, want) in by_index.iter().zip(whole.iter()) {
                assert_eq!(got.observations, want.observations, "k={k} episode {}", want.tag.index);
                assert_eq!((got.actions, got.rewards), (want.actions, want.rewards));
                assert_eq!((got.terminated, got.truncated, got.tag), (want.terminated, want.truncated, want.tag));
            }
        }
    }

    #[test]
    fn an_episode_still_open_is_held_back() {
        let mut flight = EpisodeBatch::new(2, 1);
        let mut first = EpisodeBatch::new(2, 1);
        record(&mut flight, 3, 4, |b, t| {
            if t == 2 {
                first.push_fragment(b, 0, tag(3));
            }
        });
        let mut joiner = FragmentJoiner::default();
        assert!(joiner.join(&first).is_empty());
        assert_eq!((joiner.open(), joiner.open_steps()), (1, 2));
        let mut rest = EpisodeBatch::new(2, 1);
        rest.push_fragment(&flight, 2, tag(3));
        let done = joiner.join(&rest);
        assert_eq!((done.episodes(), done.steps(), joiner.open()), (1, 4, 0));
        assert_eq!(done.episode(0).observations, flight.in_flight().unwrap().observations);
    }
}
