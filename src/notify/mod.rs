//! Notifications: what the daemon tells chat rooms, webhooks and SNS topics (`run --notify`).
//!
//! The pure half (this module, [`target`], [`limit`]) decides *what* is said:
//! - [`derive`] turns what a worker's run found ([`RunFacts`]) and what was said before about
//!   its Environment ([`EnvMemory`]) into [`Notice`]s, on transitions only: a revision
//!   applied once, a failure when its errors change, drift in detect mode when the drifted
//!   set changes, a refused prune when its reason changes; repairs each time they happen;
//! - [`refused`] and [`leadership`] make the notices of refused revisions and lease changes;
//! - [`target`] parses `--notify` URLs and builds each receiver's payload;
//! - [`limit`] deduplicates identical notices within a window and rate-limits each sink.
//!
//! The runtime half ([`dispatch`], `runtime` feature) sends them, off the reconcile path.

pub mod limit;
pub mod target;

#[cfg(feature = "runtime")]
pub mod dispatch;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plan::{Action, Kind};

/// What a notice is about; `--notify-events` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A revision was applied to an Environment (whole run, nothing failed).
    RevisionApplied,
    /// A reconcile of an Environment failed (or its errors changed).
    ReconcileFailed,
    /// Detect mode: AWS differs from the manifests (the set of drifted resources changed).
    DriftDetected,
    /// Apply mode: resources changed behind the daemon's back were put back.
    DriftRepaired,
    /// A revision was refused: invalid, unsigned, or refused by lint.
    RevisionRefused,
    /// Prune was refused (mass deletion, unreadable inventory).
    PruneRefused,
    /// This replica acquired or lost an Environment's lease.
    LeadershipChanged,
}

impl EventKind {
    /// Every kind, in the order of the docs.
    pub const ALL: [EventKind; 7] = [
        EventKind::RevisionApplied,
        EventKind::ReconcileFailed,
        EventKind::DriftDetected,
        EventKind::DriftRepaired,
        EventKind::RevisionRefused,
        EventKind::PruneRefused,
        EventKind::LeadershipChanged,
    ];

    /// Every name, as `--notify-events` and the metrics' `event` label spell them.
    pub const NAMES: [&'static str; 7] = [
        "revision_applied",
        "reconcile_failed",
        "drift_detected",
        "drift_repaired",
        "revision_refused",
        "prune_refused",
        "leadership_changed",
    ];

    /// The name (`revision_applied`).
    pub fn as_str(self) -> &'static str {
        Self::NAMES[Self::ALL.iter().position(|k| *k == self).unwrap_or(0)]
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        let i = Self::NAMES.iter().position(|n| *n == name.trim())?;
        Some(Self::ALL[i])
    }

    /// Parse a comma-separated `--notify-events` list (`all` or empty: every kind).
    pub fn parse_list(list: &str) -> Result<BTreeSet<EventKind>, String> {
        let mut out = BTreeSet::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Self::ALL);
                continue;
            }
            out.insert(Self::parse(part).ok_or_else(|| {
                format!(
                    "unknown event `{part}` (expected all or {})",
                    Self::NAMES.join(", ")
                )
            })?);
        }
        if out.is_empty() {
            out.extend(Self::ALL);
        }
        Ok(out)
    }
}

/// One notification, as the generic webhook and SNS receive it (JSON), and as the chat
/// payloads render it. Everything but the event and the summary is optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Notice {
    /// What happened.
    pub event: EventKind,
    /// The Environment (`metadata.name`); `None` for a refused revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The revision concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The revision's commit author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The revision's commit message (first line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A subtype: `invalid` / `unsigned` / `lint` (refused revision), `acquired` / `lost`
    /// (leadership), the prune refusal's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// One line saying what happened.
    pub summary: String,
    /// Changes (`create Role app`), resources (`Role app`) or error messages, one a line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Notice {
    fn new(event: EventKind, environment: Option<&str>, summary: String) -> Notice {
        Notice {
            event,
            environment: environment.map(str::to_string),
            revision: None,
            author: None,
            message: None,
            reason: None,
            summary,
            details: Vec::new(),
        }
    }

    /// What deduplication compares: everything (a notice has no timestamp).
    pub fn dedup_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// The revision a run applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionRef {
    /// Commit id or directory digest.
    pub id: String,
    /// Commit author.
    pub author: Option<String>,
    /// Commit message (first line).
    pub message: Option<String>,
}

