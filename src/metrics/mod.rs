//! Prometheus metrics of the daemon.
//!
//! Everything registers on a caller-supplied [`Registry`] (no global registry), so tests and
//! embedders get isolated sets. Metric names live in [`names`] and nowhere else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::core::Collector;
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::aws::{CallObserver, CallResult};
use crate::inventory::PruneRefused;
use crate::kinds::Kind;
use crate::plan::Action;
use crate::status::ResourceState;

/// Metric names: the single place they are spelled.
pub mod names {
    /// Reconcile attempts by `result` (success | failure | invalid | skipped).
    pub const RECONCILE_TOTAL: &str = "mlspace_gitops_reconcile_total";
    /// Wall time of a reconcile attempt.
    pub const RECONCILE_DURATION_SECONDS: &str = "mlspace_gitops_reconcile_duration_seconds";
    /// Managed resources by `kind` and `state`.
    pub const RESOURCES: &str = "mlspace_gitops_resources";
    /// Drift found by `kind` (AWS differed from git without a git change).
    pub const DRIFT_DETECTED_TOTAL: &str = "mlspace_gitops_drift_detected_total";
    /// Changes made to AWS by `kind`, `action` and `result`.
    pub const CHANGES_APPLIED_TOTAL: &str = "mlspace_gitops_changes_applied_total";
    /// AWS HTTP attempts by `service`, `operation` and `result`.
    pub const AWS_REQUESTS_TOTAL: &str = "mlspace_gitops_aws_requests_total";
    /// AWS HTTP attempt latency by `service`.
    pub const AWS_REQUEST_DURATION_SECONDS: &str = "mlspace_gitops_aws_request_duration_seconds";
    /// Source fetches by `result` (success | failure | unchanged).
    pub const SOURCE_FETCH_TOTAL: &str = "mlspace_gitops_source_fetch_total";
    /// The newest source revision, as a `revision` label on a constant 1.
    pub const SOURCE_REVISION_INFO: &str = "mlspace_gitops_source_revision_info";
    /// Unix time of the last successful reconcile.
    pub const LAST_SUCCESS_TIMESTAMP_SECONDS: &str =
        "mlspace_gitops_last_success_timestamp_seconds";
    /// The running `version`, as a label on a constant 1.
    pub const BUILD_INFO: &str = "mlspace_gitops_build_info";
    /// Validation errors in the last attempted revision.
    pub const VALIDATION_ERRORS: &str = "mlspace_gitops_validation_errors";
    /// 1 while this replica holds the reconcile lease of the `environment` (the
    /// Environment's `metadata.name`), 0 or absent otherwise; `replica` is this replica's
    /// id (the lease holder), so the series says who owns the Environment.
    pub const LEADER: &str = "mlspace_gitops_leader";
    /// Seconds since the last completed reconcile of `environment`, by whichever replica,
    /// as the state store says; exported by every replica for every Environment of its
    /// revision (before any reconcile: since this replica first saw the Environment).
    pub const ENVIRONMENT_LAST_RECONCILE_AGE_SECONDS: &str =
        "mlspace_gitops_environment_last_reconcile_age_seconds";
    /// This replica's `--resync` interval, in seconds (the stale-Environment alert compares
    /// ages with it).
    pub const RESYNC_INTERVAL_SECONDS: &str = "mlspace_gitops_resync_interval_seconds";
    /// Replicas with a live heartbeat in the state store, as this replica last read them.
    pub const REPLICAS: &str = "mlspace_gitops_replicas";
    /// Reconciles whose prune was refused, by `environment` and `reason` (mass_deletion:
    /// the revision would delete too much at once; inventory: the inventory was unreadable).
    pub const PRUNE_REFUSED_TOTAL: &str = "mlspace_gitops_prune_refused_total";
    /// Source revisions refused because their head commit failed signature verification
    /// (`run --verify-commits`), by `reason` (see [`super::COMMIT_VERIFICATION_REASONS`]).
    /// Counted once per refused revision.
    pub const COMMIT_VERIFICATION_FAILURES_TOTAL: &str =
        "mlspace_gitops_commit_verification_failures_total";
    /// 1 while the source's head commit is refused because its signature is not verified,
    /// by `reason` (one of them at 1 at most), 0 once a verified head arrives. What the
    /// alert reads: the counter above is counted once per commit, often before the first
    /// scrape of a replica that starts on an unverified head, where `increase()` cannot
    /// see it.
    pub const HEAD_COMMIT_UNVERIFIED: &str = "mlspace_gitops_head_commit_unverified";
    /// Lint findings of the last attempted revision that validated far enough to be
    /// linted, by `severity` (error | security-warning | warning | suggestion); silenced
    /// findings are not counted.
    pub const LINT_FINDINGS: &str = "mlspace_gitops_lint_findings";
    /// CloudTrail events read from an Environment's queues, by `environment` and `source`
    /// (aws.iam | aws.s3 | aws.dynamodb | aws.kms | other).
    pub const EVENTS_RECEIVED_TOTAL: &str = "mlspace_gitops_events_received_total";
    /// Events that led to no reconcile, by `environment`, `source` and `reason` (see
    /// [`super::EVENT_IGNORED_REASONS`]).
    pub const EVENTS_IGNORED_TOTAL: &str = "mlspace_gitops_events_ignored_total";
    /// Events that named managed resources and had them reconciled, by `environment` and
    /// `source`.
    pub const EVENTS_ACTED_TOTAL: &str = "mlspace_gitops_events_acted_total";
    /// Queue messages that are no event the daemon can read, by `environment`: left in the
    /// queue for its redrive policy, so one message counts once per receive.
    pub const EVENTS_UNPARSABLE_TOTAL: &str = "mlspace_gitops_events_unparsable_total";
    /// Targeted reconciles run for events, by `environment` and `result` (success |
    /// failure).
    pub const EVENT_RECONCILES_TOTAL: &str = "mlspace_gitops_event_reconciles_total";
    /// From an event's arrival in the queue (SQS's SentTimestamp) to the end of the
    /// reconcile it triggered, by `result` (repaired | reported | in_sync | failed).
    pub const EVENT_TO_REPAIR_SECONDS: &str = "mlspace_gitops_event_to_repair_seconds";
    /// 1 while the last read of an Environment's event `queue` succeeded, 0 while it fails,
    /// by `environment` and `queue` (its URL).
    pub const EVENT_QUEUE_READABLE: &str = "mlspace_gitops_event_queue_readable";
    /// Notifications by `sink` (its scheme and position among the `--notify` flags,
    /// `webhook-0`; never the URL), `event` (see [`crate::notify::EventKind::NAMES`]) and
    /// `result` (see [`super::NotificationResult`]).
    pub const NOTIFICATIONS_TOTAL: &str = "mlspace_gitops_notifications_total";
    /// 0 while the last notification to `sink` failed after its retries, 1 once one got
    /// through or before any was sent. What the alert reads: notifications are rare and
    /// deduplicated, and the counter's first failures often come before the first scrape.
    pub const NOTIFICATION_SINK_HEALTHY: &str = "mlspace_gitops_notification_sink_healthy";

