//! The file backend: per environment, under `STATE_DIR/state/`,
//! - `<env>.json`: format version, inventory and the latest history records;
//! - `<env>.lease`: the lease (holder, token, expiry), kept after release so tokens only grow;
//! - `<env>.suspended`: the suspension, present only while the environment is suspended;
//! - `<env>.lock`: present while one writer updates the files above;
//!
//! and under `STATE_DIR/state/replicas/`, one `<hash of the replica id>.json` per replica
//! heartbeat (its id, cap and expiry). The lease file also keeps when the Environment's last
//! reconcile completed, which every replica reads.
//!
//! Every file is replaced atomically: written to a temp file in the same directory, fsynced,
//! renamed over the old one, then the directory is fsynced. A crash at any point leaves the
//! old file or the new one (and possibly a temp file, removed by the next writer).
//!
//! Writers of one environment are serialised by the lock file, created with `O_EXCL`
//! (`create_new`), so leases and fencing hold between processes of one host. The lock file
//! names its writer (`PID HOSTNAME PIDNS`); a lock whose writer no longer runs on this host
//! and in this PID namespace, or
//! older than [`STALE_LOCK`] whoever wrote it, is taken to be left by a crash and removed.
//! Writers hold it for milliseconds. This is not a distributed lock: replicas on several hosts need the DynamoDB
//! backend.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{
    check_entries, check_environment, now_ms, path_error, EnvironmentRecord, HistoryRecord,
    InventoryEntry, Lease, ReplicaRecord, StateError, StateStore, Suspension,
};
use crate::plan::ResourceId;

/// Format version written in every state file.
pub const FORMAT_VERSION: u32 = 1;

/// History records kept per environment by default.
pub const DEFAULT_HISTORY_CAP: usize = 200;

/// Age after which a lock file is considered left behind by a crashed writer.
pub const STALE_LOCK: Duration = Duration::from_secs(10);

/// How long a writer waits for the lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Makes temp file names unique within this process (the pid makes them unique between).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// State in JSON files under a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    history_cap: usize,
}

/// `<env>.json`.
#[derive(Debug, Serialize, Deserialize)]
struct EnvFile {
    version: u32,
    environment: String,
    inventory: Vec<InventoryEntry>,
    /// Oldest first.
    history: Vec<HistoryRecord>,
}

/// Read before the whole file so a newer format is reported as such, not as a schema error.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// `<env>.lease`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseFile {
    /// `None` once released.
    holder: Option<String>,
    token: u64,
    expires_at_ms: u64,
    /// When the last reconcile completed (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_reconciled_ms: Option<u64>,
}

impl FileStore {
    /// Use `state_dir/state/`, creating it when missing.
    pub fn open(state_dir: &Path) -> Result<FileStore, StateError> {
        let dir = state_dir.join("state");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(FileStore {
            dir,
            history_cap: DEFAULT_HISTORY_CAP,
        })
    }

    /// Keep at most `cap` history records per environment (at least one).
    pub fn with_history_cap(mut self, cap: usize) -> FileStore {
        self.history_cap = cap.max(1);
        self
    }

    /// The directory holding the state files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of `environment`.
    pub fn state_file(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.json"))
    }

    /// The lease file of `environment`.
    pub fn lease_file(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.lease"))
    }

    /// The suspension file of `environment` (present only while it is suspended).
    pub fn suspension_file(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.suspended"))
    }

    fn lock_file(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.lock"))
    }

    /// The directory of replica heartbeats.
    fn replicas_dir(&self) -> PathBuf {
        self.dir.join("replicas")
    }

    /// The heartbeat file of replica `id`: named by a hash, since ids hold host names.
    fn replica_file(&self, id: &str) -> PathBuf {
        use sha2::Digest;
        let h = sha2::Sha256::digest(id.as_bytes());
        self.replicas_dir()
            .join(format!("{}.json", hex::encode(&h[..12])))
    }

