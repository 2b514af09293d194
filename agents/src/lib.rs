//! Agents over heads (Decision Transformer, behaviour policies); filled by the agents work.