    /// 1 while the `environment` is suspended (`mlspace-gitops suspend`), 0 otherwise; every
    /// replica reports it from the state store.
    pub const ENVIRONMENT_SUSPENDED: &str = "mlspace_gitops_environment_suspended";

    /// Every name above.
    pub const ALL: [&str; 30] = [
        RECONCILE_TOTAL,
        RECONCILE_DURATION_SECONDS,
        RESOURCES,
        DRIFT_DETECTED_TOTAL,
        CHANGES_APPLIED_TOTAL,
        AWS_REQUESTS_TOTAL,
        AWS_REQUEST_DURATION_SECONDS,
        SOURCE_FETCH_TOTAL,
        SOURCE_REVISION_INFO,
        LAST_SUCCESS_TIMESTAMP_SECONDS,
        BUILD_INFO,
        VALIDATION_ERRORS,
        LEADER,
        PRUNE_REFUSED_TOTAL,
        COMMIT_VERIFICATION_FAILURES_TOTAL,
        HEAD_COMMIT_UNVERIFIED,
        LINT_FINDINGS,
        EVENTS_RECEIVED_TOTAL,
        EVENTS_IGNORED_TOTAL,
        EVENTS_ACTED_TOTAL,
        EVENTS_UNPARSABLE_TOTAL,
        EVENT_RECONCILES_TOTAL,
        EVENT_TO_REPAIR_SECONDS,
        EVENT_QUEUE_READABLE,
        ENVIRONMENT_LAST_RECONCILE_AGE_SECONDS,
        RESYNC_INTERVAL_SECONDS,
        REPLICAS,
        NOTIFICATIONS_TOTAL,
        NOTIFICATION_SINK_HEALTHY,
        ENVIRONMENT_SUSPENDED,
    ];
}

/// How a notification to one sink ended, the `result` label of
/// [`names::NOTIFICATIONS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationResult {
    /// The receiver took it.
    Sent,
    /// Every attempt failed (error, non-2xx answer, timeout).
    Failed,
    /// The sink's queue was full: never attempted.
    Dropped,
    /// Over the sink's rate limit: never attempted.
    RateLimited,
}

impl NotificationResult {
    /// Every result.
    pub const ALL: [NotificationResult; 4] = [
        NotificationResult::Sent,
        NotificationResult::Failed,
        NotificationResult::Dropped,
        NotificationResult::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationResult::Sent => "sent",
            NotificationResult::Failed => "failed",
            NotificationResult::Dropped => "dropped",
            NotificationResult::RateLimited => "rate_limited",
        }
    }
}

/// The `source` label values of the event metrics: the managed services, and `other`.
pub const EVENT_SOURCES: [&str; 5] = ["aws.iam", "aws.s3", "aws.dynamodb", "aws.kms", "other"];

/// Every `reason` label value of [`names::EVENTS_IGNORED_TOTAL`].
pub const EVENT_IGNORED_REASONS: [&str; 7] = [
    "other_event",
    "read_only",
    "failed_call",
    "other_account",
    "own_principal",
    "ignored",
    "unmanaged",
];

/// The `source` label of an event of `source` (`None`: not one of the managed services).
fn source_label(source: Option<crate::events::Source>) -> &'static str {
    source.map_or(EVENT_SOURCES[4], crate::events::Source::as_str)
}

/// How the reconcile an event triggered ended for the resources it named, the `result`
/// label of [`names::EVENT_TO_REPAIR_SECONDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventResult {
    /// Nothing differed.
    InSync,
    /// A difference was repaired.
    Repaired,
    /// A difference was reported (detect mode).
    Reported,
    /// A change failed, waits for its retry, or could not be planned.
    Failed,
}

impl EventResult {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventResult::InSync => "in_sync",
            EventResult::Repaired => "repaired",
            EventResult::Reported => "reported",
            EventResult::Failed => "failed",
        }
    }
}

/// The `severity` label values of [`names::LINT_FINDINGS`], most severe first.
pub const LINT_SEVERITIES: [&str; 4] = ["error", "security-warning", "warning", "suggestion"];

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be built or registered (bad options, or a name already taken).
    #[error("registering metric {name}: {source}")]
    Register {
        /// The metric.
        name: &'static str,
        /// Why.
        source: prometheus::Error,
    },
}

