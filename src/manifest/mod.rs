//! Manifests: a directory of YAML documents compiled into the desired state. Nothing here
//! talks to AWS.
//!
//! Loading is in two halves: [`load`] reads files (the only IO of the pure stages:
//! directory walk, the manifest files, the files they name), [`compile`] is pure and turns
//! parsed documents into a [`DesiredState`] or the full list of problems. Every kind is
//! reached through the registry ([`crate::kinds`]), never named here.

pub mod compile;
pub mod load;
pub mod read;
pub mod render;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use crate::kinds::environment::EnvironmentView;
use crate::kinds::{Kind, ResourceSpec};
pub use crate::syntax::{diag, template, yaml};
#[cfg(test)]
pub(crate) use compile::compile_text;
pub use compile::{compile, FileReader};
use diag::Diagnostics;
pub use load::{
    environment_dirs, list_yaml_files, load_dir, load_dir_with, load_environments,
    load_environments_with, parse_file, FsReader, LoadOptions,
};
pub use read::{Limits, ReadError};
use yaml::{Loc, SourceMap};

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "mlspace-gitops/v1";

/// Errors of the manifest stage.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifests are invalid; every problem is listed.
    #[error("{} error(s) in the manifests", .0.error_count())]
    Invalid(Diagnostics),
    /// Loading was cancelled (the daemon is shutting down); nothing was decided.
    #[error("loading the manifests was cancelled")]
    Cancelled,
    /// The directory could not be read.
    #[error("cannot read manifests directory {path}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One desired resource, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// Its AWS name.
    pub name: String,
    /// Annotations (adopt, ...); not part of the render contract when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Top-level spec fields AWS keeps (`metadata.ignoreFields`); not rendered when empty.
    #[serde(rename = "ignoreFields", skip_serializing_if = "Vec::is_empty")]
    pub ignore_fields: Vec<String>,
    /// The resolved spec: placeholders replaced, files inlined, defaults applied, policy
    /// references turned into ARNs, Environment tags merged in. References to values AWS
    /// assigns (`{ref:KIND/NAME.ATTRIBUTE}`) stay as written; the planner fills them in.
    pub spec: ResourceSpec,
    /// The references the spec holds (each once), checked to name a resource of the
    /// manifests and one of its attributes.
    #[serde(skip)]
    pub refs: Vec<crate::syntax::refs::Ref>,
    /// Where the document starts.
    #[serde(skip)]
    pub source: Option<Loc>,
}

impl Resource {
    /// The spec as JSON, as rendered.
    pub fn spec_value(&self) -> Value {
        serde_json::to_value(&self.spec).expect("specs are plain data")
    }
}

/// What the manifests say the account should hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredState {
    /// The Environment.
    pub environment: EnvironmentView,
    /// The resources, sorted by kind then name.
    pub resources: Vec<Resource>,
}

/// A valid manifest set and its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The desired state.
    pub desired: DesiredState,
    /// Warnings (never fatal).
    pub warnings: Diagnostics,
}

/// One parsed YAML document with where it came from.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    /// The manifest file.
    pub file: Arc<Path>,
    /// Its content.
    pub value: Value,
    /// Its positions.
    pub map: SourceMap,
}
