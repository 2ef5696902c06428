//! The daemon: a level-triggered controller. The runtime here owns the loop (as in
//! kube-runtime): triggers (source poll, webhook, file watch, resync, retry timers) wake it,
//! one reconcile runs at a time, and failed resources are requeued with capped
//! exponential backoff by a separate error policy ([`Backoff`]).
//!
//! A revision that fails validation, or whose head commit fails signature verification
//! (`--verify-commits`), is never applied: the last good revision stays in force and the
//! error is reported until a new revision arrives.

mod backoff;
mod reconcile;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use tokio::time::Instant;

pub use backoff::Backoff;

use crate::aws::{AwsOptions, CallObserver, CallResult};
use crate::manifest::{self, DesiredState, ManifestError};
use crate::metrics::Metrics;
use crate::plan::ResourceId;
use crate::secret::Secret;
use crate::source::{Revision, Source, SourceConfig, SourceError, VerifyError};
use crate::status::{Readiness, SharedStatus, Status};

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
    pub prune: crate::reconcile::inventory::PruneOptions,
    /// How long a replica's lease on its Environment lasts without renewal; another replica
    /// takes over within this time after it dies.
    pub lease_ttl: Duration,
    /// This replica's identity in leases (unique: host, pid, random suffix).
    pub holder: String,
    /// Allowed-signers file: when set, only revisions whose head commit is SSH-signed by a
    /// key in it are applied (git sources only).
    pub allowed_signers: Option<PathBuf>,
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
}

/// How long the AWS attempts of an Environment (or of the state store) may go unanswered,
/// from the start of the first to the start of the latest, before the daemon reports not
/// ready: longer than one request's retries usually take to get through a burst of 5xx or
/// lost connections. An endpoint that never answers shows once attempts have timed out over
/// this span (with the default 30 s attempt timeout, after about 40 s).
const AWS_SILENCE: Duration = Duration::from_secs(10);

