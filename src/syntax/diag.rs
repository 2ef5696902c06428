//! Diagnostics: every problem found in a manifest set, with file, line and column.
//!
//! Validation never stops at the first problem (as in vector's config loader): each
//! stage pushes into one [`Diagnostics`] and the caller decides whether errors fail.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use super::yaml::{Loc, SourceMap};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Fails validation.
    Error,
    /// Grants more than it seems to, or opens a path to more access; printed, fails only
    /// where asked to (`--lint-fail-on security-warning`).
    SecurityWarning,
    /// Printed, never fails.
    Warning,
    /// Works, but could be written more simply; printed, never fails.
    Suggestion,
}

impl Severity {
    /// The name printed, as in `error[unknown-action]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::SecurityWarning => "security-warning",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        }
    }
}

/// The annotation prefix that silences one check on one resource:
/// `metadata.annotations: {lint.mlspace-gitops/CHECK-ID: REASON}`.
pub const SILENCE_ANNOTATION: &str = "lint.mlspace-gitops/";

/// One problem in the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where; `None` only for set-wide problems with no single place (e.g. "no Environment").
    pub loc: Option<Loc>,
    /// Error or warning.
    pub severity: Severity,
    /// The check that found it, when it has an id (and can be silenced by it).
    pub check: Option<&'static str>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.check {
            Some(c) => format!("{}[{c}]", self.severity.as_str()),
            None => self.severity.as_str().to_string(),
        };
        // Names and values in messages come from the manifests: escaped, so that a
        // diagnostic is always one line and cannot forge another or drive a terminal.
        let message = escape_control(&self.message);
        match &self.loc {
            Some(l) if l.line == 0 => write!(
                f,
                "{}: {sev}: {message}",
                escape_control(&l.file.display().to_string())
            ),
            Some(l) => write!(
                f,
                "{}:{}:{}: {sev}: {message}",
                escape_control(&l.file.display().to_string()),
                l.line,
                l.col,
            ),
            None => write!(f, "{sev}: {message}"),
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
            check: None,
            message: message.into(),
        });
    }

    /// Record a finding of the check `check`.
    pub fn push_check(
        &mut self,
        severity: Severity,
        check: &'static str,
        loc: Option<Loc>,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            loc,
            severity,
            check: Some(check),
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

    /// How many were recorded (a mark for [`Diagnostics::silence_since`]).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Drop the diagnostics recorded since `mark` whose check is one of `silenced` (a
    /// resource's `lint.mlspace-gitops/CHECK-ID` annotations).
    pub fn silence_since(&mut self, mark: usize, silenced: &[&str]) {
        if silenced.is_empty() {
            return;
        }
        let mut i = 0;
        self.items.retain(|d| {
            let keep = i < mark || d.check.is_none_or(|c| !silenced.contains(&c));
            i += 1;
            keep
        });
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Iterate in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Show files under `root` relative to it, prefixed with `label` (`main:manifests/a.yaml`
    /// for a file of a revision written out under a temporary directory).
    pub fn relocate(&mut self, root: &std::path::Path, label: &str) {
        for d in &mut self.items {
            if let Some(loc) = &mut d.loc {
                if let Ok(rel) = loc.file.strip_prefix(root) {
                    let shown = std::path::PathBuf::from(format!("{label}{}", rel.display()));
                    loc.file = std::sync::Arc::from(shown.as_path());
                }
            }
        }
    }

    /// Counts by severity: errors, security warnings, warnings, suggestions.
    pub fn counts(&self) -> [usize; 4] {
        let mut n = [0; 4];
        for d in &self.items {
            n[d.severity as usize] += 1;
        }
        n
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

    /// A finding of the check `check` about the value at `pointer`.
    pub fn finding(
        &mut self,
        pointer: &str,
        severity: Severity,
        check: &'static str,
        message: impl fmt::Display,
    ) {
        let loc = self.loc(pointer);
        self.diags.push_check(
            severity,
            check,
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

/// `text` with every control character escaped (`\n`, `\t`, `\r`, `\u{1b}`, ...), and the
/// Unicode bidirectional overrides too: text from manifests, file names and remotes shown in
/// a diagnostic, a log line or `/status` can then neither forge another line nor reorder or
/// colour what a terminal shows. Text without such characters is returned as it is.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the bidirectional embedding, override and isolate
/// characters.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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

    #[test]
    fn control_characters_in_a_name_cannot_forge_a_second_diagnostic_line() {
        let mut d = Diagnostics::default();
        d.error(
            Some(Loc {
                file: Path::new("r\nx.yaml").into(),
                line: 3,
                col: 9,
            }),
            "metadata.name: `a\u{1b}[31mb\nforged.yaml:1:1: error: forged\u{202e}`",
        );
        let text = d.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            text,
            "r\\nx.yaml:3:9: error: metadata.name: `a\\u{1b}[31mb\\nforged.yaml:1:1: error: forged\\u{202e}`\n"
        );
        assert!(matches!(escape_control("plain: ünïcode"), Cow::Borrowed(_)));
        assert_eq!(escape_control("a\tb\u{7f}\u{85}"), "a\\tb\\u{7f}\\u{85}");
    }

    #[test]
    fn a_problem_of_a_whole_file_has_no_line() {
        let mut d = Diagnostics::default();
        d.error(
            Some(Loc::file(Path::new("m/x.yaml").into())),
            "not a regular file",
        );
        assert_eq!(d.to_string(), "m/x.yaml: error: not a regular file\n");
    }
}
