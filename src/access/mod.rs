//! Access analysis across resources: what a role may do once its attached and inline
//! policies are taken together and capped by its permissions boundary (privilege-escalation
//! paths, reported by validation), and what access a plan or a change between two
//! revisions adds and removes (the access delta).
//!
//! Pure: it reads each kind's [`Holdings`] (the documents a spec or an observed resource
//! holds) and judges them with `mlspace-policy`. The same code serves the planner (AWS →
//! manifests) and `diff` (one revision's manifests → another's).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::kinds::{
    visit_resource_kinds, with_kind, HeldAs, Holdings, Kind, KindFn, Observed, Place, Registered,
    ResourceId, ResourceKind, ResourceSpec, ResourceVisitor,
};
use mlspace_policy::{
    access_delta, access_delta_set, attach_delta, detach_delta, escalation_paths, AccessDelta,
    Effect, Finding,
};

/// The access one change adds and removes, for one document, attachment or boundary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessChange {
    /// What changed: `trust policy`, `inline policy NAME`, `attach ARN`, `detach ARN`,
    /// `permissions boundary`, `policy document`, `bucket policy`.
    pub subject: String,
    /// Grants added and removed.
    #[serde(flatten)]
    pub delta: AccessDelta,
    /// Whether the change widens access: an Allow added, a Deny removed, a boundary lifted,
    /// or a document attached whose content is not known here (counted as widening, so that
    /// a gate errs on the safe side).
    pub widens: bool,
    /// What the grants cannot show: a document not known offline, a boundary set or lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl AccessChange {
    fn of(subject: String, delta: AccessDelta) -> Option<AccessChange> {
        (!delta.is_empty()).then(|| AccessChange {
            subject,
            widens: delta.widens(),
            delta,
            note: None,
        })
    }
}

/// The plan-level verdict on access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessSummary {
    /// Whether some change widens access (`plan --deny-widening` exits 3).
    pub widens: bool,
    /// Allows added plus Denies removed, over every change.
    pub grants_added: usize,
    /// Allows removed plus Denies added.
    pub grants_removed: usize,
    /// Changes whose access is not known offline and counted as widening.
    pub unknown: usize,
}

impl AccessSummary {
    /// Sum the changes' deltas.
    pub fn of<'a>(changes: impl IntoIterator<Item = &'a AccessChange>) -> AccessSummary {
        let mut s = AccessSummary::default();
        for c in changes {
            s.widens |= c.widens;
            if c.note.is_some() && c.delta.is_empty() && c.widens {
                s.unknown += 1;
            }
            for g in &c.delta.added {
                match g.effect {
                    Effect::Allow => s.grants_added += 1,
                    Effect::Deny => s.grants_removed += 1,
                }
            }
            for g in &c.delta.removed {
                match g.effect {
                    Effect::Allow => s.grants_removed += 1,
                    Effect::Deny => s.grants_added += 1,
                }
            }
        }
        s
    }
}

impl std::fmt::Display for AccessSummary {
    /// `Access: WIDENS (...)`, `Access: narrows only (...)` or `Access: unchanged (...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = format!(
            "{} grant(s) widen access, {} narrow it",
            self.grants_added, self.grants_removed
        );
        let unknown = match self.unknown {
            0 => String::new(),
            n => format!("; {n} change(s) whose access is not known offline, counted as widening"),
        };
        if self.widens {
            write!(f, "Access: WIDENS ({counts}{unknown})")
        } else if self.grants_removed > 0 {
            write!(f, "Access: narrows only ({counts})")
        } else {
            write!(f, "Access: unchanged (no grant added or removed)")
        }
    }
}

/// The holdings of one side (the manifests of a revision, or what AWS has), by resource,
/// with the managed policies' documents by ARN so that attachments and boundaries can be
/// read.
#[derive(Debug, Default)]
pub struct Side<'a> {
    /// Each resource that holds documents or names managed policies.
    pub resources: BTreeMap<ResourceId, Holdings<'a>>,
    /// Managed policy documents by ARN.
    pub managed: HashMap<String, &'a Value>,
    /// The ARN of each resource that holds something.
    pub arns: BTreeMap<ResourceId, String>,
}