/// One change of a run: `(kind, name, action)`.
pub type ChangeLine = (Kind, String, Action);

/// What one pipeline run of an Environment found, reduced to what notices need. The
/// worker fills it from its report; nothing here reaches AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// The Environment.
    pub environment: String,
    /// The revision.
    pub revision: RevisionRef,
    /// A whole run (`false`: targeted at the resources events named).
    pub whole: bool,
    /// Detect mode: nothing is applied; every planned change is drift.
    pub detect: bool,
    /// The worker had already applied this revision: what it planned is drift.
    pub already_applied: bool,
    /// Changes planned (actionable ones).
    pub planned: Vec<ChangeLine>,
    /// Apply mode: drift on resources annotated `mlspace-gitops/reconcile: observe`, reported
    /// and never repaired.
    pub observed: Vec<ChangeLine>,
    /// Changes applied successfully.
    pub applied: Vec<ChangeLine>,
    /// Every problem of the run, one a line (empty: it succeeded).
    pub problems: Vec<String>,
    /// Why prune was refused, and the reason's label.
    pub prune_refused: Option<(String, String)>,
    /// Changes held back for a later retry: the run is not finished.
    pub held: usize,
}

/// What was last said about an Environment, so that only transitions are notified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvMemory {
    /// The revision whose application was notified.
    pub applied: Option<String>,
    /// Changes of the revision in progress applied by earlier runs that did not finish.
    pub applying: Vec<ChangeLine>,
    /// The revision `applying` belongs to.
    pub applying_revision: Option<String>,
    /// The problems last notified (`None`: the last run succeeded).
    pub failing: Option<Vec<String>>,
    /// The drifted resources last notified (detect mode, or resources only observed).
    pub drift: BTreeSet<(Kind, String)>,
    /// The prune refusal last notified.
    pub prune_refused: Option<String>,
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::Forget => "forget",
        Action::Conflict => "conflict",
        Action::NoOp => "no-op",
        Action::Skip => "skip",
        Action::Drift => "drift",
    }
}

fn change_line(c: &ChangeLine) -> String {
    format!("{} {} {}", action_name(c.2), c.0, c.1)
}

