//! The difference between two revisions' desired states, as a reviewer needs it: each
//! resource added, changed or removed with the fields that differ, the access each change
//! adds and removes, and whether the change widens access. No AWS is read: this is what the
//! manifests say, not what an apply would do to the account (that is `plan`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::access::{resource_access, AccessSummary, Side};
use crate::kinds::{FieldChange, Kind, Place, ResourceId};
use crate::manifest::diag::{Diagnostic, Diagnostics};
use crate::manifest::{DesiredState, Resource};
use crate::plan::{Action, Change};

/// Counts of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// Resources only the head has.
    pub added: usize,
    /// Resources both have, with different specs or metadata.
    pub changed: usize,
    /// Resources only the base has.
    pub removed: usize,
}

/// Two revisions of one Environment compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredDiff {
    /// The Environment's name (the head's).
    pub environment: String,
    /// Each resource that differs: `create` (added), `update` (changed), `delete` (removed),
    /// with its fields and access delta. The Environment itself appears as kind
    /// `Environment` when its settings changed.
    pub changes: Vec<Change>,
    /// Counts.
    pub summary: DiffSummary,
    /// Whether the change widens access; `None` when no resource that holds policies changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessSummary>,
}

impl DesiredDiff {
    /// Whether the revisions differ.
    pub fn differs(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether the change widens access.
    pub fn widens_access(&self) -> bool {
        self.access.as_ref().is_some_and(|a| a.widens)
    }
}

fn place(d: &DesiredState) -> Place<'_> {
    Place {
        partition: &d.environment.partition,
        account: &d.environment.account,
        region: &d.environment.region,
    }
}

fn side(d: &DesiredState) -> Side<'_> {
    Side::of_specs(
        d.resources
            .iter()
            .map(|r| (r.kind, r.name.as_str(), &r.spec)),
        place(d),
    )
}

/// Compare the desired state of `base` with `head`.
pub fn diff(base: &DesiredState, head: &DesiredState) -> DesiredDiff {
    let index = |d: &DesiredState| -> BTreeMap<ResourceId, usize> {
        d.resources
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.kind, r.name.clone()), i))
            .collect()
    };
    let (b, h) = (index(base), index(head));
    let ids: BTreeSet<&ResourceId> = b.keys().chain(h.keys()).collect();
    let (old, new) = (side(base), side(head));
    let mut changes = Vec::new();
    let mut summary = DiffSummary::default();

    let env_fields = fields(
        "spec",
        Some(&serde_json::to_value(&base.environment).unwrap_or_default()),
        Some(&serde_json::to_value(&head.environment).unwrap_or_default()),
    );
    if !env_fields.is_empty() {
        summary.changed += 1;
        changes.push(change(
            Kind::Environment,
            &head.environment.name,
            Action::Update,
            env_fields,
        ));
    }

    let mut touched = false;
    for id in ids {
        let (was, now) = (
            b.get(id).map(|i| &base.resources[*i]),
            h.get(id).map(|i| &head.resources[*i]),
        );
        let (action, fs) = match (was, now) {
            (None, Some(n)) => {
                summary.added += 1;
                (Action::Create, fields("spec", None, Some(&n.spec_value())))
            }
            (Some(_), None) => {
                summary.removed += 1;
                (Action::Delete, Vec::new())
            }
            (Some(w), Some(n)) => {
                let fs = resource_fields(w, n);
                if fs.is_empty() {
                    continue;
                }
                summary.changed += 1;
                (Action::Update, fs)
            }
            (None, None) => continue,
        };
        let mut c = change(id.0, &id.1, action, fs);
        if old.resources.contains_key(id) || new.resources.contains_key(id) {
            touched = true;
            c.access = resource_access(id, &old, &new);
        }
        changes.push(c);
    }
    let access = touched.then(|| AccessSummary::of(changes.iter().flat_map(|c| &c.access)));
    DesiredDiff {
        environment: head.environment.name.clone(),
        changes,
        summary,
        access,
    }
}

fn change(kind: Kind, name: &str, action: Action, fields: Vec<FieldChange>) -> Change {
    Change {
        kind,
        name: name.to_string(),
        action,
        fields,
        reason: None,
        access: Vec::new(),
        steps: Vec::new(),
        depends_on: Vec::new(),
    }
}

/// The fields of two versions of a resource that differ: its spec, and the metadata that
/// changes what the daemon does (annotations, `ignoreFields`).
fn resource_fields(was: &Resource, now: &Resource) -> Vec<FieldChange> {
    let mut out = fields("spec", Some(&was.spec_value()), Some(&now.spec_value()));
    let ann = |r: &Resource| serde_json::to_value(&r.annotations).unwrap_or_default();
    out.extend(fields(
        "metadata.annotations",
        Some(&ann(was)),
        Some(&ann(now)),
    ));
    if was.ignore_fields != now.ignore_fields {
        out.push(FieldChange::new(
            "metadata.ignoreFields",
            Some(serde_json::json!(was.ignore_fields)),
            Some(serde_json::json!(now.ignore_fields)),
        ));
    }
    out
}

