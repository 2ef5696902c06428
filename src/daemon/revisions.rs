//! The source side of the daemon: fetch the source, refuse what is unsigned or invalid, and
//! keep the last good revision with the desired state of each of its Environments.
//!
//! A revision that fails validation, is over a limit, or whose head commit fails signature
//! verification (`--verify-commits`), is never applied: the last good revision stays in
//! force and the error is reported until a new revision arrives.
//!
//! Loading runs on a blocking thread with a cancel flag: the runtime stops waiting for it
//! on shutdown and the load stops at its next file.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::epoch_secs;
use crate::aws::DisplayChain;
use crate::manifest::diag::{escape_control, Severity};
use crate::manifest::{self, DesiredState, Limits, LoadOptions, ManifestError};
use crate::metrics::{FetchResult, Metrics, ReconcileResult};
use crate::notify::{self, Notice, Refusal};
use crate::source::{Revision, Source, SourceError, VerifyError};
use crate::status::{Readiness, RefusalReason, RefusedRevision, RevisionSummary, SharedStatus};

/// The refused-revisions entry of `rev` (or of a bare commit id).
fn refusal(
    id: &str,
    rev: Option<&Revision>,
    reason: RefusalReason,
    errors: Vec<String>,
) -> RefusedRevision {
    RefusedRevision {
        revision: RevisionSummary {
            id: id.to_string(),
            author: rev.and_then(|r| r.author.clone()),
            message: rev.and_then(|r| r.message.clone()),
        },
        at: epoch_secs(),
        reason,
        errors,
    }
}

/// The readiness scope of problems with the state directory (the git checkouts).
const STATE_DIR: &str = "state directory";

/// The last revision that validated, with the desired state of each of its Environments.
#[derive(Debug)]
pub struct Good {
    /// The revision.
    pub revision: Revision,
    /// (directory relative to the manifests path, desired state), sorted by directory.
    pub envs: Vec<(String, DesiredState)>,
}

impl Good {
    /// The region the DynamoDB state table is opened in: the first Environment's.
    pub fn store_region(&self) -> Option<&str> {
        self.envs
            .first()
            .map(|(_, d)| d.environment.region.as_str())
    }

    /// The desired state of Environment `name`.
    pub fn environment(&self, name: &str) -> Option<&DesiredState> {
        self.envs
            .iter()
            .map(|(_, d)| d)
            .find(|d| d.environment.name == name)
    }
}

/// The revisions seen, refused and in force.
pub struct Revisions {
    metrics: Arc<Metrics>,
    status: SharedStatus,
    readiness: Arc<Readiness>,
    /// The last revision that validated.
    pub good: Option<Good>,
    /// Revision id last loaded (valid or not): a failed one is retried only when it changes.
    last_seen: Option<String>,
    /// Revision id last refused for its signature: reported once, not at every poll. Never
    /// in `last_seen`, so it loads as soon as it verifies (a key added to the file).
    rejected: Option<String>,
    /// What a revision may hold.
    limits: Limits,
    /// The least severe lint finding that refuses a revision (errors always do).
    lint_fail_on: Severity,
    /// Notices of the revisions refused since the runtime last took them.
    pub refusals: Vec<Notice>,
}

impl Revisions {
    /// Nothing seen yet.
    pub fn new(metrics: Arc<Metrics>, status: SharedStatus, readiness: Arc<Readiness>) -> Self {
        Revisions {
            metrics,
            status,
            readiness,
            good: None,
            last_seen: None,
            rejected: None,
            limits: Limits::default(),
            lint_fail_on: Severity::Error,
            refusals: Vec::new(),
        }
    }

    /// Refuse revisions with a lint finding this severe or worse (`run --lint-fail-on`).
    pub fn with_lint_fail_on(mut self, severity: Severity) -> Self {
        self.lint_fail_on = severity;
        self
    }

