//! The actor ↔ consumer boundary: actors send episode batches and fetch the newest policy snapshot.
//!
//! [`ChannelLink`] implements it for threads in one process (a bounded crossbeam channel gives backpressure);
//! a multi-machine implementation only has to provide the same two calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crossbeam_channel::{Receiver, Sender};
use frl_envs::PolicyFactory;

use frl_dataset::episodes::EpisodeBatch;

/// A versioned policy that actors build their policy instances from.
#[derive(Clone)]
pub struct PolicySnapshot {
    /// Increases with every broadcast; recorded in each episode.
    pub version: u64,
    /// Builds the policy.
    pub factory: Arc<dyn PolicyFactory>,
}

/// The consumer went away; actors stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the episode consumer has stopped")]
pub struct Disconnected;

/// What an actor needs from the rest of the system.
pub trait ActorLink: Send + Sync {
    /// Hands over complete episodes; blocks while the consumer is behind (nothing is dropped).
    fn send(&self, batch: EpisodeBatch) -> Result<(), Disconnected>;

    /// The newest policy snapshot if its version differs from `have`.
    fn newer_policy(&self, have: u64) -> Option<PolicySnapshot>;
}

/// Threads in one process: a bounded channel of batches and a shared snapshot slot.
pub struct ChannelLink {
    tx: Sender<EpisodeBatch>,
    version: AtomicU64,
    snapshot: RwLock<PolicySnapshot>,
    sent: AtomicU64,
}

impl ChannelLink {
    /// A link holding at most `capacity` batches in flight, starting with `factory` as version 0; also returns the
    /// receiving end.
    pub fn new(capacity: usize, factory: Arc<dyn PolicyFactory>) -> (Arc<Self>, Receiver<EpisodeBatch>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let link = ChannelLink {
            tx,
            version: AtomicU64::new(0),
            snapshot: RwLock::new(PolicySnapshot { version: 0, factory }),
            sent: AtomicU64::new(0),
        };
        (Arc::new(link), rx)
    }

    /// A link whose first policy is `snapshot` (with its version), e.g. in a worker that continues a numbering.
    pub fn with_snapshot(capacity: usize, snapshot: PolicySnapshot) -> (Arc<Self>, Receiver<EpisodeBatch>) {
        let (link, rx) = Self::new(capacity, snapshot.factory.clone());
        link.version.store(snapshot.version, Ordering::Release);
        link.snapshot.write().unwrap_or_else(|e| e.into_inner()).version = snapshot.version;
        (link, rx)
    }

    /// Publishes a new policy; actors pick it up at their next episode. Returns its version.
    pub fn broadcast(&self, factory: Arc<dyn PolicyFactory>) -> u64 {
        let mut slot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        let version = slot.version + 1;
        *slot = PolicySnapshot { version, factory };
        self.version.store(version, Ordering::Release);
        version
    }

    /// The newest policy snapshot.
    pub fn current(&self) -> PolicySnapshot {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Batches handed over so far.
    pub fn batches_sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }
}

impl ActorLink for ChannelLink {
    fn send(&self, batch: EpisodeBatch) -> Result<(), Disconnected> {
        self.tx.send(batch).map_err(|_| Disconnected)?;
        self.sent.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    fn newer_policy(&self, have: u64) -> Option<PolicySnapshot> {
        if self.version.load(Ordering::Acquire) == have {
            return None;
        }
        Some(self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}