/// Reports each AWS attempt to the metrics, and to readiness under a scope (an Environment
/// or the state store), so that `/readyz` follows whether AWS answers.
#[derive(Debug)]
pub(crate) struct AttemptObserver {
    scope: String,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

impl AttemptObserver {
    /// An observer for `scope` (`Environment NAME`, `state store`).
    fn new(scope: String, metrics: &Arc<Metrics>, readiness: &Arc<Readiness>) -> Arc<Self> {
        Arc::new(AttemptObserver {
            scope,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        })
    }
}

impl CallObserver for AttemptObserver {
    fn observe(&self, service: &str, operation: &str, result: CallResult, elapsed: Duration) {
        self.metrics.observe(service, operation, result, elapsed);
        self.readiness
            .aws_attempt(&self.scope, result != CallResult::ServerError, elapsed);
    }
}

/// The readiness scope of an Environment's AWS attempts.
fn env_scope(name: &str) -> String {
    format!("Environment {name}")
}

/// The readiness scope of the DynamoDB state table's attempts.
const STORE_SCOPE: &str = "state store";

/// Seconds since the epoch, for status.
pub(crate) fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The last revision that validated, with the desired state of each of its Environments.
struct Good {
    revision: Revision,
    /// (directory relative to the manifests path, desired state), sorted by directory.
    envs: Vec<(String, DesiredState)>,
}

impl Good {
    /// The region the DynamoDB state table is opened in: the first Environment's.
    fn store_region(&self) -> Option<&str> {
        self.envs
            .first()
            .map(|(_, d)| d.environment.region.as_str())
    }
}

/// What the controller keeps per Environment between reconciles. Environments are
/// reconciled concurrently, each with its own clients (its `assumeRoleArn`), lease, inventory
/// and error policy.
#[derive(Default)]
struct EnvCtl {
    /// Clients for the Environment (region, assumed role), made on first use and checked to
    /// reach the Environment's account.
    aws: Option<(crate::aws::AwsOptions, String, crate::aws::AwsContext)>,
    /// Revision last applied without failures.
    applied: Option<String>,
    /// Failed resources waiting for their retry.
    backoff: BTreeMap<ResourceId, Backoff>,
    /// The lease on the Environment while this replica reconciles it.
    lease: Option<crate::state::Lease>,
    /// Its part of `/status`.
    status: crate::status::EnvironmentStatus,
    /// Its resources' part of `/status`.
    resources: Vec<crate::status::ResourceStatus>,
}

/// Controller state between reconciles.
struct Controller {
    cfg: DaemonConfig,
    metrics: Arc<Metrics>,
    status: SharedStatus,
    readiness: Arc<Readiness>,
    good: Option<Good>,
    /// Revision id last loaded (valid or not): a failed one is retried only when it changes.
    last_seen: Option<String>,
    /// Revision id last refused for its signature: reported once, not at every poll. Never
    /// in `last_seen`, so it loads as soon as it verifies (a key added to the file).
    rejected: Option<String>,
    /// Per Environment, by name.
    envs: BTreeMap<String, EnvCtl>,
    /// Leases of Environments that left the manifests, to give back.
    retired: Vec<crate::state::Lease>,
    stop: Arc<AtomicBool>,
    /// Clients of the daemon's own account (standard chain, no assumed role), for the
    /// DynamoDB state table.
    home: Option<crate::aws::AwsContext>,
    /// The inventory, opened on first use (a DynamoDB store needs the AWS clients).
    store: Option<Box<dyn crate::state::StateStore>>,
}

/// Run the daemon until `shutdown` resolves. It never exits because AWS or the source is
/// unreachable: failures are reported and retried.
pub async fn run(
    cfg: DaemonConfig,
    registry: prometheus::Registry,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), DaemonError> {
    let metrics = crate::metrics::register(&registry)?;
    let mut source = Source::new(cfg.source.clone())?;
    if let Some(file) = &cfg.allowed_signers {
        source.verify_commits(file.clone())?;
    }
    let status: SharedStatus = Arc::new(RwLock::new(Status {
        source: source.display_location(),
        mode: cfg.mode.as_str().into(),
        ..Status::default()
    }));
    // Ready needs a first reconcile, the source reached within three polls, and AWS
    // answering (see `AWS_SILENCE`).
    let readiness = Arc::new(Readiness::new(
        if source.is_git() {
            cfg.interval * 3
        } else {
            cfg.resync * 3
        },
        AWS_SILENCE,
    ));
    let trigger = Arc::new(Notify::new());
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
    };
    let http = tokio::spawn(crate::http::serve(listener, http_state, async move {
        let _ = http_stop_rx.await;
    }));