    fn heartbeat_sync(&self, replica: &ReplicaRecord) -> Result<(), StateError> {
        let dir = self.replicas_dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let bytes = serde_json::to_vec_pretty(replica).expect("a heartbeat serializes");
        write_atomic(&self.replica_file(&replica.id), &bytes)
    }

    fn leave_sync(&self, id: &str) -> Result<(), StateError> {
        let path = self.replica_file(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    fn replicas_sync(&self) -> Result<Vec<ReplicaRecord>, StateError> {
        let dir = self.replicas_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let now = now_ms();
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue; // a temp file of a heartbeat being written
            }
            let Some(bytes) = read_optional(&path)? else {
                continue; // left between the listing and the read
            };
            let r: ReplicaRecord =
                serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                    location: path.display().to_string(),
                    detail: e.to_string(),
                })?;
            if r.expires_at_ms >= now {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn mark_reconciled_sync(&self, lease: &Lease, at_ms: u64) -> Result<(), StateError> {
        let environment = lease.environment.as_str();
        check_environment(environment)?;
        self.locked(environment, || {
            self.check_fence(environment, Some(lease))?;
            let mut l = self
                .load_lease(environment)?
                .expect("a checked fence has a lease file");
            l.last_reconciled_ms = Some(at_ms);
            self.save_lease(environment, &l)
        })
    }

    fn environments_sync(&self) -> Result<Vec<EnvironmentRecord>, StateError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
        {
            let name = entry.file_name();
            let Some(env) = name.to_str().and_then(|n| n.strip_suffix(".lease")) else {
                continue;
            };
            if let Some(l) = self.load_lease(env)? {
                out.push(EnvironmentRecord {
                    environment: env.to_string(),
                    holder: l.holder,
                    last_reconciled_ms: l.last_reconciled_ms,
                });
            }
        }
        out.sort_by(|a, b| a.environment.cmp(&b.environment));
        Ok(out)
    }