impl<'a> Side<'a> {
    /// The holdings of resolved specs, whose ARNs are where `at` says.
    pub fn of_specs(
        specs: impl IntoIterator<Item = (Kind, &'a str, &'a ResourceSpec)>,
        at: Place,
    ) -> Side<'a> {
        let mut side = Side::default();
        for (kind, name, spec) in specs {
            let h = with_kind(kind, SpecHoldings(spec)).unwrap_or_default();
            side.add((kind, name.to_string()), h, || spec.arn(name, at));
        }
        side
    }

    /// The holdings of what AWS has.
    pub fn of_observed(observed: &'a Observed) -> Side<'a> {
        struct Each<'a, 'b> {
            observed: &'a Observed,
            side: &'b mut Side<'a>,
        }
        impl<'a> ResourceVisitor for Each<'a, '_> {
            fn visit<K: ResourceKind>(&mut self) {
                for (name, o) in K::observed(self.observed) {
                    let h = K::observed_holdings(o);
                    self.side
                        .add((K::KIND, name.clone()), h, || K::observed_arn(o));
                }
            }
        }
        let mut side = Side::default();
        visit_resource_kinds(&mut Each {
            observed,
            side: &mut side,
        });
        side
    }

    fn add(&mut self, id: ResourceId, h: Holdings<'a>, arn: impl FnOnce() -> Option<String>) {
        if h.documents.is_empty() && h.attached.is_empty() && h.boundary.is_none() {
            return;
        }
        if let Some(arn) = arn() {
            if let Some(d) = h.documents.iter().find(|d| d.held_as == HeldAs::Managed) {
                self.managed.insert(arn.clone(), d.document);
            }
            self.arns.insert(id.clone(), arn);
        }
        self.resources.insert(id, h);
    }

    /// Who uses the managed policy `arn` on this side: `role NAME` and `boundary of role NAME`.
    fn users(&self, arn: &str) -> Vec<String> {
        let mut out = Vec::new();
        for ((kind, name), h) in &self.resources {
            if h.attached.iter().any(|(a, _)| *a == arn) {
                out.push(format!("{kind} {name}"));
            }
            if h.boundary.as_ref().is_some_and(|(b, _)| *b == arn) {
                out.push(format!("boundary of {kind} {name}"));
            }
        }
        out
    }
}

/// A spec's holdings, through the registry.
struct SpecHoldings<'a>(&'a ResourceSpec);

impl<'a> KindFn<Holdings<'a>> for SpecHoldings<'a> {
    fn document<K: Registered>(self) -> Holdings<'a> {
        Holdings::default()
    }
    fn resource<K: ResourceKind>(self) -> Holdings<'a> {
        K::spec(self.0).map(K::holdings).unwrap_or_default()
    }
}

