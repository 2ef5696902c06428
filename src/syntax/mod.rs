//! The syntax every manifest document shares: YAML parsed with a position for every node,
//! diagnostics that name file, line and column, `{UPPER_SNAKE}` placeholders, and
//! `{ref:KIND/NAME.ATTRIBUTE}` references to values AWS assigns.
//!
//! This is the bottom of the pure stages: kinds validate their specs with it and the
//! manifest stage compiles documents with it, and it knows nothing of either.

pub mod diag;
pub mod refs;
pub mod template;
pub mod yaml;
