//! Environments (Gymnasium-style `Env` trait, native classic-control envs); filled by the environments work.