/// The access one resource's change adds and removes, from `old` (before) to `new`
/// (after). A managed policy's own content change is reported at the policy (with who
/// uses it), not again at each role that attaches it: a role's attachments are judged
/// with the documents as they are before.
pub fn resource_access<'a>(id: &ResourceId, old: &Side<'a>, new: &Side<'a>) -> Vec<AccessChange> {
    let empty = Holdings::default();
    let (o, n) = (
        old.resources.get(id).unwrap_or(&empty),
        new.resources.get(id).unwrap_or(&empty),
    );
    let mut out = Vec::new();
    let mut pointers: Vec<(&str, HeldAs, &str)> = Vec::new();
    for d in o.documents.iter().chain(&n.documents) {
        if !pointers.iter().any(|(p, _, _)| *p == d.pointer) {
            pointers.push((&d.pointer, d.held_as, &d.label));
        }
    }
    for (ptr, held_as, label) in pointers {
        let (before, after) = (doc_at(o, ptr), doc_at(n, ptr));
        let change = match held_as {
            HeldAs::Trust | HeldAs::Resource => {
                AccessChange::of(label.to_string(), access_delta(before, after))
            }
            HeldAs::Identity => {
                let others = identity_of(n, old, new, Some(ptr), None);
                let (mut was, mut now) = (others.clone(), others);
                was.extend(before);
                now.extend(after);
                AccessChange::of(label.to_string(), access_delta_set(&was, &now))
            }
            HeldAs::Managed => match (before, after) {
                (Some(b), Some(a)) => {
                    let arn = new.arns.get(id).or_else(|| old.arns.get(id));
                    let users = arn.map(|a| new.users(a)).unwrap_or_default();
                    let subject = if users.is_empty() {
                        format!("{label}, attached to nothing in the manifests")
                    } else {
                        format!("{label}, used by {}", users.join(", "))
                    };
                    AccessChange::of(subject, access_delta(Some(b), Some(a)))
                }
                _ => None,
            },
        };
        out.extend(change);
    }
    // Attachments.
    let attached =
        |h: &Holdings| -> Vec<String> { h.attached.iter().map(|(a, _)| a.to_string()).collect() };
    let (was, now) = (attached(o), attached(n));
    let known = |arn: &str| {
        old.managed
            .get(arn)
            .or_else(|| new.managed.get(arn))
            .copied()
    };
    for arn in now.iter().filter(|a| !was.contains(a)) {
        let others = identity_of(n, old, new, None, Some(arn));
        match known(arn) {
            Some(doc) => out.extend(AccessChange::of(
                format!("attach {arn}"),
                attach_delta(doc, &others),
            )),
            None => out.push(unknown(format!("attach {arn}"), arn, true)),
        }
    }
    for arn in was.iter().filter(|a| !now.contains(a)) {
        let others = identity_of(n, old, new, None, None);
        match known(arn) {
            Some(doc) => out.extend(AccessChange::of(
                format!("detach {arn}"),
                detach_delta(doc, &others),
            )),
            None => out.push(unknown(format!("detach {arn}"), arn, false)),
        }
    }
    // The boundary: the most the role may do.
    let (b0, b1) = (
        o.boundary.as_ref().map(|b| b.0),
        n.boundary.as_ref().map(|b| b.0),
    );
    match (b0, b1) {
        (Some(x), Some(y)) if x == y => {}
        (None, Some(y)) => out.push(AccessChange {
            subject: format!("permissions boundary {y}"),
            delta: AccessDelta::default(),
            widens: false,
            note: Some("set: the role may now do at most what the boundary allows".into()),
        }),
        (Some(x), None) => out.push(AccessChange {
            subject: format!("permissions boundary {x}"),
            delta: AccessDelta::default(),
            widens: true,
            note: Some("removed: the role's access is no longer capped".into()),
        }),
        (Some(x), Some(y)) => match (known(x), known(y)) {
            (Some(dx), Some(dy)) => out.extend(AccessChange::of(
                format!("permissions boundary {x} → {y} (the most the role may do)"),
                access_delta(Some(dx), Some(dy)),
            )),
            _ => out.push(unknown(
                format!("permissions boundary {x} → {y}"),
                if known(y).is_none() { y } else { x },
                true,
            )),
        },
        (None, None) => {}
    }
    out
}

/// The document held at `pointer`.
fn doc_at<'a>(h: &Holdings<'a>, pointer: &str) -> Option<&'a Value> {
    h.documents
        .iter()
        .find(|d| d.pointer == pointer)
        .map(|d| d.document)
}

/// What a role may do apart from one document: its inline policies and its attached
/// policies, in their content before the change (a policy's own change is reported at the
/// policy), but for `skip` (an inline policy's pointer) and `skip_arn`.
fn identity_of<'a>(
    h: &Holdings<'a>,
    old: &Side<'a>,
    new: &Side<'a>,
    skip: Option<&str>,
    skip_arn: Option<&str>,
) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = h
        .documents
        .iter()
        .filter(|d| d.held_as == HeldAs::Identity && Some(d.pointer.as_str()) != skip)
        .map(|d| d.document)
        .collect();
    for (arn, _) in &h.attached {
        if Some(*arn) == skip_arn {
            continue;
        }
        if let Some(doc) = old.managed.get(*arn).or_else(|| new.managed.get(*arn)) {
            v.push(doc);
        }
    }
    v
}

