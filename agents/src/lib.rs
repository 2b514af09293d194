//! Agents over heads: the Decision Transformer and behaviour policies (not implemented yet).

#![warn(missing_docs)]
