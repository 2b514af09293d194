//! Network building blocks shared by frl's sequence models (the Decision Transformer, the forecaster): pre-LN GPT
//! blocks with seeded dropout masks, GPT-2's initialisation, and the fused CPU layers they run on.

#![warn(missing_docs)]

pub mod fused;
pub mod gelu;
pub mod gpt;

pub use gpt::{Block, DropoutDraw, DropoutMasks, INIT_STD, dropout_mask, normal, normal_linear};
