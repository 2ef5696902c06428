//! The syntax every manifest document shares: YAML parsed with a position for every node,
//! diagnostics that name file, line and column, and `{UPPER_SNAKE}` placeholders.
//!
//! This is the bottom of the pure stages: kinds validate their specs with it and the
//! manifest stage compiles documents with it, and it knows nothing of either.

pub mod diag;
pub mod template;
pub mod yaml;
