//! Actor threads that run policies in envs and send complete episodes to one consumer.

mod link;
pub(crate) mod pool;

pub use link::{ActorLink, ChannelLink, Disconnected, PolicySnapshot};
pub use pool::{ActorPool, EnvFactory, EpisodeRng, PoolConfig, PoolReport, episode_seeds};