    /// Read `<env>.json`; a missing file is an empty state.
    fn load(&self, environment: &str) -> Result<EnvFile, StateError> {
        let path = self.state_file(environment);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(EnvFile {
                version: FORMAT_VERSION,
                environment: environment.to_string(),
                inventory: Vec::new(),
                history: Vec::new(),
            });
        };
        let corrupt = |detail: String| StateError::Corrupt {
            location: path.display().to_string(),
            detail,
        };
        let version = serde_json::from_slice::<VersionOnly>(&bytes)
            .map_err(|e| corrupt(e.to_string()))?
            .version;
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads version {FORMAT_VERSION}"
            )));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let file: EnvFile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| corrupt(path_error(&e)))?;
        if file.environment != environment {
            return Err(corrupt(format!(
                "holds environment {:?}, expected {environment:?}",
                file.environment
            )));
        }
        Ok(file)
    }

    fn save(&self, environment: &str, file: &EnvFile) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(file).expect("state serializes");
        write_atomic(&self.state_file(environment), &bytes)
    }

    fn load_lease(&self, environment: &str) -> Result<Option<LeaseFile>, StateError> {
        let path = self.lease_file(environment);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                location: path.display().to_string(),
                detail: e.to_string(),
            })
    }

    fn save_lease(&self, environment: &str, lease: &LeaseFile) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(lease).expect("lease serializes");
        write_atomic(&self.lease_file(environment), &bytes)
    }

    /// Refuse the write unless `fence` is the environment's current lease.
    fn check_fence(&self, environment: &str, fence: Option<&Lease>) -> Result<(), StateError> {
        let Some(fence) = fence else {
            return Ok(());
        };
        let current = self.load_lease(environment)?;
        let held = fence.environment == environment
            && current.is_some_and(|l| {
                l.token == fence.token && l.holder.as_deref() == Some(fence.holder.as_str())
            });
        if held {
            Ok(())
        } else {
            Err(StateError::Fenced {
                environment: environment.to_string(),
                token: fence.token,
            })
        }
    }

    /// Run `f` holding the environment's lock, after removing temp files a crash left behind.
    fn locked<T>(
        &self,
        environment: &str,
        f: impl FnOnce() -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let _guard = LockGuard::acquire(self.lock_file(environment))?;
        self.remove_stale_temps(environment);
        f()
    }

    /// Temp files of this environment's files. Every writer holds the lock, so any present
    /// now is from a writer that died before its rename.
    fn remove_stale_temps(&self, environment: &str) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let targets = [
            format!("{environment}.json"),
            format!("{environment}.lease"),
            format!("{environment}.suspended"),
        ];
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(target) = name.to_str().and_then(temp_target) else {
                continue;
            };
            if targets.iter().any(|t| t == target) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn record_sync(
        &self,
        environment: &str,
        upserts: &[InventoryEntry],
        removals: &[ResourceId],
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        check_entries(environment, upserts)?;
        self.locked(environment, || {
            self.check_fence(environment, fence)?;
            if upserts.is_empty() && removals.is_empty() {
                return Ok(());
            }
            // A corrupt file is refused rather than overwritten: the operator may still
            // recover the entries it held.
            let mut file = self.load(environment)?;
            for u in upserts {
                file.inventory
                    .retain(|e| !(e.kind == u.kind && e.name == u.name));
                file.inventory.push(u.clone());
            }
            file.inventory
                .retain(|e| !removals.iter().any(|(k, n)| e.kind == *k && e.name == *n));
            file.inventory
                .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
            self.save(environment, &file)
        })
    }

    fn append_history_sync(
        &self,
        rec: &HistoryRecord,
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        let environment = rec.environment.as_str();
        check_environment(environment)?;
        self.locked(environment, || {
            self.check_fence(environment, fence)?;
            let mut file = self.load(environment)?;
            file.history.push(rec.clone());
            let excess = file.history.len().saturating_sub(self.history_cap);
            file.history.drain(..excess);
            self.save(environment, &file)
        })
    }

    fn history_sync(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, StateError> {
        check_environment(environment)?;
        let mut history = self.load(environment)?.history;
        history.reverse();
        // Stable: records with the same time stay newest-appended first.
        history.sort_by_key(|r| std::cmp::Reverse(r.at));
        history.truncate(limit);
        Ok(history)
    }

    fn acquire_lease_sync(
        &self,
        environment: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StateError> {
        check_environment(environment)?;
        self.locked(environment, || {
            let now = now_ms();
            let current = self.load_lease(environment)?;
            let last_reconciled_ms = current.as_ref().and_then(|l| l.last_reconciled_ms);
            let token = match current {
                None => 1,
                Some(l) if l.holder.as_deref() == Some(holder) => l.token,
                Some(l) if l.holder.is_none() || l.expires_at_ms < now => l.token + 1,
                Some(l) => {
                    return Err(StateError::LeaseHeld {
                        environment: environment.to_string(),
                        holder: l.holder.unwrap_or_default(),
                        expires_at_ms: l.expires_at_ms,
                    })
                }
            };
            let expires_at_ms = now.saturating_add(ttl.as_millis() as u64);
            self.save_lease(
                environment,
                &LeaseFile {
                    holder: Some(holder.to_string()),
                    token,
                    expires_at_ms,
                    last_reconciled_ms,
                },
            )?;
            Ok(Lease {
                environment: environment.to_string(),
                holder: holder.to_string(),
                token,
                expires_at_ms,
            })
        })
    }

    fn suspension_sync(&self, environment: &str) -> Result<Option<Suspension>, StateError> {
        check_environment(environment)?;
        let path = self.suspension_file(environment);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let corrupt = |detail: String| StateError::Corrupt {
            location: path.display().to_string(),
            detail,
        };
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let s: Suspension =
            serde_path_to_error::deserialize(&mut de).map_err(|e| corrupt(path_error(&e)))?;
        if s.environment != environment {
            return Err(corrupt(format!(
                "holds environment {:?}, expected {environment:?}",
                s.environment
            )));
        }
        Ok(Some(s))
    }

    fn set_suspension_sync(
        &self,
        environment: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), StateError> {
        check_environment(environment)?;
        if let Some(s) = suspension.filter(|s| s.environment != environment) {
            return Err(StateError::WrongEnvironment {
                expected: environment.to_string(),
                found: s.environment.clone(),
            });
        }
        let path = self.suspension_file(environment);
        self.locked(environment, || match suspension {
            Some(s) => write_atomic(
                &path,
                &serde_json::to_vec_pretty(s).expect("suspension serializes"),
            ),
            None => {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(io_err(&path)(e)),
                }
                // The removal is durable only once the directory is.
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&self.dir))
            }
        })
    }

    fn release_lease_sync(&self, lease: &Lease) -> Result<(), StateError> {
        let environment = lease.environment.as_str();
        check_environment(environment)?;
        self.locked(environment, || match self.load_lease(environment)? {
            Some(l) if l.token == lease.token && l.holder.as_deref() == Some(&lease.holder) => self
                .save_lease(
                    environment,
                    &LeaseFile {
                        holder: None,
                        token: l.token,
                        expires_at_ms: 0,
                        last_reconciled_ms: l.last_reconciled_ms,
                    },
                ),
            _ => Ok(()),
        })
    }
}

