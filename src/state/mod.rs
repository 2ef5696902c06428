//! The state store: what the daemon manages per environment (its inventory), the history of
//! reconciles that changed something, and the lease that lets exactly one replica reconcile an
//! environment, and whether an environment is suspended (`mlspace-gitops suspend`), which
//! every replica reads so that it holds whichever replica leads and across restarts.
//!
//! Two backends sit behind [`StateStore`]:
//! - [`file::FileStore`] (the default): one JSON file per environment under
//!   `--state-dir/state/`, replaced atomically so a crash leaves the old or the new file;
//!   leases are safe between processes of one host only.
//! - [`dynamodb::DynamoStore`] (`--state dynamodb://TABLE`): one item per resource, history
//!   record and lease in a table created if missing; writes are fenced by the lease token with
//!   DynamoDB conditions, so a replica whose lease was taken over cannot write.
//!
//! State that cannot be read is [`StateError::Corrupt`], never an empty inventory: callers
//! must not prune anything on the account of an inventory they could not read.

pub mod dynamodb;
pub mod file;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::aws::{AwsContext, AwsError};
pub use crate::inventory::{
    spec_digest, ChangeResult, HistoryChange, HistoryRecord, InventoryEntry,
};
use crate::kinds::ResourceId;

/// A replica's right to reconcile one environment until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Environment the lease is for.
    pub environment: String,
    /// Who holds it (unique per replica, e.g. host name, pid and a random suffix).
    pub holder: String,
    /// Fencing token: strictly increasing per environment each time the holder changes, the
    /// same across renewals. Writes carrying an older token are refused.
    pub token: u64,
    /// Expiry, milliseconds since the Unix epoch (wall clock: replicas need synchronised
    /// clocks, with skew well below the lease time).
    pub expires_at_ms: u64,
}

impl Lease {
    /// Whether the lease has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms < now_ms
    }
}

/// A replica's heartbeat: it is alive until `expires_at_ms`, and takes at most `cap`
/// Environments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaRecord {
    /// Its identity, as in its leases.
    pub id: String,
    /// `--max-environments-per-replica`, if set.
    #[serde(default)]
    pub cap: Option<u32>,
    /// Milliseconds since the Unix epoch after which it counts as gone.
    pub expires_at_ms: u64,
}

/// What every replica can read of an Environment: which replica reconciled it last (or
/// took its lease last) and when its last reconcile completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRecord {
    /// The Environment.
    pub environment: String,
    /// The replica that last took its lease or completed a reconcile of it.
    pub holder: Option<String>,
    /// When its last reconcile completed, milliseconds since the epoch.
    pub last_reconciled_ms: Option<u64>,
}

/// An Environment suspended by `mlspace-gitops suspend` (or `POST
/// /api/v1/environments/ENV/suspend`): not reconciled until resumed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Suspension {
    /// The Environment.
    pub environment: String,
    /// Why, as the caller gave it.
    pub reason: Option<String>,
    /// Who asked, as the caller named itself (free text, not authenticated beyond the
    /// control token).
    pub by: Option<String>,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Everything that can go wrong reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Stored state cannot be read; nothing may be pruned on its account until it is fixed.
    #[error("corrupt state in {location}: {detail}")]
    Corrupt {
        /// The file, or the table and key, that cannot be read.
        location: String,
        /// What is wrong (parse error with line and column, missing attribute, ...).
        detail: String,
    },
    /// The write carried a lease that is no longer current (taken over or released).
    #[error(
        "lease for environment {environment} with token {token} is no longer held; write refused"
    )]
    Fenced {
        /// Environment whose lease was lost.
        environment: String,
        /// The stale token the write carried.
        token: u64,
    },
    /// Another replica holds the lease.
    #[error(
        "environment {environment} is leased by {holder} until {expires_at_ms} (ms since epoch)"
    )]
    LeaseHeld {
        /// Environment asked for.
        environment: String,
        /// Current holder.
        holder: String,
        /// When its lease expires, milliseconds since the Unix epoch.
        expires_at_ms: u64,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A DynamoDB call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// `--state` is neither empty nor `dynamodb://TABLE`, or lacks what it needs.
    #[error("invalid state store {spec:?}: {reason}")]
    InvalidSpec {
        /// The value given.
        spec: String,
        /// Why it is refused.
        reason: String,
    },
    /// The environment name cannot name a state file or key.
    #[error(
        "invalid environment name {0:?}: expected letters, digits, '.', '_' or '-' (at most 128)"
    )]
    InvalidEnvironment(String),
    /// An entry or record given for one environment names another.
    #[error("state for environment {expected} given an entry of environment {found}")]
    WrongEnvironment {
        /// Environment written.
        expected: String,
        /// Environment the entry names.
        found: String,
    },
    /// The DynamoDB state table exists with another key schema, or never became ACTIVE.
    #[error("state table {table}: {detail}")]
    Table {
        /// Table name.
        table: String,
        /// What is wrong.
        detail: String,
    },
}