/// Outcome of one reconcile attempt, the `result` label of [`names::RECONCILE_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Everything converged (or, in detect mode, was checked).
    Success,
    /// AWS or the plan failed.
    Failure,
    /// The revision did not validate; nothing was touched.
    Invalid,
    /// Nothing to do this time (e.g. a run was already in flight).
    Skipped,
}

impl ReconcileResult {
    /// All values, for pre-creating label sets.
    pub const ALL: [ReconcileResult; 4] = [
        ReconcileResult::Success,
        ReconcileResult::Failure,
        ReconcileResult::Invalid,
        ReconcileResult::Skipped,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Failure => "failure",
            ReconcileResult::Invalid => "invalid",
            ReconcileResult::Skipped => "skipped",
        }
    }
}

/// Outcome of one source fetch, the `result` label of [`names::SOURCE_FETCH_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A new revision arrived.
    Success,
    /// The source could not be read.
    Failure,
    /// The source answered with the revision already seen.
    Unchanged,
}

impl FetchResult {
    /// All values, for pre-creating label sets.
    pub const ALL: [FetchResult; 3] = [
        FetchResult::Success,
        FetchResult::Failure,
        FetchResult::Unchanged,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchResult::Success => "success",
            FetchResult::Failure => "failure",
            FetchResult::Unchanged => "unchanged",
        }
    }
}

/// Every `reason` label value of [`names::PRUNE_REFUSED_TOTAL`].
pub const PRUNE_REFUSED_REASONS: [&str; 3] = PruneRefused::REASONS;

/// Every `reason` label value of [`names::COMMIT_VERIFICATION_FAILURES_TOTAL`].
pub const COMMIT_VERIFICATION_REASONS: [&str; 8] = crate::source::VERIFY_REASONS;

/// The daemon's metrics. The fields are private: every update goes through a typed helper,
/// so label values come from enums and kinds, never from strings at call sites.
pub struct Metrics {
    /// See [`names::RECONCILE_TOTAL`].
    reconcile_total: IntCounterVec,
    /// See [`names::RECONCILE_DURATION_SECONDS`].
    reconcile_duration_seconds: Histogram,
    /// See [`names::RESOURCES`]; prefer [`Metrics::set_resource_counts`].
    resources: IntGaugeVec,
    /// See [`names::DRIFT_DETECTED_TOTAL`].
    drift_detected_total: IntCounterVec,
    /// See [`names::CHANGES_APPLIED_TOTAL`]; prefer [`Metrics::record_change`].
    changes_applied_total: IntCounterVec,
    /// See [`names::AWS_REQUESTS_TOTAL`]; fed through [`CallObserver`].
    aws_requests_total: IntCounterVec,
    /// See [`names::AWS_REQUEST_DURATION_SECONDS`]; fed through [`CallObserver`].
    aws_request_duration_seconds: HistogramVec,
    /// See [`names::SOURCE_FETCH_TOTAL`].
    source_fetch_total: IntCounterVec,
    /// See [`names::SOURCE_REVISION_INFO`]; use [`Metrics::set_revision`].
    source_revision_info: IntGaugeVec,
    /// See [`names::LAST_SUCCESS_TIMESTAMP_SECONDS`].
    last_success_timestamp_seconds: Gauge,
    /// See [`names::BUILD_INFO`].
    build_info: IntGaugeVec,
    /// See [`names::VALIDATION_ERRORS`].
    validation_errors: IntGauge,
    /// See [`names::LEADER`].
    leader: IntGaugeVec,
    /// See [`names::ENVIRONMENT_SUSPENDED`]; use [`Metrics::set_suspended`].
    environment_suspended: IntGaugeVec,
    /// See [`names::PRUNE_REFUSED_TOTAL`]; prefer [`Metrics::record_prune`].
    prune_refused_total: IntCounterVec,
    /// See [`names::COMMIT_VERIFICATION_FAILURES_TOTAL`].
    commit_verification_failures_total: IntCounterVec,
    /// See [`names::HEAD_COMMIT_UNVERIFIED`]; use [`Metrics::set_head_unverified`].
    head_commit_unverified: IntGaugeVec,
    /// See [`names::LINT_FINDINGS`]; use [`Metrics::set_lint_findings`].
    lint_findings: IntGaugeVec,
    /// See [`names::EVENTS_RECEIVED_TOTAL`].
    events_received_total: IntCounterVec,
    /// See [`names::EVENTS_IGNORED_TOTAL`].
    events_ignored_total: IntCounterVec,
    /// See [`names::EVENTS_ACTED_TOTAL`].
    events_acted_total: IntCounterVec,
    /// See [`names::EVENTS_UNPARSABLE_TOTAL`].
    events_unparsable_total: IntCounterVec,
    /// See [`names::EVENT_RECONCILES_TOTAL`].
    event_reconciles_total: IntCounterVec,
    /// See [`names::EVENT_TO_REPAIR_SECONDS`].
    event_to_repair_seconds: HistogramVec,
    /// See [`names::EVENT_QUEUE_READABLE`].
    event_queue_readable: IntGaugeVec,
    /// See [`names::ENVIRONMENT_LAST_RECONCILE_AGE_SECONDS`].
    environment_last_reconcile_age_seconds: IntGaugeVec,
    /// See [`names::RESYNC_INTERVAL_SECONDS`].
    resync_interval_seconds: IntGauge,
    /// See [`names::REPLICAS`].
    replicas: IntGauge,
    /// See [`names::NOTIFICATIONS_TOTAL`]; use [`Metrics::record_notification`].
    notifications_total: IntCounterVec,
    /// See [`names::NOTIFICATION_SINK_HEALTHY`].
    notification_sink_healthy: IntGaugeVec,
    /// Serializes the read-modify-write helpers so concurrent callers cannot leave, say,
    /// two revisions at 1.
    label_sets: Mutex<()>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The prometheus vec types have no Debug; the values are on /metrics anyway.
        f.write_str("Metrics { .. }")
    }
}