    let mut watch_rx = match source.watch() {
        Ok(rx) => rx,
        Err(e) => {
            tracing::warn!(error = %crate::aws::DisplayChain(&e), "cannot watch the manifests directory; falling back to polling");
            None
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut ctl = Controller {
        cfg: cfg.clone(),
        metrics,
        status,
        readiness,
        good: None,
        last_seen: None,
        rejected: None,
        envs: BTreeMap::new(),
        retired: Vec::new(),
        stop: stop.clone(),
        home: None,
        store: None,
    };

    tokio::pin!(shutdown);
    let mut next_fetch = Instant::now();
    let mut next_resync = Instant::now() + cfg.resync;
    loop {
        let retry_at = ctl.next_retry();
        let mut fetch = false;
        let mut resync = false;
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(next_fetch) => fetch = true,
            _ = trigger.notified() => { tracing::info!("webhook: fetching now"); fetch = true },
            Some(()) = async { match watch_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => fetch = true,
            _ = tokio::time::sleep_until(next_resync) => resync = true,
            // Renew the lease (or try to take it over) well within its lifetime.
            _ = tokio::time::sleep(cfg.lease_ttl / 3), if ctl.good.is_some() => resync = ctl.lease_tick().await,
            _ = async { match retry_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => resync = true,
        }
        let mut reconcile_now = resync;
        if fetch {
            next_fetch = Instant::now()
                + jitter(if source.is_git() {
                    cfg.interval
                } else {
                    cfg.resync
                });
            if ctl.fetch(&mut source).await {
                reconcile_now = true;
            }
        }
        if reconcile_now && ctl.good.is_some() {
            // Finish the reconcile even if SIGTERM arrives, up to the grace period.
            let work = ctl.reconcile();
            tokio::pin!(work);
            tokio::select! {
                _ = &mut work => {}
                _ = &mut shutdown => {
                    tracing::info!(grace_secs = cfg.grace.as_secs(), "shutting down: letting the reconcile in flight finish");
                    stop.store(true, Ordering::SeqCst);
                    if tokio::time::timeout(cfg.grace, &mut work).await.is_err() {
                        tracing::warn!("grace period over; exiting with the reconcile unfinished (steps are idempotent: the next start continues)");
                    }
                    break;
                }
            }
            next_resync = Instant::now() + cfg.resync;
        }
    }
    stop.store(true, Ordering::SeqCst);
    ctl.release().await;
    let _ = http_stop_tx.send(());
    let _ = http.await;
    tracing::info!("mlspace-gitops daemon stopped");
    Ok(())
}

/// `d` plus up to 10% so that replicas and restarts spread their polls.
fn jitter(d: Duration) -> Duration {
    d + d.mul_f64(rand::random_range(0.0..0.1))
}

impl Controller {
    /// The earliest retry time of a failed resource.
    fn next_retry(&self) -> Option<Instant> {
        self.envs
            .values()
            .flat_map(|e| e.backoff.values())
            .map(|b| b.next_at)
            .min()
    }

    /// Sync the source; on a new revision load it. True when a valid new revision arrived.
    async fn fetch(&mut self, source: &mut Source) -> bool {
        let rev = match source.sync().await {
            Ok(r) => r,
            Err(SourceError::Unverified { commit, source }) => {
                self.reject(commit, &source);
                return false;
            }
            Err(e) => {
                let msg = crate::aws::DisplayChain(&e).to_string();
                tracing::warn!(error = %msg, "source unreachable; will retry");
                self.metrics
                    .source_fetch_total
                    .with_label_values(&["failure"])
                    .inc();
                let mut s = self.status.write().unwrap();
                s.last_fetch_error = Some(msg);
                return false;
            }
        };
        self.readiness.source_reached();
        let result = if source.last_sync_fetched() {
            "success"
        } else {
            "unchanged"
        };
        self.metrics
            .source_fetch_total
            .with_label_values(&[result])
            .inc();
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
        self.load(rev)
    }

    /// The source is at `commit`, whose signature failed verification: report it (once per
    /// commit) and keep the last good revision.
    fn reject(&mut self, commit: String, why: &VerifyError) {
        self.readiness.source_reached();
        let new = self.rejected.as_deref() != Some(commit.as_str());
        self.metrics
            .source_fetch_total
            .with_label_values(&[if new { "success" } else { "unchanged" }])
            .inc();
        self.metrics.set_revision(&commit);
        let mut s = self.status.write().unwrap();
        s.last_fetch_at = Some(epoch_secs());
        s.last_fetch_error = None;
        s.source_revision = Some(commit.clone());
        if !new {
            return;
        }
        let still = self
            .good
            .as_ref()
            .map(|g| g.revision.id.as_str())
            .unwrap_or("nothing");
        tracing::error!(revision = %commit, reason = why.reason(), error = %crate::aws::DisplayChain(why), still_applying = still, "revision refused: commit signature not verified");
        self.metrics
            .commit_verification_failures_total
            .with_label_values(&[why.reason()])
            .inc();
        self.metrics
            .reconcile_total
            .with_label_values(&["invalid"])
            .inc();
        let why = crate::aws::DisplayChain(why);
        s.last_error = Some(if commit == still {
            // Its key was removed from the file after it was applied.
            format!("revision {commit}, in force, no longer verifies: {why}; it stays applied until a verified commit arrives")
        } else {
            format!("revision {commit} was not applied: its commit signature is not verified: {why}; still applying {still}")
        });
        s.last_rejected_revision = Some(commit.clone());
        // Keeps last_error from being cleared by reconciles of the last good revision.
        s.last_attempted_revision = Some(commit.clone());
        self.rejected = Some(commit);
    }

    /// Validate a revision; keep it when valid, report it when not.
    fn load(&mut self, rev: Revision) -> bool {
        let _span = tracing::info_span!("load", revision = %rev.id).entered();
        self.status.write().unwrap().last_attempted_revision = Some(rev.id.clone());
        let result = if rev.manifests_dir.is_dir() {
            manifest::load_environments(std::slice::from_ref(&rev.manifests_dir))
        } else {
            Err(ManifestError::Io {
                path: rev.manifests_dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the manifests directory does not exist at this revision",
                ),
            })
        };
        match result {
            Ok(all) => {
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
                self.metrics.validation_errors.set(0);
                tracing::info!(
                    environments = envs.len(),
                    resources = envs.iter().map(|(_, d)| d.resources.len()).sum::<usize>(),
                    author = rev.author.as_deref().unwrap_or(""),
                    message = rev.message.as_deref().unwrap_or(""),
                    "new revision is valid"
                );
                // Environments that left the manifests give their lease back and are no
                // longer reconciled (their resources stay: prune is per Environment).
                let names: std::collections::BTreeSet<&str> = envs
                    .iter()
                    .map(|(_, d)| d.environment.name.as_str())
                    .collect();
                let gone: Vec<String> = self
                    .envs
                    .keys()
                    .filter(|n| !names.contains(n.as_str()))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(lease) = self.envs.remove(&name).and_then(|e| e.lease) {
                        self.retired.push(lease);
                    }
                    self.metrics.leader.with_label_values(&[&name]).set(0);
                }
                let scopes: std::collections::BTreeSet<String> =
                    names.iter().map(|n| env_scope(n)).collect();
                self.readiness
                    .retain_aws_scopes(|s| s == STORE_SCOPE || scopes.contains(s));
                for (dir, d) in &envs {
                    let e = self.envs.entry(d.environment.name.clone()).or_default();
                    // A new revision deserves a fresh attempt at every resource.
                    e.backoff.clear();
                    e.status.name = d.environment.name.clone();
                    e.status.directory = dir.clone();
                    e.status.account = d.environment.account.clone();
                    e.status.region = d.environment.region.clone();
                }
                self.good = Some(Good {
                    revision: rev,
                    envs,
                });
                true
            }
            Err(e) => {
                let text = match &e {
                    ManifestError::Invalid(d) => {
                        for line in d.sorted() {
                            tracing::error!("{line}");
                        }
                        self.metrics.validation_errors.set(d.error_count() as i64);
                        format!(
                            "revision {} is invalid and was not applied; still applying {}:\n{d}",
                            rev.id,
                            self.good
                                .as_ref()
                                .map(|g| g.revision.id.as_str())
                                .unwrap_or("nothing")
                        )
                    }
                    other => {
                        let msg = crate::aws::DisplayChain(other).to_string();
                        tracing::error!(error = %msg, "cannot load the revision");
                        self.metrics.validation_errors.set(1);
                        format!(
                            "revision {} could not be loaded and was not applied: {msg}",
                            rev.id
                        )
                    }
                };
                self.metrics
                    .reconcile_total
                    .with_label_values(&["invalid"])
                    .inc();
                self.status.write().unwrap().last_error = Some(text);
                false
            }
        }
    }
}
