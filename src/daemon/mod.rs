//! The daemon, in the shape of kube-runtime's controller:
//!
//! - the **runtime** (this module) owns the loop and its triggers: the source poll, the
//!   webhook, the directory watch, each Environment's requeue time, the lease renewal and
//!   shutdown; it runs the Environments that are due, concurrently, one pass at a time;
//! - the **worker** ([`worker`]) reconciles one Environment through the same pipeline as
//!   the CLI and returns what to do next ([`worker::Action`]);
//! - the **error policy** ([`error_policy`]) decides retries, apart from the worker;
//! - the **event listeners** ([`events`]) read the queues of the Environments this replica
//!   leads and hand the runtime the events about managed resources, which it reconciles
//!   alone (a targeted run), the resync staying as the backstop;
//! - the **source side** ([`revisions`]) keeps the last good revision and refuses the rest;
//! - the **notifier** ([`crate::notify`]) hears what passes, the lease and the source side
//!   found, as notices derived from each Environment's run and what was said before; it
//!   never holds up a pass;
//! - the **control API** (`control`, behind [`crate::http::control`]) suspends and resumes
//!   Environments (in the state store, so every replica and restart honours it) and makes
//!   them due now; requests are answered by the loop, between passes;
//! - `/status` is built from the workers' last reports ([`crate::status`]), and metrics go
//!   through the typed helpers of [`crate::metrics::Metrics`].

mod backoff;
mod control;
pub mod error_policy;
pub mod events;
pub mod revisions;
pub mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;

pub use backoff::Backoff;

use crate::aws::{AwsContext, AwsOptions, DisplayChain};
use crate::metrics::{Metrics, ReconcileResult};
use crate::notify::dispatch::{Notifier, NotifyConfig};
use crate::notify::EnvMemory;
use crate::pipeline::RevisionInfo;
use crate::plan::ResourceId;
use crate::secret::Secret;
use crate::source::{Source, SourceConfig};
use crate::state::{EnvironmentRecord, Lease, ReplicaRecord, StateStore};
use crate::status::{Readiness, SharedStatus, Status};
use revisions::Revisions;
use worker::{Action, Assigned, AttemptObserver, Outcome, Worker, WorkerCx};

/// Whether drift is repaired or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plan and apply (default).
    Apply,
    /// Plan and report; never write to AWS.
    Detect,
}

impl Mode {
    /// Name used in status and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Detect => "detect",
        }
    }
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Where manifests come from.
    pub source: SourceConfig,
    /// How often a git source is polled (jittered by up to 10%).
    pub interval: Duration,
    /// How often AWS is observed again to repair drift.
    pub resync: Duration,
    /// Apply or detect.
    pub mode: Mode,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Shared secret of `POST /hooks/git`.
    pub webhook_secret: Option<Secret>,
    /// Bearer token of the control API (`/api/v1/...`); `None`: control not enabled.
    pub control_token: Option<Secret>,
    /// Credentials the web UI and `/status` need (`--ui-auth-file`); `None`: open.
    pub ui_auth: Option<Arc<crate::ui::UiAuth>>,
    /// How long a reconcile in flight may run on after SIGTERM.
    pub grace: Duration,
    /// AWS connection.
    pub aws: AwsOptions,
    /// Changes applied at once.
    pub concurrency: usize,
    /// First retry delay of a failed resource.
    pub retry_base: Duration,
    /// Longest retry delay of a failed resource.
    pub retry_max: Duration,
    /// State store other than the file under the state dir (`dynamodb://TABLE`).
    pub state: Option<String>,
    /// Prune settings (the Environment's `spec.prune` also turns prune on).
    pub prune: crate::inventory::PruneOptions,
    /// How long a replica's lease on its Environment lasts without renewal; another replica
    /// takes over within this time after it dies.
    pub lease_ttl: Duration,
    /// This replica's identity in leases (unique: host, pid, random suffix).
    pub holder: String,
    /// Allowed-signers file: when set, only revisions whose head commit is SSH-signed by a
    /// key in it are applied (git sources only).
    pub allowed_signers: Option<PathBuf>,
    /// What a revision may hold (file and revision sizes, YAML documents and nodes).
    pub limits: crate::manifest::Limits,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: crate::http::HttpLimits,
    /// How long one step of the loop (a source sync and load, a reconcile pass) may last
    /// before `/healthz` fails.
    pub stuck_after: Duration,
    /// Bytes one git fetch may transfer.
    pub max_fetch_bytes: u64,
    /// The least severe lint finding that refuses a revision (`Error`: only errors do).
    pub lint_fail_on: crate::manifest::diag::Severity,
    /// The most Environments this replica takes (`None`: its even share, whatever it is).
    pub max_environments: Option<usize>,
    /// Where notices go (`--notify`), which ones, and the webhook signing secret.
    pub notify: NotifyConfig,
}