/// Reconciles take from a no-op check (tens of ms) to a cold full apply (minutes).
const RECONCILE_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Single AWS attempts: a few ms against an emulator to tens of seconds on a bad day.
const AWS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// From an event's arrival to its repair: a targeted reconcile takes tens of milliseconds
/// against an emulator; a queue backed up behind a long reconcile, minutes.
const EVENT_BUCKETS: [f64; 14] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 120.0,
];

/// Build a collector and register it, naming the metric in any error.
fn add<C: Collector + Clone + 'static>(
    reg: &Registry,
    name: &'static str,
    build: impl FnOnce() -> prometheus::Result<C>,
) -> Result<C, MetricsError> {
    let wrap = |source| MetricsError::Register { name, source };
    let c = build().map_err(wrap)?;
    reg.register(Box::new(c.clone())).map_err(wrap)?;
    Ok(c)
}

/// Create and register every metric on `reg`.
pub fn register(reg: &Registry) -> Result<Arc<Metrics>, MetricsError> {
    use names::*;
    let m = Metrics {
        reconcile_total: add(reg, RECONCILE_TOTAL, || {
            IntCounterVec::new(
                Opts::new(RECONCILE_TOTAL, "Reconcile attempts."),
                &["result"],
            )
        })?,
        reconcile_duration_seconds: add(reg, RECONCILE_DURATION_SECONDS, || {
            Histogram::with_opts(
                HistogramOpts::new(RECONCILE_DURATION_SECONDS, "Reconcile attempt wall time.")
                    .buckets(RECONCILE_BUCKETS.to_vec()),
            )
        })?,
        resources: add(reg, RESOURCES, || {
            IntGaugeVec::new(
                Opts::new(RESOURCES, "Managed resources by kind and state."),
                &["kind", "state"],
            )
        })?,
        drift_detected_total: add(reg, DRIFT_DETECTED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(DRIFT_DETECTED_TOTAL, "Resources found drifted from git."),
                &["kind"],
            )
        })?,
        changes_applied_total: add(reg, CHANGES_APPLIED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(CHANGES_APPLIED_TOTAL, "Changes made to AWS."),
                &["kind", "action", "result"],
            )
        })?,
        aws_requests_total: add(reg, AWS_REQUESTS_TOTAL, || {
            IntCounterVec::new(
                Opts::new(AWS_REQUESTS_TOTAL, "AWS HTTP attempts, retries included."),
                &["service", "operation", "result"],
            )
        })?,
        aws_request_duration_seconds: add(reg, AWS_REQUEST_DURATION_SECONDS, || {
            HistogramVec::new(
                HistogramOpts::new(AWS_REQUEST_DURATION_SECONDS, "AWS HTTP attempt latency.")
                    .buckets(AWS_BUCKETS.to_vec()),
                &["service"],
            )
        })?,
        source_fetch_total: add(reg, SOURCE_FETCH_TOTAL, || {
            IntCounterVec::new(
                Opts::new(SOURCE_FETCH_TOTAL, "Source fetches."),
                &["result"],
            )
        })?,
        source_revision_info: add(reg, SOURCE_REVISION_INFO, || {
            IntGaugeVec::new(
                Opts::new(SOURCE_REVISION_INFO, "Newest revision seen at the source."),
                &["revision"],
            )
        })?,
        last_success_timestamp_seconds: add(reg, LAST_SUCCESS_TIMESTAMP_SECONDS, || {
            Gauge::new(
                LAST_SUCCESS_TIMESTAMP_SECONDS,
                "Unix time of the last successful reconcile.",
            )
        })?,
        build_info: add(reg, BUILD_INFO, || {
            IntGaugeVec::new(Opts::new(BUILD_INFO, "Build information."), &["version"])
        })?,
        lint_findings: add(reg, LINT_FINDINGS, || {
            IntGaugeVec::new(
                Opts::new(
                    LINT_FINDINGS,
                    "Lint findings of the last revision linted, by severity (silenced ones left out).",
                ),
                &["severity"],
            )
        })?,
        validation_errors: add(reg, VALIDATION_ERRORS, || {
            IntGauge::new(
                VALIDATION_ERRORS,
                "Validation errors in the last attempted revision.",
            )
        })?,
        leader: add(reg, LEADER, || {
            IntGaugeVec::new(
                Opts::new(
                    LEADER,
                    "1 while this replica holds the environment's reconcile lease.",
                ),
                &["environment", "replica"],
            )
        })?,
        environment_suspended: add(reg, ENVIRONMENT_SUSPENDED, || {
            IntGaugeVec::new(
                Opts::new(
                    ENVIRONMENT_SUSPENDED,
                    "1 while the environment is suspended (not reconciled until resumed).",
                ),
                &["environment"],
            )
        })?,
        prune_refused_total: add(reg, PRUNE_REFUSED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    PRUNE_REFUSED_TOTAL,
                    "Reconciles whose prune was refused (mass deletion or unreadable inventory).",
                ),
                &["environment", "reason"],
            )
        })?,
        commit_verification_failures_total: add(reg, COMMIT_VERIFICATION_FAILURES_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    COMMIT_VERIFICATION_FAILURES_TOTAL,
                    "Source revisions refused because their head commit failed signature verification.",
                ),
                &["reason"],
            )
        })?,
        head_commit_unverified: add(reg, HEAD_COMMIT_UNVERIFIED, || {
            IntGaugeVec::new(
                Opts::new(
                    HEAD_COMMIT_UNVERIFIED,
                    "1 while the source's head commit is refused because its signature is not verified, by reason.",
                ),
                &["reason"],
            )
        })?,
        events_received_total: add(reg, EVENTS_RECEIVED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    EVENTS_RECEIVED_TOTAL,
                    "CloudTrail events read from the Environments' queues.",
                ),
                &["environment", "source"],
            )
        })?,
        events_ignored_total: add(reg, EVENTS_IGNORED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    EVENTS_IGNORED_TOTAL,
                    "Events that led to no reconcile, by reason.",
                ),
                &["environment", "source", "reason"],
            )
        })?,
        events_acted_total: add(reg, EVENTS_ACTED_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    EVENTS_ACTED_TOTAL,
                    "Events whose managed resources were reconciled.",
                ),
                &["environment", "source"],
            )
        })?,
        events_unparsable_total: add(reg, EVENTS_UNPARSABLE_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    EVENTS_UNPARSABLE_TOTAL,
                    "Queue messages that are no readable event (left for the queue's redrive policy), per receive.",
                ),
                &["environment"],
            )
        })?,
        event_reconciles_total: add(reg, EVENT_RECONCILES_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    EVENT_RECONCILES_TOTAL,
                    "Targeted reconciles run for events.",
                ),
                &["environment", "result"],
            )
        })?,
        event_to_repair_seconds: add(reg, EVENT_TO_REPAIR_SECONDS, || {
            HistogramVec::new(
                HistogramOpts::new(
                    EVENT_TO_REPAIR_SECONDS,
                    "From an event's arrival in the queue to the end of the reconcile it triggered.",
                )
                .buckets(EVENT_BUCKETS.to_vec()),
                &["result"],
            )
        })?,
        event_queue_readable: add(reg, EVENT_QUEUE_READABLE, || {
            IntGaugeVec::new(
                Opts::new(
                    EVENT_QUEUE_READABLE,
                    "1 while the last read of the event queue succeeded, 0 while it fails.",
                ),
                &["environment", "queue"],
            )
        })?,
        environment_last_reconcile_age_seconds: add(
            reg,
            ENVIRONMENT_LAST_RECONCILE_AGE_SECONDS,
            || {
                IntGaugeVec::new(
                    Opts::new(
                        ENVIRONMENT_LAST_RECONCILE_AGE_SECONDS,
                        "Seconds since the last completed reconcile of the environment, by any replica.",
                    ),
                    &["environment"],
                )
            },
        )?,
        resync_interval_seconds: add(reg, RESYNC_INTERVAL_SECONDS, || {
            IntGauge::new(
                RESYNC_INTERVAL_SECONDS,
                "The --resync interval, in seconds.",
            )
        })?,
        replicas: add(reg, REPLICAS, || {
            IntGauge::new(
                REPLICAS,
                "Replicas with a live heartbeat in the state store.",
            )
        })?,
        notifications_total: add(reg, NOTIFICATIONS_TOTAL, || {
            IntCounterVec::new(
                Opts::new(
                    NOTIFICATIONS_TOTAL,
                    "Notifications by sink, event and result (sent, failed, dropped, rate_limited).",
                ),
                &["sink", "event", "result"],
            )
        })?,
        notification_sink_healthy: add(reg, NOTIFICATION_SINK_HEALTHY, || {
            IntGaugeVec::new(
                Opts::new(
                    NOTIFICATION_SINK_HEALTHY,
                    "0 while the last notification to the sink failed, 1 otherwise.",
                ),
                &["sink"],
            )
        })?,
        label_sets: Mutex::new(()),
    };
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    // Series that exist from the start at 0 let `rate()`/`increase()` see the first event.
    for r in ReconcileResult::ALL {
        m.reconcile_total.with_label_values(&[r.as_str()]);
    }
    for r in FetchResult::ALL {
        m.source_fetch_total.with_label_values(&[r.as_str()]);
    }
    for r in COMMIT_VERIFICATION_REASONS {
        m.commit_verification_failures_total.with_label_values(&[r]);
    }
    m.set_head_unverified(None);
    m.set_lint_findings([0; 4]);
    Ok(Arc::new(m))
}

