//! Pieces shared by several kinds: metadata, tags, and the AWS name rules.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::syntax::diag::{DocCx, Severity, SILENCE_ANNOTATION};

/// Tag key → value.
pub type Tags = BTreeMap<String, String>;

/// The tag every resource the daemon creates carries; the daemon changes or deletes
/// nothing that lacks it (unless adopted).
pub const OWNERSHIP_TAG: &str = "mlspace-gitops:managed-by";
/// Value of [`OWNERSHIP_TAG`].
pub const OWNERSHIP_VALUE: &str = "mlspace-gitops";
/// Annotation that lets the daemon take over an existing resource without the ownership tag.
pub const ADOPT_ANNOTATION: &str = "mlspace-gitops/adopt";
/// Annotation `mlspace-gitops/deletion-policy: retain`: when the resource leaves the
/// manifests it is forgotten (ownership tag removed), never deleted.
pub const DELETION_POLICY_ANNOTATION: &str = "mlspace-gitops/deletion-policy";
/// Annotation `mlspace-gitops/reconcile: disabled | observe`: leave the resource alone, or
/// only report its drift ([`ReconcileMode`]).
pub const RECONCILE_ANNOTATION: &str = "mlspace-gitops/reconcile";

/// How far the daemon and `apply` may act on one resource (its [`RECONCILE_ANNOTATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReconcileMode {
    /// No annotation: observed, planned and written.
    #[default]
    Enabled,
    /// `disabled`: not planned and never written, deleted or pruned while annotated; its
    /// state is `suspended`.
    Disabled,
    /// `observe`: observed and its drift reported, never written.
    Observe,
}

impl ReconcileMode {
    /// The values the annotation takes.
    pub const VALUES: [&'static str; 2] = ["disabled", "observe"];

    /// The mode an annotation value names; `None` for anything else.
    pub fn parse(value: &str) -> Option<ReconcileMode> {
        match value {
            "disabled" => Some(ReconcileMode::Disabled),
            "observe" => Some(ReconcileMode::Observe),
            _ => None,
        }
    }

    /// The mode a resource's annotations ask for (an unknown value, refused when the
    /// manifests are compiled, reads as [`ReconcileMode::Disabled`]: the side that writes
    /// nothing).
    pub fn of(annotations: &BTreeMap<String, String>) -> ReconcileMode {
        match annotations.get(RECONCILE_ANNOTATION) {
            None => ReconcileMode::Enabled,
            Some(v) => ReconcileMode::parse(v).unwrap_or(ReconcileMode::Disabled),
        }
    }
}

/// `metadata` of every manifest document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Name of the resource in AWS (role, policy, bucket or table name). May contain placeholders.
    pub name: String,
    /// Free-form labels for people and tools; not sent to AWS.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Instructions to mlspace-gitops, e.g. `mlspace-gitops/adopt: "true"` or
    /// `mlspace-gitops/reconcile: observe`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Top-level spec fields whose value AWS keeps, e.g. `document`: neither drift nor a
    /// change; the manifest value is used only when the resource is created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_fields: Vec<String>,
}

impl Metadata {
    /// Whether the manifest asks to take over an existing, untagged resource.
    pub fn adopt(&self) -> bool {
        self.annotations.get(ADOPT_ANNOTATION).map(String::as_str) == Some("true")
    }
}

/// IAM's default path, `/`.
pub fn default_iam_path() -> String {
    "/".into()
}

/// Characters IAM allows in role, policy and instance profile names: `[\w+=,.@-]`.
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Check an IAM name (`max` is 64 for roles, 128 for policies and instance profiles).
pub fn check_iam_name(cx: &mut DocCx, pointer: &str, what: &str, name: &str, max: usize) {
    if name.is_empty() || name.len() > max {
        cx.error(
            pointer,
            format_args!(
                "{what} name must be 1 to {max} characters, got {}",
                name.len()
            ),
        );
    }
    if let Some(c) = name.chars().find(|c| !is_iam_name_char(*c)) {
        cx.error(pointer, format_args!("{what} name `{name}` has the character `{c}`; IAM allows letters, digits and _+=,.@-"));
    }
}

/// Check an IAM path: `/` or `/a/b/`, printable ASCII, at most 512 characters.
pub fn check_iam_path(cx: &mut DocCx, pointer: &str, path: &str) {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && !path.contains("//")
        && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if !ok {
        cx.error(pointer, format_args!("IAM path `{path}` must begin and end with `/`, have no empty segment, use printable ASCII and be at most 512 characters"));
    }
}

/// Check a description as IAM accepts it (at most 1000 characters, no control characters).
pub fn check_iam_description(cx: &mut DocCx, pointer: &str, d: &str) {
    if d.chars().count() > 1000 {
        cx.error(pointer, "description must be at most 1000 characters");
    }
    if d.chars().any(|c| c.is_control() && !"\t\n\r".contains(c)) {
        cx.error(pointer, "description has a control character");
    }
}

