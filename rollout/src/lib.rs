//! Actor threads that run policies in envs and send complete episodes to one consumer: the [`ActorPool`] and its
//! links ([`ActorLink`], versioned [`PolicySnapshot`]s), the deterministic [`lockstep`] actors of online runs, data collection into a dataset ([`collect`]) and
//! evaluation of a policy ([`evaluate()`]).

#![warn(missing_docs)]

pub mod collect;
pub mod evaluate;
mod link;
pub mod lockstep;
pub mod pool;

pub use evaluate::{EvalReport, evaluate, reference_scores};
pub use link::{ActorLink, ChannelLink, Disconnected, PolicySnapshot};
pub use lockstep::{
    Fragment, InFlight, InOrder, LockstepActors, LockstepConfig, Published, RemoteActors, Schedule, SlotState, Slots,
};
pub use pool::{ActorPool, EnvFactory, EpisodeRng, PoolConfig, PoolReport, episode_seeds, step_seed};