/// A change whose document is not known here: an AWS managed policy, or one neither the
/// manifests nor AWS's answer hold.
fn unknown(subject: String, arn: &str, widens: bool) -> AccessChange {
    let what = if arn.contains(":iam::aws:policy/") {
        "an AWS managed policy, whose document is not known offline"
    } else {
        "a policy neither in the manifests nor read from AWS"
    };
    AccessChange {
        subject,
        delta: AccessDelta::default(),
        widens,
        note: Some(if widens {
            format!("{what}; counted as widening")
        } else {
            what.to_string()
        }),
    }
}

/// A privilege-escalation path found on a role, placed at the document that grants its
/// first step.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFinding {
    /// The role.
    pub role: ResourceId,
    /// Pointer into the role's manifest: the inline policy's statement, or the
    /// `managedPolicies` list or the boundary for an attached policy.
    pub pointer: String,
    /// The finding; its message names each granting document and statement.
    pub finding: Finding,
}

/// The privilege-escalation paths each role's effective permissions open: its inline and
/// attached policies together, capped by its permissions boundary. Attached policies the
/// side does not hold (AWS managed ones) are not counted.
pub fn escalations(side: &Side) -> Vec<RoleFinding> {
    let mut out = Vec::new();
    for (id, h) in &side.resources {
        // Only principals that have identity policies: roles.
        let mut docs: Vec<(&Value, String, String)> = Vec::new();
        for d in h.documents.iter().filter(|d| d.held_as == HeldAs::Identity) {
            docs.push((d.document, d.label.clone(), d.pointer.clone()));
        }
        for (arn, ptr) in &h.attached {
            if let Some(doc) = side.managed.get(*arn) {
                docs.push((doc, format!("policy {}", arn_name(arn)), ptr.clone()));
            }
        }
        if docs.is_empty() {
            continue;
        }
        let boundary = h
            .boundary
            .as_ref()
            .and_then(|(b, _)| side.managed.get(*b).copied());
        let identity: Vec<&Value> = docs.iter().map(|d| d.0).collect();
        for e in escalation_paths(&identity, boundary) {
            let (first, mut finding) = e.finding();
            let (_, _, first_ptr) = &docs[first];
            // Inline statements are in this manifest; attached ones are pointed at by name.
            let pointer = if first_ptr.starts_with("/spec/inlinePolicies") {
                format!("{first_ptr}{}", finding.pointer)
            } else {
                first_ptr.clone()
            };
            finding.message = escalation_message(&e, &docs);
            out.push(RoleFinding {
                role: id.clone(),
                pointer,
                finding,
            });
        }
    }
    out
}

/// The last segment of a policy ARN.
fn arn_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// An escalation's message naming the documents by what they are to the reader.
fn escalation_message(e: &mlspace_policy::Escalation, docs: &[(&Value, String, String)]) -> String {
    let check = mlspace_policy::lint::check(e.check).map_or("", |c| c.summary);
    let parts: Vec<String> = e
        .grants
        .iter()
        .map(|g| {
            let on = match g.resources.as_slice() {
                [] => String::new(),
                [one] => format!(" on {one}"),
                [first, rest @ ..] => format!(" on {first} (+{} more)", rest.len()),
            };
            let doc = docs.get(g.document).map_or("?", |d| d.1.as_str());
            format!("{}{on} ({doc} {})", g.action, g.pointer)
        })
        .collect();
    format!(
        "privilege escalation: {}; granted by {}{}. Remove one of these grants, narrow its resources, or cap the role with a permissions boundary that does not allow it",
        check.trim_start_matches("Escalation: ").trim_end_matches('.'),
        parts.join(", "),
        if e.conditional {
            " (only under conditions: check that they hold for no untrusted caller)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests;