/// `3 changes (1 create, 2 update)`.
fn count_line(changes: &[ChangeLine]) -> String {
    if changes.is_empty() {
        return "no change needed".into();
    }
    let mut counts: BTreeMap<Action, usize> = BTreeMap::new();
    for c in changes {
        *counts.entry(c.2).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(a, n)| format!("{n} {}", action_name(*a)))
        .collect();
    format!(
        "{} change{} ({})",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

/// The notices of one run, and what to remember for the next: see the module docs.
pub fn derive(prev: &EnvMemory, facts: &RunFacts) -> (EnvMemory, Vec<Notice>) {
    let env = facts.environment.as_str();
    let mut next = prev.clone();
    let mut out = Vec::new();
    let with_revision = |mut n: Notice| {
        n.revision = Some(facts.revision.id.clone());
        n.author = facts.revision.author.clone();
        n.message = facts.revision.message.clone();
        n
    };

    // Prune refused: once per reason, again after it cleared.
    let refusal = facts.prune_refused.as_ref().map(|(why, _)| why.clone());
    if let Some((why, reason)) = &facts.prune_refused {
        if prev.prune_refused.as_deref() != Some(why.as_str()) {
            let mut n = with_revision(Notice::new(
                EventKind::PruneRefused,
                Some(env),
                format!("{env}: prune refused ({reason})"),
            ));
            n.reason = Some(reason.clone());
            n.details = vec![why.clone()];
            out.push(n);
        }
    }
    if facts.whole {
        next.prune_refused = refusal;
    }

    // Drift left alone: in detect mode everything planned, in apply mode the resources only
    // observed; notified when the set changes.
    let (left, why) = if facts.detect {
        (&facts.planned, "detect mode")
    } else {
        (&facts.observed, "reconcile: observe")
    };
    {
        let drifted: BTreeSet<(Kind, String)> =
            left.iter().map(|(k, n, _)| (*k, n.clone())).collect();
        let changed = if facts.whole {
            drifted != prev.drift
        } else {
            !drifted.is_subset(&prev.drift)
        };
        if changed && !drifted.is_empty() {
            let mut n = with_revision(Notice::new(
                EventKind::DriftDetected,
                Some(env),
                format!(
                    "{env}: {} from the manifests ({why}: not repaired)",
                    if drifted.len() == 1 {
                        "1 resource differs".to_string()
                    } else {
                        format!("{} resources differ", drifted.len())
                    }
                ),
            ));
            n.details = left.iter().map(change_line).collect();
            out.push(n);
        }
        if facts.whole {
            next.drift = drifted;
        } else {
            next.drift.extend(drifted);
        }
    }
    if facts.detect {
        // Nothing applied.
    } else if facts.already_applied && !facts.applied.is_empty() {
        // Apply mode: changes applied for a revision already applied are repairs.
        let mut n = with_revision(Notice::new(
            EventKind::DriftRepaired,
            Some(env),
            format!(
                "{env}: drift repaired on {} resource{}",
                facts.applied.len(),
                if facts.applied.len() == 1 { "" } else { "s" }
            ),
        ));
        n.details = facts.applied.iter().map(change_line).collect();
        out.push(n);
    } else if !facts.already_applied {
        // A revision being applied: its changes add up until a run finishes it.
        if next.applying_revision.as_deref() != Some(facts.revision.id.as_str()) {
            next.applying_revision = Some(facts.revision.id.clone());
            next.applying.clear();
        }
        next.applying.extend(facts.applied.iter().cloned());
    }

    // Failure: notified when the problems change; success forgets them.
    if facts.problems.is_empty() {
        if facts.whole {
            next.failing = None;
        }
    } else if prev.failing.as_ref() != Some(&facts.problems) {
        let mut n = with_revision(Notice::new(
            EventKind::ReconcileFailed,
            Some(env),
            format!(
                "{env}: reconcile failed ({} problem{})",
                facts.problems.len(),
                if facts.problems.len() == 1 { "" } else { "s" }
            ),
        ));
        n.details = facts.problems.clone();
        out.push(n);
        next.failing = Some(facts.problems.clone());
    }

    // Applied: the first whole run of a revision that finished without problems.
    let finished = facts.whole && facts.problems.is_empty() && facts.held == 0;
    if finished && !facts.detect && prev.applied.as_deref() != Some(facts.revision.id.as_str()) {
        let changes = if next.applying_revision.as_deref() == Some(facts.revision.id.as_str()) {
            std::mem::take(&mut next.applying)
        } else {
            facts.applied.clone()
        };
        let mut n = with_revision(Notice::new(
            EventKind::RevisionApplied,
            Some(env),
            format!(
                "{env}: revision {} applied, {}",
                short(&facts.revision.id),
                count_line(&changes)
            ),
        ));
        n.details = changes.iter().map(change_line).collect();
        // Applied first, then whatever else the run said.
        out.insert(0, n);
        next.applied = Some(facts.revision.id.clone());
        next.applying_revision = None;
        next.applying.clear();
    }
    (next, out)
}

/// The first 12 characters of a commit id (a directory digest is shown whole).
fn short(id: &str) -> &str {
    if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// Why a revision was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It does not validate (or cannot be loaded, or is over a limit).
    Invalid,
    /// Its head commit's signature is not verified (`--verify-commits`).
    Unsigned,
    /// A lint finding as severe as `--lint-fail-on`.
    Lint,
}

impl Refusal {
    /// The notice's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Unsigned => "unsigned",
            Refusal::Lint => "lint",
        }
    }
}

/// The notice of a refused revision; `messages` are the diagnostics, one a line, and
/// `in_force` the revision still applied.
pub fn refused(
    revision: &str,
    why: Refusal,
    messages: Vec<String>,
    in_force: Option<&str>,
) -> Notice {
    let mut n = Notice::new(
        EventKind::RevisionRefused,
        None,
        format!(
            "revision {} refused ({}); still applying {}",
            short(revision),
            why.as_str(),
            in_force.map_or("nothing", short)
        ),
    );
    n.revision = Some(revision.to_string());
    n.reason = Some(why.as_str().into());
    n.details = messages;
    n
}

/// The notice of a lease change of `environment` by this replica (`holder`), or `None`
/// when nothing changed.
pub fn leadership(environment: &str, holder: &str, was: bool, is: bool) -> Option<Notice> {
    if was == is {
        return None;
    }
    let (reason, verb) = if is {
        ("acquired", "now reconciles")
    } else {
        ("lost", "no longer reconciles")
    };
    let mut n = Notice::new(
        EventKind::LeadershipChanged,
        Some(environment),
        format!("{environment}: replica {holder} {verb} it (lease {reason})"),
    );
    n.reason = Some(reason.into());
    Some(n)
}

#[cfg(test)]
mod tests;