#[async_trait]
impl StateStore for FileStore {
    fn location(&self) -> String {
        format!("file:{}", self.dir.display())
    }

    async fn inventory(&self, environment: &str) -> Result<Vec<InventoryEntry>, StateError> {
        let (me, env) = (self.clone(), environment.to_string());
        // Readers take no lock: files are only ever replaced whole, by rename.
        blocking(move || {
            check_environment(&env)?;
            Ok(me.load(&env)?.inventory)
        })
        .await
    }

    async fn record(
        &self,
        environment: &str,
        upserts: &[InventoryEntry],
        removals: &[ResourceId],
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        let (me, env) = (self.clone(), environment.to_string());
        let (upserts, removals, fence) = (upserts.to_vec(), removals.to_vec(), fence.cloned());
        blocking(move || me.record_sync(&env, &upserts, &removals, fence.as_ref())).await
    }

    async fn append_history(
        &self,
        rec: &HistoryRecord,
        fence: Option<&Lease>,
    ) -> Result<(), StateError> {
        let (me, rec, fence) = (self.clone(), rec.clone(), fence.cloned());
        blocking(move || me.append_history_sync(&rec, fence.as_ref())).await
    }

    async fn history(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>, StateError> {
        let (me, env) = (self.clone(), environment.to_string());
        blocking(move || me.history_sync(&env, limit)).await
    }

    async fn acquire_lease(
        &self,
        environment: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StateError> {
        let (me, env, holder) = (self.clone(), environment.to_string(), holder.to_string());
        blocking(move || me.acquire_lease_sync(&env, &holder, ttl)).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StateError> {
        let (me, lease) = (self.clone(), lease.clone());
        blocking(move || me.release_lease_sync(&lease)).await
    }

    async fn heartbeat(&self, replica: &ReplicaRecord) -> Result<(), StateError> {
        let (me, r) = (self.clone(), replica.clone());
        blocking(move || me.heartbeat_sync(&r)).await
    }

    async fn leave(&self, replica: &str) -> Result<(), StateError> {
        let (me, id) = (self.clone(), replica.to_string());
        blocking(move || me.leave_sync(&id)).await
    }

    async fn replicas(&self) -> Result<Vec<ReplicaRecord>, StateError> {
        let me = self.clone();
        blocking(move || me.replicas_sync()).await
    }

    async fn mark_reconciled(&self, lease: &Lease, at_ms: u64) -> Result<(), StateError> {
        let (me, lease) = (self.clone(), lease.clone());
        blocking(move || me.mark_reconciled_sync(&lease, at_ms)).await
    }

    async fn environments(&self) -> Result<Vec<EnvironmentRecord>, StateError> {
        let me = self.clone();
        blocking(move || me.environments_sync()).await
    }

    async fn suspension(&self, environment: &str) -> Result<Option<Suspension>, StateError> {
        let (me, env) = (self.clone(), environment.to_string());
        blocking(move || me.suspension_sync(&env)).await
    }

    async fn set_suspension(
        &self,
        environment: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), StateError> {
        let (me, env, s) = (self.clone(), environment.to_string(), suspension.cloned());
        blocking(move || me.set_suspension_sync(&env, s.as_ref())).await
    }
}

/// Run blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StateError::Io {
            path: PathBuf::new(),
            source: io::Error::other(e),
        }),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's bytes, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Temp file names are `.<target>.<pid>.<n>.tmp`; the target they would replace.
fn temp_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = inner.rsplitn(3, '.');
    let n = parts.next()?;
    let pid = parts.next()?;
    let target = parts.next()?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(n) && numeric(pid)).then_some(target)
}