/// Render everything registered on `reg` in the Prometheus text format 0.0.4.
pub fn encode(reg: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&reg.gather(), &mut out) {
        // Only malformed families fail; serve what was rendered rather than nothing.
        tracing::warn!(error = %e, "encoding metrics");
    }
    out
}

/// Seconds since the Unix epoch, now.
fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The label value of a change action, `None` for actions that change nothing.
fn action_label(action: Action) -> Option<&'static str> {
    match action {
        Action::Create => Some("create"),
        Action::Update => Some("update"),
        Action::Delete => Some("delete"),
        Action::Forget => Some("forget"),
        Action::Conflict | Action::NoOp | Action::Skip | Action::Drift => None,
    }
}

impl Metrics {
    /// Every metric's name and label names, as registered (for checks of alerts and
    /// dashboards against what the daemon exports).
    pub fn descriptions(&self) -> Vec<(String, Vec<String>)> {
        let collectors: [&dyn Collector; 30] = [
            &self.reconcile_total,
            &self.reconcile_duration_seconds,
            &self.resources,
            &self.drift_detected_total,
            &self.changes_applied_total,
            &self.aws_requests_total,
            &self.aws_request_duration_seconds,
            &self.source_fetch_total,
            &self.source_revision_info,
            &self.last_success_timestamp_seconds,
            &self.build_info,
            &self.validation_errors,
            &self.leader,
            &self.prune_refused_total,
            &self.commit_verification_failures_total,
            &self.head_commit_unverified,
            &self.lint_findings,
            &self.events_received_total,
            &self.events_ignored_total,
            &self.events_acted_total,
            &self.events_unparsable_total,
            &self.event_reconciles_total,
            &self.event_to_repair_seconds,
            &self.event_queue_readable,
            &self.environment_last_reconcile_age_seconds,
            &self.resync_interval_seconds,
            &self.replicas,
            &self.notifications_total,
            &self.notification_sink_healthy,
            &self.environment_suspended,
        ];
        collectors
            .iter()
            .flat_map(|c| c.desc())
            .map(|d| (d.fq_name.clone(), d.variable_labels.clone()))
            .collect()
    }