/// Check tags as every service here accepts them: at most 50 per resource (the ownership
/// tag included), keys 1..128 characters not starting with `aws:`, values up to 256.
pub fn check_tags(cx: &mut DocCx, pointer: &str, tags: &Tags, env_tags: &Tags) {
    for (k, v) in tags {
        let p = format!("{pointer}/{}", crate::syntax::yaml::escape_segment(k));
        check_tag(cx, &p, k, v);
    }
    let total = env_tags
        .keys()
        .chain(tags.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        + 1;
    if total > 50 {
        cx.error(
            pointer,
            format_args!(
                "{total} tags with the Environment's tags and the ownership tag; AWS allows 50"
            ),
        );
    }
}

/// Check one tag key and value.
pub fn check_tag(cx: &mut DocCx, pointer: &str, k: &str, v: &str) {
    if k.is_empty() || k.chars().count() > 128 {
        cx.key_error(pointer, "tag key must be 1 to 128 characters");
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        cx.key_error(
            pointer,
            format_args!("tag key `{k}` uses the reserved prefix `aws:`"),
        );
    }
    if k == OWNERSHIP_TAG {
        cx.key_error(
            pointer,
            format_args!("tag key `{k}` is reserved for mlspace-gitops"),
        );
    }
    if let Some(c) = k
        .chars()
        .chain(v.chars())
        .find(|c| !(c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(*c)))
    {
        cx.error(
            pointer,
            format_args!(
                "tag has the character `{c}`; AWS allows letters, digits, spaces and _.:/=+-@"
            ),
        );
    }
    if v.chars().count() > 256 {
        cx.error(pointer, "tag value must be at most 256 characters");
    }
}

/// Observed tags as desired tags (an ignored `tags` field): without the `aws:` tags, which
/// nobody can set, and which the tag diffs leave alone anyway.
pub fn settable_tags(observed: &Tags) -> Tags {
    observed
        .iter()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Merge the Environment's default tags with a resource's own (the resource's win).
pub fn merged_tags(env: &Tags, own: &Tags) -> Tags {
    let mut t = env.clone();
    t.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
    t
}

/// Lint a policy document found at `pointer` (structure as IAM checks it, then every
/// check of `docs/lint.md` that looks at one document) and report each finding at its own
/// position, under its check id, so that it can be silenced on the resource (see
/// [`crate::syntax::diag::SILENCE_ANNOTATION`]); structural errors cannot be.
pub fn check_policy(
    cx: &mut DocCx,
    pointer: &str,
    doc: &serde_json::Value,
    kind: mlspace_policy::PolicyKind,
) {
    for mut finding in mlspace_policy::lint(doc, kind) {
        let p = format!("{pointer}{}", finding.pointer);
        // The crate's messages start with the element's own path; ours prefixes the full one.
        const ELEMENTS: [&str; 8] = [
            "Statement",
            "Version",
            "Id",
            "Condition",
            "Principal",
            "NotPrincipal",
            "Action",
            "Resource",
        ];
        if let Some((first, rest)) = finding.message.split_once(' ') {
            if ELEMENTS.iter().any(|e| first.starts_with(e)) {
                finding.message = rest.to_string();
            }
        }
        report_finding(cx, &p, &finding);
    }
}

/// Report a lint finding at `pointer`: IAM's structural errors as plain errors (they cannot
/// be silenced), the rest under their check id with how to silence them.
pub fn report_finding(cx: &mut DocCx, pointer: &str, finding: &mlspace_policy::Finding) {
    if finding.check == mlspace_policy::lint::INVALID_STRUCTURE.id {
        cx.error(pointer, &finding.message);
        return;
    }
    cx.finding(
        pointer,
        severity(finding.severity),
        finding.check,
        format_args!(
            "{} (if this is meant, silence it for the resource with metadata.annotations `{SILENCE_ANNOTATION}{}: REASON`)",
            finding.message, finding.check
        ),
    );
}

/// A lint severity as a diagnostic's.
pub fn severity(s: mlspace_policy::LintSeverity) -> Severity {
    match s {
        mlspace_policy::LintSeverity::Error => Severity::Error,
        mlspace_policy::LintSeverity::SecurityWarning => Severity::SecurityWarning,
        mlspace_policy::LintSeverity::Warning => Severity::Warning,
        mlspace_policy::LintSeverity::Suggestion => Severity::Suggestion,
    }
}

/// Check a policy's size against an IAM quota (characters without white space).
pub fn check_policy_size(cx: &mut DocCx, pointer: &str, what: &str, len: usize, max: usize) {
    if len > max {
        cx.error(
            pointer,
            format_args!("{what} is {len} characters without white space; IAM allows {max}"),
        );
    }
}