/// The leaves that differ between two values: objects are compared key by key (so a tag
/// or one inline policy shows on its own), lists by the elements added and removed,
/// anything else as a whole.
fn fields(path: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<FieldChange> {
    match (old, new) {
        (Some(Value::Object(o)), Some(Value::Object(n))) => {
            let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
            keys.into_iter()
                .flat_map(|k| fields(&format!("{path}.{k}"), o.get(k), n.get(k)))
                .collect()
        }
        (None, Some(Value::Object(n))) if path == "spec" => n
            .iter()
            .map(|(k, v)| FieldChange::new(format!("spec.{k}"), None, Some(v.clone())))
            .collect(),
        (o, n) if o == n => Vec::new(),
        // Lists show the elements added and removed (a statement, an index, a rule), unless
        // only their order changed.
        (Some(Value::Array(o)), Some(Value::Array(n))) => {
            let mut out: Vec<FieldChange> = o
                .iter()
                .enumerate()
                .filter(|(_, x)| !n.contains(x))
                .map(|(i, x)| FieldChange::new(format!("{path}[{i}]"), Some(x.clone()), None))
                .collect();
            out.extend(
                n.iter()
                    .enumerate()
                    .filter(|(_, x)| !o.contains(x))
                    .map(|(i, x)| FieldChange::new(format!("{path}[{i}]"), None, Some(x.clone()))),
            );
            if out.is_empty() {
                out.push(FieldChange::new(
                    path,
                    Some(Value::Array(o.clone())),
                    Some(Value::Array(n.clone())),
                ));
            }
            out
        }
        (o, n) => vec![FieldChange::new(path, o.cloned(), n.cloned())],
    }
}

/// The diagnostics of `head` that `base` does not have, compared by file, check and
/// message (a finding that only moved lines is not new). Files are compared as the
/// callers give them: relative to each revision's root.
pub fn new_findings<'a>(base: &Diagnostics, head: &'a Diagnostics) -> Vec<&'a Diagnostic> {
    type Key<'k> = (Option<&'k std::path::Path>, Option<&'k str>, &'k str);
    let key = |d: &'a Diagnostic| -> Key<'a> {
        (
            d.loc.as_ref().map(|l| &*l.file),
            d.check,
            d.message.as_str(),
        )
    };
    let seen: BTreeSet<(Option<&std::path::Path>, Option<&str>, &str)> = base
        .iter()
        .map(|d| {
            (
                d.loc.as_ref().map(|l| &*l.file),
                d.check,
                d.message.as_str(),
            )
        })
        .collect();
    head.sorted()
        .into_iter()
        .filter(|d| !seen.contains(&key(d)))
        .collect()
}

impl fmt::Display for DesiredDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "No differences in the desired state.");
        }
        for c in &self.changes {
            let what = match c.action {
                Action::Create => "is added",
                Action::Delete => "is removed",
                _ => "changes",
            };
            writeln!(f, "{} {} {} {what}", c.action.symbol(), c.kind, c.name)?;
            crate::plan::write_change_body(f, c, true)?;
            writeln!(f)?;
        }
        let s = &self.summary;
        writeln!(
            f,
            "Diff: {} added, {} changed, {} removed.",
            s.added, s.changed, s.removed
        )?;
        if let Some(a) = &self.access {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::compile_text;

    const ENV: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: t}\nspec: {region: us-east-1, account: \"123456789012\"}\n";

    fn state(docs: &str) -> DesiredState {
        compile_text(&format!("{ENV}---\n{docs}")).desired
    }

    #[test]
    fn added_changed_removed_with_access() {
        let base = state(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"logs:PutLogEvents\", Resource: \"*\"}]}\n  tags: {team: a}\n---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {name: gone}\nspec: {partitionKey: {name: id, type: S}}\n",
        );
        let head = state(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: [\"logs:PutLogEvents\", \"iam:PassRole\"], Resource: \"*\"}]}\n  tags: {team: b}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: new-bucket-123}\nspec: {versioning: true}\n",
        );
        let d = diff(&base, &head);
        assert_eq!(
            d.summary,
            DiffSummary {
                added: 1,
                changed: 1,
                removed: 1
            }
        );
        assert!(d.widens_access());
        let text = d.to_string();
        assert!(text.contains("~ ManagedPolicy p changes\n"), "{text}");
        assert!(
            text.contains("    ~ spec.tags.team: \"a\" → \"b\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    access (policy document, attached to nothing in the manifests)\n      + Allow iam:PassRole on *\n"),
            "{text}"
        );
        assert!(
            text.contains("+ Bucket new-bucket-123 is added\n    + spec.versioning: true\n"),
            "{text}"
        );
        assert!(text.contains("- Table gone is removed\n"), "{text}");
        assert!(text.ends_with("Diff: 1 added, 1 changed, 1 removed.\nAccess: WIDENS (1 grant(s) widen access, 0 narrow it)\n"), "{text}");
        // The same revision twice: nothing.
        assert!(!diff(&head, &head).differs());
    }

    #[test]
    fn equal_documents_written_differently_are_a_change_without_access() {
        let base = state("apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"arn:aws:s3:::b/*\"}]}\n");
        let head = state("apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: [\"s3:getobject\"], Resource: [\"arn:aws:s3:::b/*\"]}]}\n");
        let d = diff(&base, &head);
        assert_eq!(d.changes.len(), 1);
        assert!(d.changes[0].access.is_empty());
        assert!(!d.widens_access());
        assert_eq!(
            d.access.as_ref().unwrap().to_string(),
            "Access: unchanged (no grant added or removed)"
        );
    }
}