    /// Count a reconcile attempt and, when it ran, its duration; a success also stamps
    /// [`names::LAST_SUCCESS_TIMESTAMP_SECONDS`].
    pub fn record_reconcile(&self, result: ReconcileResult, elapsed: Option<Duration>) {
        self.reconcile_total
            .with_label_values(&[result.as_str()])
            .inc();
        if let Some(elapsed) = elapsed {
            self.reconcile_duration_seconds
                .observe(elapsed.as_secs_f64());
        }
        if result == ReconcileResult::Success {
            self.last_success_timestamp_seconds.set(now_unix());
        }
    }

    /// Count an Environment's reconcile skipped because another replica holds its lease.
    pub fn record_skipped(&self) {
        self.record_reconcile(ReconcileResult::Skipped, None);
    }

    /// Whether this replica leads `environment`.
    pub fn set_leader(&self, environment: &str, replica: &str, leader: bool) {
        self.leader
            .with_label_values(&[environment, replica])
            .set(i64::from(leader));
    }

    /// An Environment that left the revision: its per-Environment gauges go away.
    pub fn forget_environment(&self, environment: &str, replica: &str) {
        let _ = self.leader.remove_label_values(&[environment, replica]);
        let _ = self
            .environment_last_reconcile_age_seconds
            .remove_label_values(&[environment]);
    }