/// Replace `target` with `bytes` so that a crash leaves either the old or the new content.
fn write_atomic(target: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = target.parent().expect("state files live in a directory");
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .expect("state file names are UTF-8");
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        // The data must be on disk before the rename makes it visible.
        f.sync_all()
    };
    if let Err(e) = write().and_then(|_| fs::rename(&tmp, target)) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(target)(e));
    }
    // The rename itself is durable only once the directory is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Holds `<env>.lock` until dropped.
struct LockGuard {
    path: PathBuf,
}

impl LockGuard {
    fn acquire(path: PathBuf) -> Result<LockGuard, StateError> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(2);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    // For whoever finds a stale lock: which process on which host left it.
                    let _ = writeln!(
                        f,
                        "{} {} {}",
                        std::process::id(),
                        hostname(),
                        pid_namespace()
                    );
                    return Ok(LockGuard { path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            if writer_is_gone(&path) {
                tracing::warn!(lock = %path.display(), "removing a state lock whose writer no longer runs");
                let _ = fs::remove_file(&path);
                continue;
            }
            let age = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a > STALE_LOCK) {
                tracing::warn!(lock = %path.display(), "removing a stale state lock left by a crashed writer");
                let _ = fs::remove_file(&path);
                continue;
            }
            if start.elapsed() > LOCK_WAIT {
                return Err(io_err(&path)(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "state lock held too long by another writer",
                )));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }
}

/// This host's name, as the kernel has it (`unknown` where there is no `/proc`).
fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// This process's PID namespace (`pid:[INODE]`; empty where there is no `/proc`): two
/// containers can share a hostname and a volume but not their process ids.
fn pid_namespace() -> String {
    fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Whether the lock at `path` names a writer of this host and PID namespace that no longer
/// runs (it was killed). Only provable through `/proc`; a lock from another host or
/// container sharing the directory, one being written right now (still empty), or an
/// unreadable one is left to the age rule.
fn writer_is_gone(path: &Path) -> bool {
    let Ok(text) = fs::read_to_string(path) else {
        return false;
    };
    let mut parts = text.split_whitespace();
    let (Some(pid), Some(host), Some(ns)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let ours = pid_namespace();
    !ours.is_empty()
        && ns == ours
        && host == hostname()
        && pid != std::process::id()
        && !Path::new("/proc").join(pid.to_string()).exists()
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_map_back_to_their_target() {
        assert_eq!(temp_target(".dev.json.123.4.tmp"), Some("dev.json"));
        assert_eq!(temp_target(".a.json.json.1.2.tmp"), Some("a.json.json"));
        assert_eq!(temp_target(".dev.lease.9.0.tmp"), Some("dev.lease"));
        assert_eq!(temp_target("dev.json"), None);
        assert_eq!(temp_target(".dev.json.x.4.tmp"), None);
    }
}
