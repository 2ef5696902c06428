//! Review before merge: what a change to the manifests does, offline. [`diff`] compares the
//! desired states of two revisions (resources added, changed and removed, the access each
//! change adds and removes, the lint findings the head adds); [`markdown`] writes a
//! pull-request comment from a plan or a diff, within GitHub's comment limit.
//!
//! Pure: the caller loads the revisions.

pub mod diff;
pub mod markdown;

pub use diff::{diff, new_findings, DesiredDiff, DiffSummary};
pub use markdown::{plan_comment, Comment, Section, COMMENT_LIMIT};