    /// Seconds since `environment`'s last completed reconcile.
    pub fn set_last_reconcile_age(&self, environment: &str, age: Duration) {
        self.environment_last_reconcile_age_seconds
            .with_label_values(&[environment])
            .set(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
    }

    /// The `--resync` interval.
    pub fn set_resync_interval(&self, resync: Duration) {
        self.resync_interval_seconds
            .set(i64::try_from(resync.as_secs()).unwrap_or(i64::MAX));
    }

    /// Replicas alive in the state store.
    pub fn set_replicas(&self, n: usize) {
        self.replicas.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Whether `environment` is suspended.
    pub fn set_suspended(&self, environment: &str, suspended: bool) {
        self.environment_suspended
            .with_label_values(&[environment])
            .set(i64::from(suspended));
    }

    /// The lint findings of the last revision linted, by severity in [`LINT_SEVERITIES`]
    /// order (every severity is always present, so a finding that goes away reads 0).
    pub fn set_lint_findings(&self, counts: [usize; 4]) {
        for (sev, n) in LINT_SEVERITIES.iter().zip(counts) {
            self.lint_findings
                .with_label_values(&[sev])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The validation errors of the last attempted revision.
    pub fn set_validation_errors(&self, n: usize) {
        self.validation_errors
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Count a revision refused for its commit signature, by `reason` (one of
    /// [`COMMIT_VERIFICATION_REASONS`]).
    pub fn record_commit_verification_failure(&self, reason: &str) {
        self.commit_verification_failures_total
            .with_label_values(&[reason])
            .inc();
    }

    /// The source's head is refused for `reason`, or (`None`) verified or not checked.
    pub fn set_head_unverified(&self, reason: Option<&str>) {
        for r in COMMIT_VERIFICATION_REASONS {
            self.head_commit_unverified
                .with_label_values(&[r])
                .set(i64::from(Some(r) == reason));
        }
    }

    /// Count a source fetch.
    pub fn record_fetch(&self, result: FetchResult) {
        self.source_fetch_total
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// After an environment's prune decision: count a refusal by its reason. The series of
    /// every reason exist from the first call at 0, so `increase()` sees the first refusal.
    pub fn record_prune(&self, environment: &str, refused: Option<&PruneRefused>) {
        for r in PRUNE_REFUSED_REASONS {
            self.prune_refused_total
                .with_label_values(&[environment, r]);
        }
        if let Some(why) = refused {
            self.prune_refused_total
                .with_label_values(&[environment, why.reason()])
                .inc();
        }
    }

    /// Count one drifted resource of `kind`.
    pub fn record_drift(&self, kind: Kind) {
        self.drift_detected_total
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// Count one change made to AWS. Conflict and NoOp change nothing and are ignored.
    pub fn record_change(&self, kind: Kind, action: Action, succeeded: bool) {
        let Some(action) = action_label(action) else {
            return;
        };
        let result = if succeeded { "success" } else { "failure" };
        self.changes_applied_total
            .with_label_values(&[kind.as_str(), action, result])
            .inc();
    }

    /// An Environment's events are read from now on: its event series exist at 0 (so that
    /// `increase()` sees the first event).
    pub fn events_started(&self, environment: &str) {
        for source in EVENT_SOURCES {
            self.events_received_total
                .with_label_values(&[environment, source]);
            self.events_acted_total
                .with_label_values(&[environment, source]);
        }
        self.events_unparsable_total
            .with_label_values(&[environment]);
        for r in ["success", "failure"] {
            self.event_reconciles_total
                .with_label_values(&[environment, r]);
        }
    }

    /// Count an event read from a queue of `environment`.
    pub fn record_event_received(&self, environment: &str, source: Option<crate::events::Source>) {
        self.events_received_total
            .with_label_values(&[environment, source_label(source)])
            .inc();
    }

    /// Count an event that led to no reconcile.
    pub fn record_event_ignored(
        &self,
        environment: &str,
        source: Option<crate::events::Source>,
        reason: crate::events::Ignored,
    ) {
        self.events_ignored_total
            .with_label_values(&[environment, source_label(source), reason.as_str()])
            .inc();
    }

    /// Count an event whose managed resources are to be reconciled.
    pub fn record_event_acted(&self, environment: &str, source: Option<crate::events::Source>) {
        self.events_acted_total
            .with_label_values(&[environment, source_label(source)])
            .inc();
    }

    /// Count a queue message that is no readable event.
    pub fn record_event_unparsable(&self, environment: &str) {
        self.events_unparsable_total
            .with_label_values(&[environment])
            .inc();
    }

    /// Count a targeted reconcile run for events.
    pub fn record_event_reconcile(&self, environment: &str, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.event_reconciles_total
            .with_label_values(&[environment, result])
            .inc();
    }

    /// The time from an event's arrival in its queue to the end of its reconcile.
    pub fn observe_event_to_repair(&self, result: EventResult, elapsed: Duration) {
        self.event_to_repair_seconds
            .with_label_values(&[result.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// Whether the last read of an event queue succeeded.
    pub fn set_event_queue_readable(&self, environment: &str, queue: &str, readable: bool) {
        self.event_queue_readable
            .with_label_values(&[environment, queue])
            .set(i64::from(readable));
    }

    /// Count how a notification to `sink` ended.
    pub fn record_notification(
        &self,
        sink: &str,
        event: crate::notify::EventKind,
        result: NotificationResult,
    ) {
        self.notifications_total
            .with_label_values(&[sink, event.as_str(), result.as_str()])
            .inc();
        match result {
            NotificationResult::Sent => self.set_sink_healthy(sink, true),
            NotificationResult::Failed => self.set_sink_healthy(sink, false),
            NotificationResult::Dropped | NotificationResult::RateLimited => {}
        }
    }

    /// Whether the last notification to `sink` got through.
    fn set_sink_healthy(&self, sink: &str, healthy: bool) {
        self.notification_sink_healthy
            .with_label_values(&[sink])
            .set(i64::from(healthy));
    }

    /// A sink starts: its sent and failed series exist at 0 for every event, so that
    /// `increase()` sees the first failure.
    pub fn notifications_started(&self, sink: &str) {
        self.set_sink_healthy(sink, true);
        for e in crate::notify::EventKind::NAMES {
            for r in [NotificationResult::Sent, NotificationResult::Failed] {
                self.notifications_total
                    .with_label_values(&[sink, e, r.as_str()]);
            }
        }
    }

    /// An event queue no longer read (the Environment dropped it, or this replica stopped
    /// leading it): its gauge goes away.
    pub fn forget_event_queue(&self, environment: &str, queue: &str) {
        // Err only if never set, which is the goal.
        let _ = self
            .event_queue_readable
            .remove_label_values(&[environment, queue]);
    }

    /// Set the resource gauges to `counts`; label sets set before but absent now go to 0,
    /// so a state that emptied out reads 0 instead of its last value.
    pub fn set_resource_counts(&self, counts: &BTreeMap<(Kind, ResourceState), i64>) {
        let _guard = self.label_sets.lock().unwrap_or_else(|e| e.into_inner());
        let present: BTreeSet<(&str, &str)> = counts
            .keys()
            .map(|(k, s)| (k.as_str(), s.as_str()))
            .collect();
        for kv in label_values(&self.resources, &["kind", "state"]) {
            if !present.contains(&(kv[0].as_str(), kv[1].as_str())) {
                self.resources.with_label_values(&kv).set(0);
            }
        }
        for ((kind, state), n) in counts {
            self.resources
                .with_label_values(&[kind.as_str(), state.as_str()])
                .set(*n);
        }
    }

    /// Make `rev` the one revision at 1, removing every other revision's series.
    pub fn set_revision(&self, rev: &str) {
        let _guard = self.label_sets.lock().unwrap_or_else(|e| e.into_inner());
        for old in label_values(&self.source_revision_info, &["revision"]) {
            if old[0] != rev {
                // Err only if already gone, which is the goal.
                let _ = self.source_revision_info.remove_label_values(&old);
            }
        }
        self.source_revision_info.with_label_values(&[rev]).set(1);
    }
}

/// For every series in `vec`, the values of `labels`, in that order.
fn label_values(vec: &IntGaugeVec, labels: &[&str]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for family in vec.collect() {
        for metric in family.get_metric() {
            let pairs = metric.get_label();
            let value = |name: &&str| {
                pairs
                    .iter()
                    .find(|l| l.name() == *name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            };
            out.push(labels.iter().map(value).collect());
        }
    }
    out
}

impl CallObserver for Metrics {
    fn observe(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration) {
        self.aws_requests_total
            .with_label_values(&[service, operation, result.as_str()])
            .inc();
        self.aws_request_duration_seconds
            .with_label_values(&[service])
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (Registry, Arc<Metrics>) {
        let reg = Registry::new();
        let m = register(&reg).unwrap();
        (reg, m)
    }

    #[test]
    fn record_prune_counts_refusals_by_reason() {
        let (_reg, m) = fresh();
        m.record_prune("dev", None);
        let at = |r: &str| m.prune_refused_total.with_label_values(&["dev", r]).get();
        assert_eq!((at("mass_deletion"), at("inventory")), (0, 0));
        let mass = PruneRefused::MassDeletion {
            count: 9,
            managed: 10,
        };
        m.record_prune("dev", Some(&mass));
        m.record_prune("dev", Some(&mass));
        m.record_prune("dev", Some(&PruneRefused::Inventory("gone".into())));
        m.record_prune(
            "dev",
            Some(&PruneRefused::EmptyRevision {
                kept: vec!["Role r".into()],
            }),
        );
        assert_eq!(
            (at("mass_deletion"), at("inventory"), at("empty_revision")),
            (2, 1, 1)
        );
        assert_eq!(
            m.prune_refused_total.collect()[0].get_metric().len(),
            PRUNE_REFUSED_REASONS.len()
        );
    }

    #[test]
    fn event_label_values_are_the_events_modules_own() {
        let reasons: Vec<&str> = crate::events::Ignored::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        assert_eq!(reasons, EVENT_IGNORED_REASONS);
        let sources: Vec<&str> = crate::events::Source::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(["other"])
            .collect();
        assert_eq!(sources, EVENT_SOURCES);
        let (reg, m) = fresh();
        m.events_started("dev");
        m.record_event_received("dev", Some(crate::events::Source::Kms));
        m.record_event_ignored("dev", None, crate::events::Ignored::OtherEvent);
        m.set_event_queue_readable("dev", "https://q", false);
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&reg.gather())
            .unwrap();
        assert!(text.contains(
            "mlspace_gitops_events_received_total{environment=\"dev\",source=\"aws.kms\"} 1"
        ));
        assert!(text.contains(
            "mlspace_gitops_events_acted_total{environment=\"dev\",source=\"aws.iam\"} 0"
        ));
        assert!(text.contains("mlspace_gitops_events_ignored_total{environment=\"dev\",reason=\"other_event\",source=\"other\"} 1"));
        assert!(text.contains(
            "mlspace_gitops_event_queue_readable{environment=\"dev\",queue=\"https://q\"} 0"
        ));
        m.forget_event_queue("dev", "https://q");
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&reg.gather())
            .unwrap();
        assert!(!text.contains("mlspace_gitops_event_queue_readable{"));
    }

    #[test]
    fn set_revision_keeps_exactly_one() {
        let (_reg, m) = fresh();
        m.set_revision("aaa");
        m.set_revision("bbb");
        m.set_revision("bbb");
        let revs = label_values(&m.source_revision_info, &["revision"]);
        assert_eq!(revs, vec![vec!["bbb".to_string()]]);
        assert_eq!(m.source_revision_info.with_label_values(&["bbb"]).get(), 1);
    }

    #[test]
    fn set_resource_counts_zeroes_stale_label_sets() {
        let (_reg, m) = fresh();
        let mut counts = BTreeMap::new();
        counts.insert((Kind::Role, ResourceState::InSync), 3);
        counts.insert((Kind::Bucket, ResourceState::Drifted), 1);
        m.set_resource_counts(&counts);
        assert_eq!(
            m.resources.with_label_values(&["Bucket", "drifted"]).get(),
            1
        );

        counts.remove(&(Kind::Bucket, ResourceState::Drifted));
        counts.insert((Kind::Bucket, ResourceState::InSync), 1);
        m.set_resource_counts(&counts);
        assert_eq!(
            m.resources.with_label_values(&["Bucket", "drifted"]).get(),
            0
        );
        assert_eq!(
            m.resources.with_label_values(&["Bucket", "in_sync"]).get(),
            1
        );
        assert_eq!(m.resources.with_label_values(&["Role", "in_sync"]).get(), 3);

        m.set_resource_counts(&BTreeMap::new());
        let all = label_values(&m.resources, &["kind", "state"]);
        assert_eq!(all.len(), 3);
        for kv in all {
            assert_eq!(m.resources.with_label_values(&kv).get(), 0, "{kv:?}");
        }
    }

    #[test]
    fn call_observer_counts_and_times() {
        let (_reg, m) = fresh();
        let obs: Arc<dyn CallObserver> = m.clone();
        obs.observe("iam", "GetRole", CallResult::Ok, Duration::from_millis(20));
        obs.observe(
            "iam",
            "GetRole",
            CallResult::Throttled,
            Duration::from_millis(5),
        );
        obs.observe("iam", "GetRole", CallResult::Ok, Duration::from_millis(7));
        let get = |r: CallResult| {
            m.aws_requests_total
                .with_label_values(&["iam", "GetRole", r.as_str()])
                .get()
        };
        assert_eq!(get(CallResult::Ok), 2);
        assert_eq!(get(CallResult::Throttled), 1);
        assert_eq!(get(CallResult::ServerError), 0);
        let h = m.aws_request_duration_seconds.with_label_values(&["iam"]);
        assert_eq!(h.get_sample_count(), 3);
        assert!((h.get_sample_sum() - 0.032).abs() < 1e-9);
    }

    #[test]
    fn record_change_ignores_non_changes() {
        let (_reg, m) = fresh();
        m.record_change(Kind::Table, Action::Create, true);
        m.record_change(Kind::Table, Action::Delete, false);
        m.record_change(Kind::Table, Action::NoOp, true);
        m.record_change(Kind::Table, Action::Conflict, true);
        let families = m.changes_applied_total.collect();
        assert_eq!(families[0].get_metric().len(), 2);
        let v = |a: &str, r: &str| {
            m.changes_applied_total
                .with_label_values(&["Table", a, r])
                .get()
        };
        assert_eq!((v("create", "success"), v("delete", "failure")), (1, 1));
    }

    #[test]
    fn reconcile_success_stamps_time_and_build_info_is_set() {
        let (reg, m) = fresh();
        m.record_reconcile(ReconcileResult::Invalid, Some(Duration::from_millis(60)));
        assert_eq!(m.last_success_timestamp_seconds.get(), 0.0);
        m.record_reconcile(ReconcileResult::Success, Some(Duration::from_secs(2)));
        assert!(m.last_success_timestamp_seconds.get() > 1.6e9);
        assert_eq!(m.reconcile_duration_seconds.get_sample_count(), 2);
        let text = encode(&reg);
        let want = format!(
            "{}{{version=\"{}\"}} 1",
            names::BUILD_INFO,
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&want), "{text}");
    }

    #[test]
    fn registering_twice_on_one_registry_fails() {
        let (reg, _m) = fresh();
        let err = register(&reg).unwrap_err();
        assert!(err.to_string().contains(names::RECONCILE_TOTAL), "{err}");
    }
}