impl StateError {
    /// Whether stored state could not be read (callers then refuse to prune).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StateError::Corrupt { .. })
    }
}

/// Where the daemon keeps its inventory, history and leases.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Where the state lives, for logs (`file:DIR` or `dynamodb://TABLE`).
    fn location(&self) -> String;

    /// Every resource recorded for `environment`, ordered by (kind, name).
    /// [`StateError::Corrupt`] when any entry cannot be read.
    async fn inventory(&self, environment: &str) -> Result<Vec<InventoryEntry>, StateError>;

    /// Insert or replace `upserts` and forget `removals` (removals win over upserts of the same
    /// resource). With `fence`, the write happens only while that lease is still current
    /// ([`StateError::Fenced`] otherwise); an empty write then just checks the lease.
    async fn record(
        &self,
        environment: &str,
        upserts: &[InventoryEntry],
        removals: &[ResourceId],
        fence: Option<&Lease>,
    ) -> Result<(), StateError>;

    /// Append one reconcile's record, fenced like [`StateStore::record`].
    async fn append_history(
        &self,
        rec: &HistoryRecord,
        fence: Option<&Lease>,
    ) -> Result<(), StateError>;

    /// The latest `limit` records of `environment`, newest first.
    async fn history(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, StateError>;

    /// Take the lease when it is free or expired (token + 1), renew it when `holder` already
    /// holds it (same token), else [`StateError::LeaseHeld`].
    async fn acquire_lease(
        &self,
        environment: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StateError>;

    /// Give the lease up so another replica can take it at once. A lease already lost is
    /// left alone. The token is kept so the next holder's is still greater.
    async fn release_lease(&self, lease: &Lease) -> Result<(), StateError>;

    /// Register or renew a replica's heartbeat.
    async fn heartbeat(&self, replica: &ReplicaRecord) -> Result<(), StateError>;

    /// Remove a replica's heartbeat (it shuts down), so the others share its Environments
    /// at once instead of after its heartbeat expires.
    async fn leave(&self, replica: &str) -> Result<(), StateError>;

    /// The replicas whose heartbeat has not expired, ordered by id.
    async fn replicas(&self) -> Result<Vec<ReplicaRecord>, StateError>;

    /// Record that `lease`'s holder completed a reconcile at `at_ms`, fenced like
    /// [`StateStore::record`].
    async fn mark_reconciled(&self, lease: &Lease, at_ms: u64) -> Result<(), StateError>;

    /// Every Environment that has had a lease, ordered by name.
    async fn environments(&self) -> Result<Vec<EnvironmentRecord>, StateError>;

    /// The suspension of `environment`, `None` when it is not suspended.
    /// [`StateError::Corrupt`] when the record cannot be read.
    async fn suspension(&self, environment: &str) -> Result<Option<Suspension>, StateError>;

    /// Suspend `environment` (`Some`, replacing an earlier suspension) or resume it (`None`;
    /// resuming one that is not suspended is not an error). Not fenced: any replica may
    /// write it, since the control request may reach any of them.
    async fn set_suspension(
        &self,
        environment: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), StateError>;
}

/// Which backend a `--state` value selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// JSON files under `--state-dir/state/`.
    File,
    /// A DynamoDB table.
    DynamoDb {
        /// Table name.
        table: String,
    },
}

