//! Diagnostics: every problem found in a manifest set, with file, line and column.
//!
//! Validation never stops at the first problem (as in vector's config loader): each
//! stage pushes into one [`Diagnostics`] and the caller decides whether errors fail.

use std::fmt;
use std::path::Path;

use super::yaml::{Loc, SourceMap};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails validation.
    Error,
    /// Printed, never fails.
    Warning,
}

/// One problem in the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where; `None` only for set-wide problems with no single place (e.g. "no Environment").
    pub loc: Option<Loc>,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.loc {
            Some(l) => write!(
                f,
                "{}:{}:{}: {sev}: {}",
                l.file.display(),
                l.line,
                l.col,
                self.message
            ),
            None => write!(f, "{sev}: {}", self.message),
        }
    }
}

/// All diagnostics of one run, in the order found (sorted before printing).
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Record a problem at a known position.
    pub fn push(&mut self, severity: Severity, loc: Option<Loc>, message: impl Into<String>) {
        self.items.push(Diagnostic {
            loc,
            severity,
            message: message.into(),
        });
    }

    /// Record an error at a known position.
    pub fn error(&mut self, loc: Option<Loc>, message: impl Into<String>) {
        self.push(Severity::Error, loc, message);
    }

    /// True when at least one error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// The diagnostics sorted by file, line, column.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by(|a, b| {
            let ka = a.loc.as_ref().map(|l| (l.file.clone(), l.line, l.col));
            let kb = b.loc.as_ref().map(|l| (l.file.clone(), l.line, l.col));
            ka.cmp(&kb).then(a.severity.cmp(&b.severity))
        });
        v
    }

    /// Move every diagnostic of `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Iterate in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.sorted() {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A document's diagnostics context: turns JSON pointers into positions.
pub struct DocCx<'a> {
    /// The document's positions.
    pub map: &'a SourceMap,
    /// The file, for documents whose map has no entry.
    pub file: &'a Path,
    /// Where diagnostics go.
    pub diags: &'a mut Diagnostics,
}

impl DocCx<'_> {
    fn loc(&self, pointer: &str) -> Option<Loc> {
        self.map.value(pointer).cloned().or_else(|| {
            Some(Loc {
                file: self.file.into(),
                line: 1,
                col: 1,
            })
        })
    }

    /// An error about the value at `pointer`; the message is prefixed with the field path.
    pub fn error(&mut self, pointer: &str, message: impl fmt::Display) {
        let loc = self.loc(pointer);
        self.diags
            .error(loc, format!("{}: {message}", field_path(pointer)));
    }

    /// A warning about the value at `pointer`.
    pub fn warning(&mut self, pointer: &str, message: impl fmt::Display) {
        let loc = self.loc(pointer);
        self.diags.push(
            Severity::Warning,
            loc,
            format!("{}: {message}", field_path(pointer)),
        );
    }

    /// An error about the key of the map entry at `pointer` (e.g. an unknown field).
    pub fn key_error(&mut self, pointer: &str, message: impl fmt::Display) {
        let loc = self.map.key(pointer).cloned().or_else(|| self.loc(pointer));
        self.diags
            .error(loc, format!("{}: {message}", field_path(pointer)));
    }
}

/// `/spec/managedPolicies/0` → `spec.managedPolicies[0]`, the form users read.
pub fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else if seg.contains(['.', ' ', ':', '/']) || seg.is_empty() {
            out.push_str(&format!("[\"{seg}\"]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_yaml() {
        assert_eq!(
            field_path("/spec/managedPolicies/0"),
            "spec.managedPolicies[0]"
        );
        assert_eq!(
            field_path("/metadata/annotations/mlspace-gitops~1adopt"),
            "metadata.annotations[\"mlspace-gitops/adopt\"]"
        );
        assert_eq!(field_path(""), "document");
    }
}