    /// Load revisions within `limits`.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sync the source; on a new revision load it. True when a valid new revision arrived.
    /// `cancel` stops a load in progress (shutdown); nothing is then reported.
    pub async fn fetch(&mut self, source: &mut Source, cancel: &Arc<AtomicBool>) -> bool {
        let rev = match source.sync().await {
            Ok(r) => r,
            Err(SourceError::Unverified { commit, source }) => {
                self.reject(commit, &source);
                return false;
            }
            Err(SourceError::InvalidRevision { commit, message }) => {
                self.refuse(commit, &message);
                return false;
            }
            Err(e) => {
                let msg = escape_control(&DisplayChain(&e).to_string()).into_owned();
                if e.is_local() {
                    // Not the source's fault: a full disk or a read-only state directory
                    // does not go away by itself.
                    tracing::error!(error = %msg, "cannot sync the source: the state directory is unusable; will retry");
                    self.readiness.set_problem(STATE_DIR, Some(msg.clone()));
                } else {
                    tracing::warn!(error = %msg, "source unreachable; will retry");
                }
                self.metrics.record_fetch(FetchResult::Failure);
                self.status.write().unwrap().last_fetch_error = Some(msg);
                return false;
            }
        };
        self.readiness.set_problem(STATE_DIR, None);
        self.readiness.source_reached();
        self.metrics.set_head_unverified(None);
        self.metrics.record_fetch(if source.last_sync_fetched() {
            FetchResult::Success
        } else {
            FetchResult::Unchanged
        });
        self.metrics.set_revision(&rev.id);
        {
            let mut s = self.status.write().unwrap();
            s.last_fetch_at = Some(epoch_secs());
            s.last_fetch_error = None;
            s.source_revision = Some(rev.id.clone());
        }
        if self.last_seen.as_deref() == Some(rev.id.as_str()) {
            return false;
        }
        self.last_seen = Some(rev.id.clone());
        match self.load(rev, cancel).await {
            Some(valid) => valid,
            None => {
                // Cancelled: load it again next time, if there is one.
                self.last_seen = None;
                false
            }
        }
    }

    /// The source is at `commit`, which cannot be used (the manifests path is a link, a
    /// file is over the size limit): an invalid revision, reported once.
    fn refuse(&mut self, commit: String, message: &str) {
        self.readiness.source_reached();
        self.readiness.set_problem(STATE_DIR, None);
        self.metrics.set_revision(&commit);
        let new = self.last_seen.as_deref() != Some(commit.as_str());
        self.metrics.record_fetch(if new {
            FetchResult::Success
        } else {
            FetchResult::Unchanged
        });
        let still = self.in_force().to_string();
        let mut s = self.status.write().unwrap();
        s.last_fetch_at = Some(epoch_secs());
        s.last_fetch_error = None;
        s.source_revision = Some(commit.clone());
        if !new {
            return;
        }
        let message = escape_control(message);
        tracing::error!(revision = %commit, error = %message, still_applying = %still, "revision refused");
        self.metrics.set_validation_errors(1);
        self.metrics
            .record_reconcile(ReconcileResult::Invalid, None);
        s.last_error = Some(format!(
            "revision {commit} is invalid and was not applied; still applying {still}:\n{message}"
        ));
        s.last_attempted_revision = Some(commit.clone());
        s.refused(refusal(
            &commit,
            None,
            RefusalReason::Invalid,
            message.lines().map(str::to_string).collect(),
        ));
        drop(s);
        self.refused(&commit, Refusal::Invalid, vec![message.into_owned()]);
        self.last_seen = Some(commit);
    }

    /// Keep the notice of a refused revision for the runtime.
    fn refused(&mut self, revision: &str, why: Refusal, messages: Vec<String>) {
        let in_force = self.good.as_ref().map(|g| g.revision.id.clone());
        self.refusals.push(notify::refused(
            revision,
            why,
            messages,
            in_force.as_deref(),
        ));
    }

    /// The revision that validated last, if any.
    fn in_force(&self) -> &str {
        self.good
            .as_ref()
            .map(|g| g.revision.id.as_str())
            .unwrap_or("nothing")
    }