impl Backend {
    /// Parse `--state`: absent, empty or `file` is the file backend, `dynamodb://TABLE` the
    /// DynamoDB one.
    pub fn parse(spec: Option<&str>) -> Result<Backend, StateError> {
        let spec = match spec.map(str::trim) {
            None | Some("") | Some("file") => return Ok(Backend::File),
            Some(s) => s,
        };
        let invalid = |reason: &str| StateError::InvalidSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let table = spec
            .strip_prefix("dynamodb://")
            .ok_or_else(|| invalid("expected dynamodb://TABLE (or nothing, for files)"))?;
        // DynamoDB's own table-name rule, checked here so a typo fails before any call.
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(invalid(
                "table names are 3 to 255 letters, digits, '_', '-' or '.'",
            ));
        }
        Ok(Backend::DynamoDb {
            table: table.to_string(),
        })
    }

    /// Whether this backend needs AWS clients.
    pub fn needs_aws(&self) -> bool {
        matches!(self, Backend::DynamoDb { .. })
    }
}

/// Open the store `spec` selects (see [`Backend::parse`]); the DynamoDB table is created when
/// missing, which is why this is async.
pub async fn open(
    spec: Option<&str>,
    state_dir: &Path,
    aws: Option<&AwsContext>,
) -> Result<Box<dyn StateStore>, StateError> {
    match Backend::parse(spec)? {
        Backend::File => Ok(Box::new(file::FileStore::open(state_dir)?)),
        Backend::DynamoDb { table } => {
            let aws = aws.ok_or_else(|| StateError::InvalidSpec {
                spec: spec.unwrap_or_default().to_string(),
                reason: "a DynamoDB state table needs AWS clients".into(),
            })?;
            Ok(Box::new(dynamodb::DynamoStore::open(aws, &table).await?))
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Refuse environment names that could escape the state directory or clash with its files.
pub(crate) fn check_environment(environment: &str) -> Result<(), StateError> {
    let ok = !environment.is_empty()
        && environment.len() <= 128
        && !environment.starts_with('.')
        && environment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidEnvironment(environment.to_string()))
    }
}

/// Check every upsert names `environment`.
pub(crate) fn check_entries(
    environment: &str,
    upserts: &[InventoryEntry],
) -> Result<(), StateError> {
    check_environment(environment)?;
    match upserts.iter().find(|e| e.environment != environment) {
        Some(e) => Err(StateError::WrongEnvironment {
            expected: environment.to_string(),
            found: e.environment.clone(),
        }),
        None => Ok(()),
    }
}

/// A deserialization error with the path of the offending field (none for the top level).
pub(crate) fn path_error<E: std::fmt::Display>(e: &serde_path_to_error::Error<E>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_spec_parsing() {
        assert_eq!(Backend::parse(None).unwrap(), Backend::File);
        assert_eq!(Backend::parse(Some("")).unwrap(), Backend::File);
        assert_eq!(
            Backend::parse(Some("dynamodb://mlspace-gitops-state")).unwrap(),
            Backend::DynamoDb {
                table: "mlspace-gitops-state".into()
            }
        );
        for bad in [
            "dynamodb://",
            "dynamodb://a b",
            "s3://bucket",
            "dynamodb://x",
        ] {
            assert!(
                matches!(
                    Backend::parse(Some(bad)),
                    Err(StateError::InvalidSpec { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn environment_names_stay_inside_the_state_dir() {
        for ok in ["dev", "prod-1", "a.b_c"] {
            check_environment(ok).unwrap();
        }
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert!(check_environment(bad).is_err(), "{bad}");
        }
    }
}
