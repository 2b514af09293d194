//! Feature pins for the workspace's shared dependencies; no code (see Cargo.toml).

#![warn(missing_docs)]