    /// The source is at `commit`, whose signature failed verification: report it (once per
    /// commit) and keep the last good revision.
    fn reject(&mut self, commit: String, why: &VerifyError) {
        self.readiness.source_reached();
        self.metrics.set_head_unverified(Some(why.reason()));
        let new = self.rejected.as_deref() != Some(commit.as_str());
        self.metrics.record_fetch(if new {
            FetchResult::Success
        } else {
            FetchResult::Unchanged
        });
        self.metrics.set_revision(&commit);
        let still = self.in_force().to_string();
        let mut s = self.status.write().unwrap();
        s.last_fetch_at = Some(epoch_secs());
        s.last_fetch_error = None;
        s.source_revision = Some(commit.clone());
        if !new {
            return;
        }
        tracing::error!(revision = %commit, reason = why.reason(), error = %DisplayChain(why), still_applying = %still, "revision refused: commit signature not verified");
        self.metrics
            .record_commit_verification_failure(why.reason());
        self.metrics
            .record_reconcile(ReconcileResult::Invalid, None);
        let why = DisplayChain(why);
        s.last_error = Some(if commit == still {
            // Its key was removed from the file after it was applied.
            format!("revision {commit}, in force, no longer verifies: {why}; it stays applied until a verified commit arrives")
        } else {
            format!("revision {commit} was not applied: its commit signature is not verified: {why}; still applying {still}")
        });
        s.last_rejected_revision = Some(commit.clone());
        s.refused(refusal(
            &commit,
            None,
            RefusalReason::Unsigned,
            vec![escape_control(&why.to_string()).into_owned()],
        ));
        // Keeps last_error from being cleared by reconciles of the last good revision.
        s.last_attempted_revision = Some(commit.clone());
        drop(s);
        self.refused(&commit, Refusal::Unsigned, vec![why.to_string()]);
        self.rejected = Some(commit);
    }