/// Errors that stop the daemon from starting (afterwards it reports and retries instead).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The HTTP listener could not bind.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered.
    #[error("cannot register metrics")]
    Metrics(#[from] crate::metrics::MetricsError),
    /// The source configuration is unusable.
    #[error("bad source configuration")]
    Source(#[from] crate::source::SourceError),
    /// The notification receivers are unusable.
    #[error("bad notification configuration")]
    Notify(#[from] crate::notify::dispatch::NotifyError),
}

/// How long the AWS attempts of an Environment (or of the state store) may go unanswered,
/// from the start of the first to the start of the latest, before the daemon reports not
/// ready: longer than one request's retries usually take to get through a burst of 5xx or
/// lost connections. An endpoint that never answers shows once attempts have timed out over
/// this span (with the default 30 s attempt timeout, after about 40 s).
const AWS_SILENCE: Duration = Duration::from_secs(10);

/// The readiness scope of the DynamoDB state table's attempts, and of a state store that
/// cannot be opened.
const STORE_SCOPE: &str = "state store";

/// Seconds since the epoch, for status.
pub(crate) fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `d` plus up to 10% so that replicas and restarts spread their polls.
fn jitter(d: Duration) -> Duration {
    d + d.mul_f64(rand::random_range(0.0..0.1))
}

/// The runtime's state between passes.
struct Runtime {
    cfg: DaemonConfig,
    metrics: Arc<Metrics>,
    status: SharedStatus,
    readiness: Arc<Readiness>,
    stop: Arc<AtomicBool>,
    revisions: Revisions,
    /// One worker per Environment of the good revision.
    workers: BTreeMap<String, Worker>,
    /// When each Environment is next due (absent: standing by, or never run).
    due: BTreeMap<String, Instant>,
    /// Leases of Environments that left the manifests, to give back.
    retired: Vec<Lease>,
    /// Clients of the daemon's own account (standard chain, no assumed role), for the
    /// DynamoDB state table.
    home: Option<AwsContext>,
    /// The inventory, opened on first use (a DynamoDB store needs the AWS clients).
    /// Shared with the keepalive that runs beside each pass.
    store: Option<Arc<dyn StateStore>>,
    /// The event listeners of the Environments this replica leads.
    listeners: events::Listeners,
    /// Events waiting for their targeted reconcile, by Environment.
    pending: BTreeMap<String, events::Pending>,
    /// Whether the replicas' membership has been read once (until then every replica
    /// takes what leases are free, as a lone one would).
    membership_read: bool,
    /// Lease ticks so far: an Environment led elsewhere has its suspension read every
    /// [`STANDBY_SUSPENSION_TICKS`]th only.
    ticks: u64,
    /// What the state store says of each Environment (holder, last completed reconcile).
    overview: BTreeMap<String, EnvironmentRecord>,
    /// When this replica first saw each Environment, ms since the epoch: the age of one
    /// never reconciled counts from there.
    first_seen: BTreeMap<String, u64>,
    /// Where notices go.
    notifier: Notifier,
    /// What was last notified about each Environment.
    notified: BTreeMap<String, EnvMemory>,
    /// Whether this replica led each Environment when last looked at.
    leading: BTreeMap<String, bool>,
    /// Leases the keepalive took beside a pass, for their workers when it ends.
    taken: Arc<std::sync::Mutex<Vec<Lease>>>,
}

/// This replica's heartbeat, alive for one lease time from now.
fn heartbeat(cfg: &DaemonConfig) -> ReplicaRecord {
    replica_record(&cfg.holder, cfg.max_environments, cfg.lease_ttl)
}

/// The heartbeat of replica `id`, capped at `cap` Environments, live for `ttl` from now.
fn replica_record(id: &str, cap: Option<usize>, ttl: Duration) -> ReplicaRecord {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    ReplicaRecord {
        id: id.to_string(),
        cap: cap.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        expires_at_ms: crate::state::now_ms().saturating_add(ttl_ms),
    }
}

/// The sharding's members from the replicas' heartbeats.
fn members(replicas: &[ReplicaRecord]) -> Vec<crate::shard::Member> {
    replicas
        .iter()
        .map(|r| crate::shard::Member {
            id: r.id.clone(),
            cap: r.cap.map(|c| c as usize),
        })
        .collect()
}

/// How long after another replica's lease expires this one tries for it: clocks of
/// replicas are close but not equal, and the store compares with its own reading.
const LEASE_RETRY_MARGIN: Duration = Duration::from_millis(50);

/// The time from now until `at_ms`, ms since the epoch (zero when past).
fn until_epoch_ms(at_ms: u64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(crate::state::now_ms()))
}

/// When the next lease tick runs: a third of the lease time after the last one began (or
/// after it ended, when it outlasted that), earlier when a lease of this replica's share
/// held by another replica expires first (`retry`).
fn next_lease_tick(
    began: Instant,
    ended: Instant,
    period: Duration,
    retry: Option<Instant>,
) -> Instant {
    let regular = if began + period > ended {
        began + period
    } else {
        ended + period
    };
    retry.map_or(regular, |r| r.max(ended).min(regular))
}

/// The owner reads an Environment's suspension at every lease tick (and before every run);
/// the other replicas, which only show it, every this many ticks: with every replica reading
/// every Environment's at every tick, those reads would be the state table's largest load
/// (replicas × Environments every third of the lease time).
const STANDBY_SUSPENSION_TICKS: u64 = 6;

/// How long queued notices may still go out at shutdown (within the grace period).
const NOTIFY_DRAIN: Duration = Duration::from_secs(5);

/// Run the daemon until `shutdown` resolves. It never exits because AWS or the source is
/// unreachable: failures are reported and retried.
pub async fn run(
    cfg: DaemonConfig,
    registry: prometheus::Registry,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let metrics = crate::metrics::register(&registry)?;
    let notifier = Notifier::start(cfg.notify.clone(), &cfg.aws, metrics.clone()).await?;
    let mut source = Source::new(cfg.source.clone())?;
    source.set_limits(cfg.limits);
    source.set_max_fetch_bytes(cfg.max_fetch_bytes);
    if let Some(file) = &cfg.allowed_signers {
        source.verify_commits(file.clone())?;
    }
    let status: SharedStatus = Arc::new(RwLock::new(Status::new(
        source.display_location(),
        cfg.mode.as_str(),
    )));
    // Ready needs a first reconcile, the source reached within three polls, and AWS
    // answering (see `AWS_SILENCE`).
    let poll = if source.is_git() {
        cfg.interval
    } else {
        cfg.resync
    };
    let readiness =
        Arc::new(Readiness::new(poll * 3, AWS_SILENCE).with_stuck_after(cfg.stuck_after));
    let trigger = Arc::new(Notify::new());
    // A few requests may wait while a pass runs; more are refused by back-pressure.
    let (control_tx, mut control_rx) = tokio::sync::mpsc::channel(16);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: cfg.listen,
            source,
        })?;
    tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), source = %source.display_location(), mode = cfg.mode.as_str(), "mlspace-gitops daemon starting");

    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http_state = crate::http::HttpState {
        registry: registry.clone(),
        status: status.clone(),
        readiness: readiness.clone(),
        webhook_secret: cfg.webhook_secret.clone(),
        trigger: trigger.clone(),
        control: crate::http::control::Control {
            token: cfg.control_token.clone(),
            tx: cfg.control_token.as_ref().map(|_| control_tx),
        },
        ui_auth: cfg.ui_auth.clone(),
    };
    let http = tokio::spawn(crate::http::serve_with_limits(
        listener,
        http_state,
        cfg.http,
        async move {
            let _ = http_stop_rx.await;
        },
    ));

    let mut watch_rx = match source.watch() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!(error = %DisplayChain(&e), "cannot watch the manifests directory; falling back to polling");
            None
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (listeners, mut events_rx) = events::Listeners::new(metrics.clone(), readiness.clone());
    let mut rt = Runtime {
        revisions: Revisions::new(metrics.clone(), status.clone(), readiness.clone())
            .with_limits(cfg.limits)
            .with_lint_fail_on(cfg.lint_fail_on),
        cfg: cfg.clone(),
        metrics,
        status,
        readiness,
        stop: stop.clone(),
        workers: BTreeMap::new(),
        due: BTreeMap::new(),
        retired: Vec::new(),
        home: None,
        store: None,
        listeners,
        pending: BTreeMap::new(),
        membership_read: false,
        ticks: 0,
        overview: BTreeMap::new(),
        first_seen: BTreeMap::new(),
        notifier,
        notified: BTreeMap::new(),
        leading: BTreeMap::new(),
        taken: Arc::default(),
    };
    rt.metrics.set_resync_interval(cfg.resync);

    tokio::pin!(shutdown);
    let mut next_fetch = Instant::now();
    // Renew the leases (or try to take them over) well within their lifetime, and try
    // again for a lease of this replica's share the moment another replica's expires.
    let mut next_lease = Instant::now();
    loop {
        let next_due = rt
            .due
            .values()
            .chain(rt.pending.values().map(|p| &p.due))
            .min()
            .copied();
        let mut fetch = false;
        // Biased: a poll or a webhook that is due runs before a reconcile that is due, so a
        // long reconcile (AWS unreachable) never starves the source.
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(next_fetch) => fetch = true,
            _ = trigger.notified() => { tracing::info!("webhook: fetching now"); fetch = true },
            Some(call) = control_rx.recv() => rt.control(call).await,
            Some(()) = async { match watch_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => fetch = true,
            _ = tokio::time::sleep_until(next_lease), if rt.revisions.good.is_some() => {
                let began = Instant::now();
                let retry = rt.lease_tick().await;
                next_lease = next_lease_tick(began, Instant::now(), cfg.lease_ttl / 3, retry);
            }
            Some(batch) = events_rx.recv() => events::Pending::add(&mut rt.pending, batch, Instant::now()),
            _ = async { match next_due { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {}
        }
        if fetch {
            next_fetch = Instant::now() + jitter(poll);
            let liveness = rt.readiness.clone();
            let _busy = liveness.busy("syncing and loading the source");
            // A sync or a load is abandoned on shutdown (the load stops at its next file):
            // nothing of it has been applied yet.
            let new = tokio::select! {
                new = rt.revisions.fetch(&mut source, &stop) => new,
                _ = &mut shutdown => {
                    tracing::info!("shutting down: abandoning the source sync or load in progress");
                    stop.store(true, Ordering::SeqCst);
                    break;
                }
            };
            for n in rt.revisions.refusals.drain(..) {
                rt.notifier.send(n);
            }
            if new {
                rt.new_revision();
            }
        }
        let now = Instant::now();
        let ready: Vec<String> = rt
            .due
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(n, _)| n.clone())
            .collect();
        // Events settled, and every event of an Environment reconciled whole anyway.
        let targeted: Vec<String> = rt
            .pending
            .iter()
            .filter(|(n, p)| p.due <= now || ready.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
        if (ready.is_empty() && targeted.is_empty()) || rt.revisions.good.is_none() {
            continue;
        }
        // Whatever else the listeners handed over meanwhile joins this pass.
        while let Ok(batch) = events_rx.try_recv() {
            events::Pending::add(&mut rt.pending, batch, now);
        }
        let events: BTreeMap<String, events::Pending> = targeted
            .iter()
            .filter_map(|n| Some((n.clone(), rt.pending.remove(n)?)))
            .collect();
        // Finish the pass even if SIGTERM arrives, up to the grace period.
        let liveness = rt.readiness.clone();
        let _busy = liveness.busy("reconciling");
        let keepalive = rt.keepalive();
        let pass = rt.pass(ready, events);
        tokio::pin!(pass);
        tokio::select! {
            _ = &mut pass => {}
            // Never ends: the pass does.
            _ = keepalive => {}
            _ = &mut shutdown => {
                tracing::info!(grace_secs = cfg.grace.as_secs(), "shutting down: letting the reconcile in flight finish");
                stop.store(true, Ordering::SeqCst);
                if tokio::time::timeout(cfg.grace, &mut pass).await.is_err() {
                    tracing::warn!("grace period over; exiting with the reconcile unfinished (steps are idempotent: the next start continues)");
                }
                break;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    rt.listeners.retain(|_| false);
    rt.release().await;
    rt.notifier.close(NOTIFY_DRAIN.min(cfg.grace)).await;
    let _ = http_stop_tx.send(());
    let _ = http.await;
    tracing::info!("mlspace-gitops daemon stopped");
    Ok(())
}

impl Runtime {
    /// A new valid revision: workers for its Environments (new ones made, removed ones
    /// retired), every failure forgotten, every Environment due now.
    fn new_revision(&mut self) {
        let Some(good) = &self.revisions.good else {
            return;
        };
        let names: Vec<String> = good
            .envs
            .iter()
            .map(|(_, d)| d.environment.name.clone())
            .collect();
        // Environments that left the manifests give their lease back and are no longer
        // reconciled (their resources stay: prune is per Environment).
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(lease) = self.workers.remove(&name).and_then(|mut w| w.take_lease()) {
                self.retired.push(lease);
            }
            self.due.remove(&name);
            self.first_seen.remove(&name);
            self.metrics.forget_environment(&name, &self.cfg.holder);
            self.notified.remove(&name);
            self.leading.remove(&name);
            // Its suspension stays in the store (for when it comes back); not shown here.
            self.metrics.set_suspended(&name, false);
        }
        let scopes: Vec<String> = names.iter().map(|n| worker::env_scope(n)).collect();
        self.readiness
            .retain_aws_scopes(|s| s == STORE_SCOPE || scopes.iter().any(|x| x == s));
        let now = Instant::now();
        for (dir, d) in &good.envs {
            let e = &d.environment;
            let w = self
                .workers
                .entry(e.name.clone())
                .or_insert_with(|| Worker::new(&e.name, &self.cfg, &self.metrics, &self.readiness));
            // A new revision deserves a fresh attempt at every resource.
            w.policy.reset();
            w.status.directory = dir.clone();
            w.status.account = e.account.clone();
            w.status.region = e.region.clone();
            self.due.insert(e.name.clone(), now);
            self.first_seen
                .entry(e.name.clone())
                .or_insert_with(crate::state::now_ms);
        }
        // The new Environments get their share before their first pass.
        self.membership_read = false;
    }

    /// Heartbeat, read the live replicas and the Environments' overview, and give each
    /// worker its assignment ([`crate::shard::assign`]). When the store cannot be read the
    /// previous assignment stays (the leases keep it safe meanwhile).
    async fn membership(&mut self) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let me = heartbeat(&self.cfg);
        let read = async {
            store.heartbeat(&me).await?;
            let replicas = store.replicas().await?;
            let overview = store.environments().await?;
            Ok::<_, crate::state::StateError>((replicas, overview))
        };
        let (mut replicas, overview) = match read.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %DisplayChain(&e), "cannot read the replicas from the state store; keeping the last assignment");
                return;
            }
        };
        if !replicas.iter().any(|r| r.id == me.id) {
            replicas.push(me); // read before its own heartbeat landed
        }
        self.metrics.set_replicas(replicas.len());
        let assignment =
            crate::shard::assign(self.workers.keys().map(String::as_str), &members(&replicas));
        let live: Vec<&str> = replicas.iter().map(|r| r.id.as_str()).collect();
        for (name, w) in self.workers.iter_mut() {
            let assigned = match assignment.get(name) {
                Some(r) if *r == self.cfg.holder => Assigned::Me,
                Some(r) => Assigned::Other(r.clone()),
                None => Assigned::Nobody,
            };
            if assigned != w.assigned {
                tracing::info!(environment = %name, assigned = ?assigned, "share changed");
            }
            w.assigned = assigned;
            w.status.assigned_to = assignment.get(name).cloned();
            // A holder whose heartbeat is gone owns nothing any more.
            w.status.owner = overview
                .iter()
                .find(|o| &o.environment == name)
                .and_then(|o| o.holder.clone())
                .filter(|h| live.contains(&h.as_str()));
        }
        self.overview = overview
            .into_iter()
            .map(|o| (o.environment.clone(), o))
            .collect();
        self.membership_read = true;
        self.export_ages();
    }

    /// The age of every Environment's last completed reconcile, by any replica.
    fn export_ages(&mut self) {
        let now = crate::state::now_ms();
        for (name, w) in self.workers.iter_mut() {
            let last = self.overview.get(name).and_then(|o| o.last_reconciled_ms);
            w.status.last_completed_at = last.map(|ms| ms / 1000);
            if w.is_leader() {
                w.status.owner = Some(self.cfg.holder.clone());
            }
            let since = last
                .or_else(|| self.first_seen.get(name).copied())
                .unwrap_or(now);
            self.metrics
                .set_last_reconcile_age(name, Duration::from_millis(now.saturating_sub(since)));
        }
    }

    /// Record in the store that the whole runs in `completed` finished, so every replica
    /// sees the Environments' ages.
    async fn mark_completed(&mut self, completed: &[String]) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let now = crate::state::now_ms();
        // At once, as the reconciles ran.
        let marks = completed.iter().filter_map(|name| {
            let lease = self.workers.get(name).and_then(Worker::lease)?;
            Some(async move { (name, lease, store.mark_reconciled(lease, now).await) })
        });
        for (name, lease, result) in futures::future::join_all(marks).await {
            match result {
                Ok(()) => {
                    let o =
                        self.overview
                            .entry(name.clone())
                            .or_insert_with(|| EnvironmentRecord {
                                environment: name.clone(),
                                holder: None,
                                last_reconciled_ms: None,
                            });
                    o.holder = Some(lease.holder.clone());
                    o.last_reconciled_ms = Some(now);
                }
                Err(e) => {
                    tracing::warn!(environment = %name, error = %DisplayChain(&e), "cannot record the completed reconcile in the state store")
                }
            }
        }
        self.export_ages();
    }

    /// Open the state store on first use (a DynamoDB table lives in the account of the
    /// standard chain's credentials, in the first Environment's region unless configured).
    async fn open_store(&mut self) -> Result<(), String> {
        if self.store.is_some() {
            return Ok(());
        }
        let region = self
            .revisions
            .good
            .as_ref()
            .and_then(|g| g.store_region())
            .unwrap_or_default()
            .to_string();
        if self.home.is_none() && self.cfg.state.is_some() {
            let home = AwsContext::from_env(&self.cfg.aws, &region).await;
            home.stats.set_observer(AttemptObserver::new(
                STORE_SCOPE.into(),
                &self.metrics,
                &self.readiness,
            ));
            self.home = Some(home);
        }
        let s = crate::state::open(
            self.cfg.state.as_deref(),
            &self.cfg.source.state_dir,
            self.home.as_ref(),
        )
        .await
        .map_err(|e| {
            let why =
                crate::syntax::diag::escape_control(&DisplayChain(&e).to_string()).into_owned();
            self.readiness.set_problem(STORE_SCOPE, Some(why.clone()));
            format!("cannot open the state store: {why}")
        })?;
        self.readiness.set_problem(STORE_SCOPE, None);
        self.store = Some(Arc::from(s));
        Ok(())
    }

    /// What keeps this replica's heartbeat and leases alive while a pass runs (the lease
    /// ticks wait for the pass): every third of the lease time it renews the heartbeat and
    /// the leases held, and takes the free leases of its share. A pass slower than the lease
    /// time (AWS throttling, timeouts) would otherwise let the leases lapse mid-pass and the
    /// other replicas see this one gone; and a replica killed meanwhile would leave its
    /// Environments without a leader until the pass ended. A lease taken here is adopted
    /// by its worker when the pass ends ([`Runtime::adopt_taken`]) and reconciled then;
    /// `/status` and the leader metric show it at once. Nothing is handed over here (an
    /// Environment of another replica's share may be in the pass): the next tick does it.
    /// A renewal refused (the lease was taken) is left to the next tick; the pass's own
    /// writes are fenced.
    fn keepalive(&self) -> impl std::future::Future<Output = ()> + 'static {
        let store = self.store.clone();
        let me = self.cfg.holder.clone();
        let cap = self.cfg.max_environments;
        let ttl = self.cfg.lease_ttl;
        let (status, metrics, taken) = (
            self.status.clone(),
            self.metrics.clone(),
            self.taken.clone(),
        );
        let mut held: Vec<String> = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for (name, w) in &self.workers {
            if w.lease().is_some() {
                held.push(name.clone());
            } else {
                others.push(name.clone());
            }
        }
        let all: Vec<String> = held.iter().chain(&others).cloned().collect();
        // Before the first membership read this replica takes no more than a lone one would.
        let sharding = self.membership_read;
        async move {
            let Some(store) = store else {
                return std::future::pending().await;
            };
            let mut wait = ttl / 3;
            loop {
                tokio::time::sleep(wait).await;
                wait = ttl / 3;
                let me_record = replica_record(&me, cap, ttl);
                if let Err(e) = store.heartbeat(&me_record).await {
                    tracing::warn!(error = %DisplayChain(&e), "cannot renew this replica's heartbeat during the pass");
                }
                let renewals = held.iter().map(|env| store.acquire_lease(env, &me, ttl));
                for (env, r) in held.iter().zip(futures::future::join_all(renewals).await) {
                    if let Err(e) = r {
                        tracing::warn!(environment = %env, error = %DisplayChain(&e), "cannot renew the lease during the pass");
                    }
                }
                if !sharding || others.is_empty() {
                    continue;
                }
                let mut replicas = match store.replicas().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %DisplayChain(&e), "cannot read the replicas during the pass");
                        continue;
                    }
                };
                if !replicas.iter().any(|r| r.id == me) {
                    replicas.push(me_record);
                }
                let assignment =
                    crate::shard::assign(all.iter().map(String::as_str), &members(&replicas));
                let mine: Vec<String> = others
                    .iter()
                    .filter(|n| assignment.get(*n).is_some_and(|r| *r == me))
                    .cloned()
                    .collect();
                let tries = mine.iter().map(|env| store.acquire_lease(env, &me, ttl));
                let mut retry_at: Option<u64> = None;
                for (env, r) in mine.iter().zip(futures::future::join_all(tries).await) {
                    match r {
                        Ok(lease) => {
                            tracing::info!(environment = %env, token = lease.token, "lease taken beside the pass: reconciled when the pass ends");
                            metrics.set_leader(env, &me, true);
                            if let Some(e) = status
                                .write()
                                .unwrap()
                                .environments
                                .iter_mut()
                                .find(|e| &e.name == env)
                            {
                                e.leader = true;
                                e.owner = Some(me.clone());
                            }
                            taken.lock().unwrap().push(lease);
                            others.retain(|o| o != env);
                            held.push(env.clone());
                        }
                        Err(crate::state::StateError::LeaseHeld { expires_at_ms, .. }) => {
                            retry_at =
                                Some(retry_at.map_or(expires_at_ms, |t| t.min(expires_at_ms)));
                        }
                        Err(e) => {
                            tracing::warn!(environment = %env, error = %DisplayChain(&e), "cannot take the lease during the pass");
                        }
                    }
                }
                if let Some(at) = retry_at {
                    wait = wait.min(until_epoch_ms(at) + LEASE_RETRY_MARGIN);
                }
            }
        }
    }

    /// The leases the keepalive took beside the pass, to their workers: due at once. Called
    /// at the end of the pass, before its results are shown.
    fn adopt_taken(&mut self) {
        let taken: Vec<Lease> = std::mem::take(&mut *self.taken.lock().unwrap());
        if taken.is_empty() {
            return;
        }
        let cx = WorkerCx {
            cfg: &self.cfg,
            metrics: &self.metrics,
            readiness: &self.readiness,
            store: self.store.as_deref(),
            stop: &self.stop,
        };
        let now = Instant::now();
        for lease in taken {
            if let Some(w) = self.workers.get_mut(&lease.environment) {
                let name = lease.environment.clone();
                w.adopt_lease(&cx, lease);
                self.due.insert(name, now);
            }
        }
    }

    /// The periodic lease renewal; an Environment whose lease this replica just took is
    /// due at once instead of at the next resync. Returns when to try again for a lease of
    /// this replica's share that another replica still held.
    async fn lease_tick(&mut self) -> Option<Instant> {
        if let Err(e) = self.open_store().await {
            tracing::error!("{e}");
            self.status.write().unwrap().last_error = Some(e);
            return None;
        }
        self.membership().await;
        let cx = WorkerCx {
            cfg: &self.cfg,
            metrics: &self.metrics,
            readiness: &self.readiness,
            store: self.store.as_deref(),
            stop: &self.stop,
        };
        let now = Instant::now();
        let good = self.revisions.good.as_ref();
        self.ticks += 1;
        let standby_look = self.ticks % STANDBY_SUSPENSION_TICKS == 1;
        // Every Environment at once: a tick of hundreds of Environments one after the other
        // would outlast the third of the lease time it has.
        let ticks = self.workers.iter_mut().map(|(name, w)| {
            let cx = &cx;
            async move {
                let was = w.is_leader();
                let taken = matches!(w.hold_lease(cx).await, Ok(true)) && !was;
                // A suspension or resume made through another replica shows here too; a
                // resumed Environment this replica leads is reconciled at once.
                let mut resumed = false;
                let look = w.is_leader() || standby_look;
                if let Some(desired) = good.and_then(|g| g.environment(name)).filter(|_| look) {
                    let was_suspended = w.suspension().is_some();
                    match w.read_suspension(cx, desired).await {
                        Ok(now_suspended) => {
                            resumed = was_suspended && !now_suspended && w.is_leader();
                        }
                        Err(e) => tracing::warn!(environment = %name, "{e}"),
                    }
                }
                (name.clone(), taken || resumed)
            }
        });
        for (name, due_now) in futures::future::join_all(ticks).await {
            if due_now {
                self.due.insert(name, now);
            }
        }
        // Shown at every tick, not only after the next pass: a lease taken or handed over,
        // a suspension, the owners and ages just read from the store.
        self.show_workers();
        self.notice_leadership();
        self.sync_listeners();
        let retry_ms = self
            .workers
            .values()
            .filter_map(Worker::retry_lease_at_ms)
            .min()?;
        Some(Instant::now() + until_epoch_ms(retry_ms) + LEASE_RETRY_MARGIN)
    }

    /// Notices of the leases this replica took or lost since it last looked.
    fn notice_leadership(&mut self) {
        for (name, w) in &self.workers {
            let is = w.is_leader();
            let was = self.leading.insert(name.clone(), is).unwrap_or(false);
            if let Some(n) = crate::notify::leadership(name, &self.cfg.holder, was, is) {
                self.notifier.send(n);
            }
        }
    }

    /// The notices of one Environment's run, derived from what was said before.
    fn notice_run(&mut self, facts: &crate::notify::RunFacts) {
        let prev = self.notified.remove(&facts.environment).unwrap_or_default();
        let (next, notices) = crate::notify::derive(&prev, facts);
        self.notified.insert(facts.environment.clone(), next);
        for n in notices {
            self.notifier.send(n);
        }
    }

    /// Listeners for exactly the Environments this replica leads that name queues, once a
    /// whole run has connected to them; each given the index of its last run.
    fn sync_listeners(&mut self) {
        let workers = &self.workers;
        self.listeners
            .retain(|e| workers.get(e).is_some_and(Worker::is_leader));
        let Some(good) = &self.revisions.good else {
            return;
        };
        for (_, d) in &good.envs {
            let e = &d.environment;
            let Some(w) = self.workers.get(&e.name) else {
                continue;
            };
            if !w.is_leader() || e.event_queues.is_empty() {
                self.listeners.stop(&e.name);
                continue;
            }
            if let (Some(aws), Some(index)) = (w.aws(), w.event_index()) {
                self.listeners.ensure(e, aws, index.clone());
            }
        }
    }

    /// Give the leases back on shutdown, and leave the membership, so other replicas take
    /// over at once.
    async fn release(&mut self) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        if let Err(e) = store.leave(&self.cfg.holder).await {
            tracing::warn!(error = %DisplayChain(&e), "cannot remove this replica's heartbeat; it expires by itself");
        }
        // With those the keepalive took beside a pass cut short by the shutdown.
        let taken: Vec<Lease> = std::mem::take(&mut *self.taken.lock().unwrap())
            .into_iter()
            .filter(|l| {
                self.workers
                    .get(&l.environment)
                    .is_none_or(|w| w.lease().is_none())
            })
            .collect();
        let leases = self
            .workers
            .values_mut()
            .filter_map(Worker::take_lease)
            .chain(self.retired.drain(..))
            .chain(taken);
        for lease in leases {
            if let Err(e) = store.release_lease(&lease).await {
                tracing::warn!(environment = %lease.environment, error = %DisplayChain(&e), "cannot release the lease");
            }
        }
    }

    /// Reconcile the Environments in `due` whole and those with `events` (not due) for the
    /// resources their events named, concurrently: one pass.
    async fn pass(&mut self, due: Vec<String>, events: BTreeMap<String, events::Pending>) {
        let Some(rev) = self.revisions.good.as_ref().map(|g| g.revision.clone()) else {
            return;
        };
        let span =
            tracing::info_span!("reconcile", revision = %rev.id, mode = self.cfg.mode.as_str());
        self.pass_in_span(due, events, rev).instrument(span).await;
        self.sync_listeners();
    }

    async fn pass_in_span(
        &mut self,
        due: Vec<String>,
        events: BTreeMap<String, events::Pending>,
        rev: crate::source::Revision,
    ) {
        let started = std::time::Instant::now();
        let mut errors: Vec<String> = Vec::new();
        if let Err(e) = self.open_store().await {
            tracing::error!("{e}");
            errors.push(e);
        }
        if !self.membership_read {
            self.membership().await;
        }
        if let Some(store) = self.store.as_ref() {
            for lease in self.retired.drain(..) {
                if let Err(e) = store.release_lease(&lease).await {
                    tracing::warn!(environment = %lease.environment, error = %DisplayChain(&e), "cannot release the lease of a removed Environment");
                }
            }
        }
        let revision = RevisionInfo {
            id: rev.id.clone(),
            author: rev.author.clone(),
            message: rev.message.clone(),
        };
        let good = self
            .revisions
            .good
            .as_ref()
            .expect("a pass needs a revision");
        let cx = WorkerCx {
            cfg: &self.cfg,
            metrics: &self.metrics,
            readiness: &self.readiness,
            store: self.store.as_deref(),
            stop: &self.stop,
        };
        let whole = !due.is_empty();
        let mut jobs = Vec::new();
        for (name, w) in self.workers.iter_mut() {
            let targeted: Option<&BTreeSet<ResourceId>> = events.get(name).map(|p| &p.ids);
            let is_due = due.contains(name);
            if !is_due && targeted.is_none() {
                continue;
            }
            let Some(desired) = good.environment(name) else {
                continue;
            };
            let (cx, revision) = (&cx, &revision);
            jobs.push(async move {
                match targeted {
                    Some(only) if !is_due => {
                        let (outcome, action) =
                            w.reconcile_targeted(cx, revision, desired, only).await;
                        (name.clone(), false, outcome, action)
                    }
                    _ => {
                        let (outcome, action) = w.reconcile(cx, revision, desired).await;
                        (name.clone(), true, outcome, Some(action))
                    }
                }
            });
        }
        let results = futures::future::join_all(jobs).await;
        let mut outcomes = Vec::new();
        let mut handled = Vec::new();
        let mut outcomes_named = Vec::new();
        let mut ignored = Vec::new();
        for (name, was_whole, outcome, action) in results {
            match action {
                Some(Action::RequeueAt(t)) if was_whole => {
                    self.due.insert(name.clone(), t);
                }
                // A targeted run's retry comes before the resync, never after it.
                Some(Action::RequeueAt(t)) => {
                    let at = self.due.get(&name).map_or(t, |d| t.min(*d));
                    self.due.insert(name.clone(), at);
                }
                Some(Action::Standby) => {
                    self.due.remove(&name);
                }
                None => {}
            }
            match &outcome {
                Outcome::Reconciled { facts, .. } => self.notice_run(facts),
                // The run could not happen: its error is the worker's last.
                Outcome::Failed => {
                    let facts = crate::notify::RunFacts {
                        environment: name.clone(),
                        revision: crate::notify::RevisionRef {
                            id: revision.id.clone(),
                            author: revision.author.clone(),
                            message: revision.message.clone(),
                        },
                        whole: was_whole,
                        problems: self
                            .workers
                            .get(&name)
                            .and_then(|w| w.status.last_error.clone())
                            .or_else(|| Some("the reconcile could not run".into()))
                            .into_iter()
                            .collect(),
                        ..Default::default()
                    };
                    self.notice_run(&facts);
                }
                Outcome::Standby | Outcome::Suspended => {}
            }
            if let Outcome::Reconciled {
                success, repaired, ..
            } = &outcome
            {
                if !was_whole {
                    self.metrics.record_event_reconcile(&name, *success);
                }
                if let Some(p) = events.get(&name) {
                    tracing::info!(environment = %name, events = p.events.len(), resources = p.ids.len(), whole = was_whole, "events handled");
                }
                handled.push((name.clone(), repaired.clone()));
            }
            if matches!(outcome, Outcome::Suspended) {
                ignored.push(name.clone());
            }
            outcomes_named.push((
                name.clone(),
                was_whole && matches!(outcome, Outcome::Reconciled { .. }),
            ));
            outcomes.push(outcome);
        }
        let completed: Vec<String> = outcomes_named
            .into_iter()
            .filter_map(|(n, done)| done.then_some(n))
            .collect();
        self.mark_completed(&completed).await;
        // Delete the messages of the events handled, and of the suspended Environments'
        // events; the others come back from the queue.
        let mut events = events;
        for name in ignored {
            if let Some(p) = events.remove(&name) {
                tracing::info!(environment = %name, events = p.events.len(), "events ignored: the environment is suspended");
                p.ignored().await;
            }
        }
        for (name, repaired) in handled {
            let (Some(p), Some(w)) = (events.remove(&name), self.workers.get(&name)) else {
                continue;
            };
            p.handled(&w.resources, &repaired, &self.metrics).await;
        }
        // No await from here on: the keepalive takes nothing more in this pass.
        self.adopt_taken();
        self.notice_leadership();
        self.publish(&rev.id, errors, &outcomes, whole, started.elapsed());
    }

    /// Resources by kind and state, of every worker, to the metrics.
    fn set_resource_counts(&self) {
        let counts =
            self.workers
                .values()
                .flat_map(|w| &w.resources)
                .fold(BTreeMap::new(), |mut m, r| {
                    *m.entry((r.kind, r.state)).or_insert(0i64) += 1;
                    m
                });
        self.metrics.set_resource_counts(&counts);
    }

    /// The workers' Environments and resources to `/status` and the counts to the metrics,
    /// outside a pass (a suspension or resume).
    fn show_workers(&self) {
        self.set_resource_counts();
        let mut s = self.status.write().unwrap();
        s.environments = self.workers.values().map(|w| w.status.clone()).collect();
        s.resources = self
            .workers
            .values()
            .flat_map(|w| w.resources.iter().cloned())
            .collect();
    }

    /// Metrics, `/status` and readiness after a pass.
    fn publish(
        &mut self,
        revision: &str,
        mut errors: Vec<String>,
        outcomes: &[Outcome],
        whole: bool,
        elapsed: Duration,
    ) {
        let standby_only = !outcomes.is_empty()
            && outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Standby | Outcome::Suspended));
        let success = errors.is_empty()
            && outcomes.iter().all(|o| match o {
                Outcome::Reconciled { success, .. } => *success,
                Outcome::Standby | Outcome::Suspended => true,
                Outcome::Failed => false,
            });
        if !standby_only {
            // Targeted runs are counted apart (`record_event_reconcile`).
            if whole {
                self.metrics.record_reconcile(
                    if success {
                        ReconcileResult::Success
                    } else {
                        ReconcileResult::Failure
                    },
                    Some(elapsed),
                );
            }
        }
        // A suspension shows in the counts (`suspended`) though nothing ran.
        if !standby_only || outcomes.iter().any(|o| matches!(o, Outcome::Suspended)) {
            self.set_resource_counts();
        }
        let several = self.workers.len() > 1;
        {
            let mut s = self.status.write().unwrap();
            if !standby_only && whole {
                s.reconciles += 1;
                s.last_reconcile_at = Some(epoch_secs());
                if success && self.cfg.mode == Mode::Apply {
                    s.last_applied_revision = Some(revision.to_string());
                }
            }
            for w in self.workers.values() {
                if let Some(err) = &w.status.last_error {
                    if several {
                        errors.push(format!("Environment {}: {err}", w.status.name));
                    } else {
                        errors.push(err.clone());
                    }
                }
            }
            // A validation error of a newer revision stays visible until a valid one arrives.
            let invalid_newer = s
                .last_attempted_revision
                .as_deref()
                .is_some_and(|a| a != revision);
            if !invalid_newer {
                s.last_error = (!errors.is_empty()).then(|| errors.join("\n"));
            }
            s.environments = self.workers.values().map(|w| w.status.clone()).collect();
            s.resources = self
                .workers
                .values()
                .flat_map(|w| w.resources.iter().cloned())
                .collect();
        }
        // Ready needs a reconcile that ran (or stood by for another replica): one that could
        // not run (no store, no lease) has not completed.
        if outcomes.iter().any(|o| {
            matches!(
                o,
                Outcome::Reconciled { .. } | Outcome::Standby | Outcome::Suspended
            )
        }) {
            self.readiness.reconciled();
        }
        let (mut changes, mut failures, mut requests) = (0, 0, 0);
        for o in outcomes {
            if let Outcome::Reconciled {
                changes: c,
                failures: f,
                requests: r,
                ..
            } = o
            {
                changes += c;
                failures += f;
                requests += r;
            }
        }
        tracing::info!(
            success,
            environments = outcomes.len(),
            changes,
            failures,
            aws_requests = requests,
            elapsed_ms = elapsed.as_millis() as u64,
            "{}",
            if whole {
                "reconcile finished"
            } else {
                "event reconcile finished"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::next_lease_tick;
    use std::time::Duration;
    use tokio::time::Instant;

    const PERIOD: Duration = Duration::from_millis(1333);

    #[test]
    fn a_quick_tick_is_followed_a_period_after_it_began() {
        let t0 = Instant::now();
        let ended = t0 + Duration::from_millis(200);
        assert_eq!(next_lease_tick(t0, ended, PERIOD, None), t0 + PERIOD);
    }

    #[test]
    fn a_tick_longer_than_the_period_is_followed_a_period_after_it_ended() {
        let t0 = Instant::now();
        let ended = t0 + Duration::from_secs(3);
        assert_eq!(next_lease_tick(t0, ended, PERIOD, None), ended + PERIOD);
    }

    /// Regression: a replica killed keeps its leases a little longer than its heartbeat, so
    /// the survivors found them still held at their first tick and waited a whole period
    /// (and any pass in between) to try again; they now try when the lease expires.
    #[test]
    fn a_lease_held_elsewhere_that_expires_first_brings_the_tick_forward() {
        let t0 = Instant::now();
        let ended = t0 + Duration::from_millis(100);
        let expiry = t0 + Duration::from_millis(400);
        assert_eq!(next_lease_tick(t0, ended, PERIOD, Some(expiry)), expiry);
        // Never before the tick ended, never later than the regular one.
        assert_eq!(next_lease_tick(t0, ended, PERIOD, Some(t0)), ended);
        let late = t0 + Duration::from_secs(10);
        assert_eq!(next_lease_tick(t0, ended, PERIOD, Some(late)), t0 + PERIOD);
    }
}