    /// Validate a revision on a blocking thread; keep it when valid, report it when not.
    /// `None` when cancelled.
    async fn load(&mut self, rev: Revision, cancel: &Arc<AtomicBool>) -> Option<bool> {
        let span = tracing::info_span!("load", revision = %rev.id);
        self.status.write().unwrap().last_attempted_revision = Some(rev.id.clone());
        let (dir, limits, flag) = (rev.manifests_dir.clone(), self.limits, cancel.clone());
        let job = tokio::task::spawn_blocking(move || {
            if dir.is_dir() {
                let opts = LoadOptions {
                    limits,
                    cancel: Some(&flag),
                };
                manifest::load_environments_with(std::slice::from_ref(&dir), &opts)
            } else {
                Err(ManifestError::Io {
                    path: dir,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the manifests directory does not exist at this revision",
                    ),
                })
            }
        });
        let result = match job.await {
            Ok(r) => r,
            Err(e) => Err(ManifestError::Io {
                path: rev.manifests_dir.clone(),
                source: std::io::Error::other(format!("the loading task failed: {e}")),
            }),
        };
        let _entered = span.enter();
        if matches!(result, Err(ManifestError::Cancelled)) {
            tracing::info!("loading cancelled");
            return None;
        }
        Some(self.loaded(rev, result))
    }

    /// Count and publish a valid revision's lint findings; refuse it (reported like an
    /// invalid one, the last good revision kept) when one is as severe as `--lint-fail-on`.
    fn lint_accepts(&mut self, rev: &Revision, findings: &manifest::diag::Diagnostics) -> bool {
        let counts = findings.counts();
        self.metrics.set_lint_findings(counts);
        let sorted = findings.sorted();
        self.status.write().unwrap().security_warnings = sorted
            .iter()
            .filter(|d| d.severity == Severity::SecurityWarning)
            .map(|d| d.to_string())
            .collect();
        let failing: Vec<String> = sorted
            .iter()
            .filter(|d| d.severity <= self.lint_fail_on)
            .map(|d| d.to_string())
            .collect();
        if failing.is_empty() {
            return true;
        }
        let still = self.in_force().to_string();
        for line in &failing {
            tracing::error!("{line}");
        }
        tracing::error!(revision = %rev.id, findings = failing.len(), fail_on = self.lint_fail_on.as_str(), still_applying = %still, "revision refused by lint");
        self.metrics.set_validation_errors(failing.len());
        self.metrics
            .record_reconcile(ReconcileResult::Invalid, None);
        let mut s = self.status.write().unwrap();
        s.last_error = Some(format!(
            "revision {} has {} lint finding(s) of severity {} or worse (--lint-fail-on) and was not applied; still applying {still}:\n{}",
            rev.id,
            failing.len(),
            self.lint_fail_on.as_str(),
            failing.join("\n")
        ));
        s.refused(refusal(
            &rev.id,
            Some(rev),
            RefusalReason::Lint,
            failing.clone(),
        ));
        drop(s);
        self.refused(&rev.id, Refusal::Lint, failing);
        false
    }

    /// Keep a revision that loaded, report one that did not.
    fn loaded(
        &mut self,
        rev: Revision,
        result: Result<Vec<(std::path::PathBuf, manifest::Loaded)>, ManifestError>,
    ) -> bool {
        match result {
            Ok(all) => {
                let mut findings = manifest::diag::Diagnostics::default();
                for (_, loaded) in &all {
                    findings.extend(loaded.warnings.clone());
                }
                if !self.lint_accepts(&rev, &findings) {
                    return false;
                }
                let mut envs = Vec::new();
                for (dir, loaded) in all {
                    for w in loaded.warnings.iter() {
                        tracing::warn!("{w}");
                    }
                    let rel = dir
                        .strip_prefix(&rev.manifests_dir)
                        .ok()
                        .filter(|r| !r.as_os_str().is_empty())
                        .map(|r| r.display().to_string())
                        .unwrap_or_else(|| ".".into());
                    envs.push((rel, loaded.desired));
                }
                self.metrics.set_validation_errors(0);
                tracing::info!(
                    environments = envs.len(),
                    resources = envs.iter().map(|(_, d)| d.resources.len()).sum::<usize>(),
                    author = rev.author.as_deref().unwrap_or(""),
                    message = rev.message.as_deref().unwrap_or(""),
                    "new revision is valid"
                );
                self.good = Some(Good {
                    revision: rev,
                    envs,
                });
                true
            }
            Err(e) => {
                let still = self.in_force().to_string();
                let lines: Vec<String> = match &e {
                    ManifestError::Invalid(d) => d.sorted().iter().map(|l| l.to_string()).collect(),
                    other => vec![escape_control(&DisplayChain(other).to_string()).into_owned()],
                };
                let (text, messages) = match &e {
                    ManifestError::Invalid(d) => {
                        for line in d.sorted() {
                            match line.severity {
                                Severity::Error => tracing::error!("{line}"),
                                Severity::SecurityWarning | Severity::Warning => {
                                    tracing::warn!("{line}")
                                }
                                Severity::Suggestion => tracing::info!("{line}"),
                            }
                        }
                        self.metrics.set_validation_errors(d.error_count());
                        (
                            format!(
                                "revision {} is invalid and was not applied; still applying {still}:\n{d}",
                                rev.id
                            ),
                            d.sorted()
                                .iter()
                                .filter(|l| l.severity == Severity::Error)
                                .map(|l| l.to_string())
                                .collect(),
                        )
                    }
                    other => {
                        let msg = escape_control(&DisplayChain(other).to_string()).into_owned();
                        tracing::error!(error = %msg, "cannot load the revision");
                        self.metrics.set_validation_errors(1);
                        (
                            format!(
                                "revision {} could not be loaded and was not applied: {msg}",
                                rev.id
                            ),
                            vec![msg],
                        )
                    }
                };
                self.refused(&rev.id, Refusal::Invalid, messages);
                self.metrics
                    .record_reconcile(ReconcileResult::Invalid, None);
                let mut s = self.status.write().unwrap();
                s.last_error = Some(text);
                s.refused(refusal(&rev.id, Some(&rev), RefusalReason::Invalid, lines));
                false
            }
        }
    }
}
