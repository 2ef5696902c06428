//! The source stage: where the manifests come from. A [`Source`] is either a git branch
//! (fetched through libgit2 into a cache under the state directory) or a local directory,
//! and [`Source::sync`] turns it into a [`Revision`]: an id plus a directory holding exactly
//! the manifests of that revision.
//!
//! Credentials never leave this module in text: locations are shown redacted
//! ([`redact_url`]) and every error message is scrubbed of tokens and URL userinfo.

mod git;
mod known_hosts;
mod local;
pub mod revision;
mod url;
mod verify;
mod watch;

use std::fmt;
use std::path::PathBuf;

use crate::manifest::read::Limits;
use crate::secret::Secret;

pub use git::DEFAULT_MAX_FETCH_BYTES;
pub use url::redact_url;
pub use verify::{AllowedSigners, SignedCommit, Verified, VerifyError, REASONS as VERIFY_REASONS};

/// Errors of the source stage. Every one is worth retrying later (the remote may come
/// back, the branch may be pushed) except [`SourceError::Config`]. No message contains a
/// token or URL credentials.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configuration cannot work (bad branch name, bad manifests path, a location that
    /// is neither a directory nor a git URL).
    #[error("invalid source configuration: {0}")]
    Config(String),
    /// The remote could not be reached or refused the connection (network, TLS, SSH host
    /// key, authentication).
    #[error("cannot connect to {location}: {message}")]
    Connect {
        /// The location, redacted.
        location: String,
        /// Why.
        message: String,
    },
    /// The remote has no such branch (yet).
    #[error("branch {branch:?} does not exist at {location}")]
    BranchNotFound {
        /// The location, redacted.
        location: String,
        /// The branch asked for.
        branch: String,
    },
    /// Fetching the branch failed.
    #[error("cannot fetch branch {branch:?} from {location}: {message}")]
    Fetch {
        /// The location, redacted.
        location: String,
        /// The branch.
        branch: String,
        /// Why.
        message: String,
    },
    /// The local cache repository failed.
    #[error("git cache of {location}: {message}")]
    Cache {
        /// The location, redacted.
        location: String,
        /// What failed.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot access {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The directory could not be watched.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The head commit failed signature verification (see [`Source::verify_commits`]): the
    /// source was reached, but this revision must not be used. Retried at every sync, so a
    /// fixed allowed-signers file takes effect without a new commit.
    #[error("commit {commit} failed signature verification")]
    Unverified {
        /// The full commit id.
        commit: String,
        /// Why.
        #[source]
        source: VerifyError,
    },
    /// The source was reached, but this revision cannot be used as it is (the manifests
    /// path is a link or a file in it, a file over the size limits): refused like an
    /// invalid revision, and the last good one stays in force.
    #[error("revision {commit} is refused: {message}")]
    InvalidRevision {
        /// The full commit id.
        commit: String,
        /// Why.
        message: String,
    },
    /// The blocking task doing the work died.
    #[error("source task failed: {0}")]
    Task(String),
}

impl SourceError {
    /// Whether the failure is on this machine (the state directory: a full disk, a
    /// read-only file system, a damaged cache) rather than at the source.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            SourceError::Io { .. } | SourceError::Cache { .. } | SourceError::Task(_)
        )
    }
}

/// Where the manifests come from.
#[derive(Clone)]
pub struct SourceConfig {
    /// Git URL (https://, ssh://, git@host:path, file://) or a local directory path.
    /// Credentials written into a URL (`https://user:token@host/...`) are used like those
    /// in `auth` (which win) and are never shown.
    pub location: String,
    /// Branch to follow (git only).
    pub branch: String,
    /// Manifests directory inside the repository (git only; a local directory is itself the
    /// manifests directory).
    pub path: PathBuf,
    /// State directory; the git cache and checkouts live under `state_dir/git/`.
    pub state_dir: PathBuf,
    /// Git credentials and SSH host keys.
    pub auth: GitAuth,
}

// By hand: the location may carry credentials.
impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("location", &redact_url(&self.location))
            .field("branch", &self.branch)
            .field("path", &self.path)
            .field("state_dir", &self.state_dir)
            .field("auth", &self.auth)
            .finish()
    }
}

/// Git credentials and SSH host verification.
#[derive(Clone, Default, Debug)]
pub struct GitAuth {
    /// HTTPS token, sent as the password (user name from `username`, else
    /// `x-access-token`).
    pub token: Option<Secret>,
    /// User name for the token, or for SSH when the URL has none.
    pub username: Option<String>,
    /// Private key file for SSH (without passphrase).
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file; SSH hosts not in it, or presenting another key, are refused.
    pub known_hosts: Option<PathBuf>,
}

/// One revision of the manifests.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// Full commit id for git; `dir-<16 hex of SHA-256 over every manifest file's relative
    /// path and content>` for a local directory.
    pub id: String,
    /// Where the manifests of this revision are on disk. For git: a checkout under the
    /// state directory holding exactly this commit's files. When the configured path does
    /// not exist in the commit, this is where it would be and does not exist; deciding
    /// what an absent directory means is left to the caller.
    pub manifests_dir: PathBuf,
    /// `Name <email>` of the commit author (git).
    pub author: Option<String>,
    /// First line of the commit message (git).
    pub message: Option<String>,
}

/// A configured source.
#[derive(Debug)]
pub struct Source {
    kind: Kind,
    last_fetched: bool,
    limits: Limits,
}

#[derive(Debug)]
enum Kind {
    Local(PathBuf),
    Git(Box<git::GitSource>),
}

impl Source {
    /// A location that is an existing directory is a local source; anything else must be a
    /// git URL. Nothing is contacted yet.
    pub fn new(cfg: SourceConfig) -> Result<Source, SourceError> {
        let path = PathBuf::from(&cfg.location);
        let kind = if path.is_dir() {
            Kind::Local(path)
        } else if let Some(url) = url::GitUrl::parse(&cfg.location) {
            Kind::Git(Box::new(git::GitSource::new(&cfg, &url)?))
        } else {
            return Err(SourceError::Config(format!(
                "{} is neither an existing directory nor a git URL",
                redact_url(&cfg.location)
            )));
        };
        Ok(Source {
            kind,
            last_fetched: false,
            limits: Limits::default(),
        })
    }

    /// The sizes a revision may have (default: [`Limits::default`]). A git commit over
    /// them is refused with [`SourceError::InvalidRevision`] before it is checked out; a
    /// local directory is read within them.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        if let Kind::Git(git) = &mut self.kind {
            git.set_limits(limits);
        }
    }

    /// The bytes one git fetch may transfer (default [`DEFAULT_MAX_FETCH_BYTES`], 1 GiB);
    /// a fetch over them is stopped and reported as a fetch failure.
    pub fn set_max_fetch_bytes(&mut self, max: u64) {
        if let Kind::Git(git) = &mut self.kind {
            git.set_max_fetch_bytes(max);
        }
    }

    /// From now on, accept a git revision only when its head commit is SSH-signed by a key
    /// of the allowed-signers file `allowed_signers` (see [`AllowedSigners`]); other
    /// revisions fail [`Source::sync`] with [`SourceError::Unverified`] before anything is
    /// checked out. The file is checked now and re-read at every sync, so keys can rotate
    /// without a restart. A local directory has no commits to verify: a configuration error.
    pub fn verify_commits(&mut self, allowed_signers: PathBuf) -> Result<(), SourceError> {
        let Kind::Git(git) = &mut self.kind else {
            return Err(SourceError::Config(
                "commit signatures can only be verified for a git source, not a local directory"
                    .into(),
            ));
        };
        let signers = AllowedSigners::load(&allowed_signers)
            .map_err(|e| SourceError::Config(crate::aws::DisplayChain(&e).to_string()))?;
        if signers.is_empty() {
            tracing::warn!(file = %allowed_signers.display(), "the allowed signers file lists no key: every revision will be refused");
        }
        git.verify_with(allowed_signers);
        Ok(())
    }

    /// Whether this is a git source.
    pub fn is_git(&self) -> bool {
        matches!(self.kind, Kind::Git(_))
    }

    /// The location with any credentials removed.
    pub fn display_location(&self) -> String {
        match &self.kind {
            Kind::Local(dir) => dir.display().to_string(),
            Kind::Git(git) => git.display().to_string(),
        }
    }

    /// Reach the source and return the current revision.
    ///
    /// Git: ask the remote for the branch head (ls-remote); fetch only when that commit is
    /// not in the cache yet (first sync, or the branch moved); then make sure a checkout
    /// directory under the state directory holds exactly that commit's manifests. Local
    /// directory: compute the digest. The work runs on Tokio's blocking pool.
    pub async fn sync(&mut self) -> Result<Revision, SourceError> {
        self.last_fetched = false;
        match &mut self.kind {
            Kind::Local(dir) => {
                let (d, limits) = (dir.clone(), self.limits);
                let id = tokio::task::spawn_blocking(move || local::digest(&d, &limits))
                    .await
                    .map_err(|e| SourceError::Task(e.to_string()))??;
                Ok(Revision {
                    id,
                    manifests_dir: dir.clone(),
                    author: None,
                    message: None,
                })
            }
            Kind::Git(git) => {
                let job = git.as_ref().clone();
                let synced = tokio::task::spawn_blocking(move || job.sync_blocking())
                    .await
                    .map_err(|e| SourceError::Task(e.to_string()))??;
                git.set_current(synced.checkout);
                self.last_fetched = synced.fetched;
                Ok(synced.revision)
            }
        }
    }

    /// True when the last sync fetched objects from the remote; false when the remote
    /// head was already in the cache, for local sources, and after a failed sync.
    pub fn last_sync_fetched(&self) -> bool {
        self.last_fetched
    }

    /// Local directories only: a receiver that gets one `()` per batch of file-system
    /// changes (the first event starts a ~500 ms batch). The watch lasts as long as the
    /// receiver. `None` for git. Must be called inside a Tokio runtime.
    pub fn watch(&self) -> Result<Option<tokio::sync::mpsc::Receiver<()>>, SourceError> {
        match &self.kind {
            Kind::Local(dir) => watch::watch_dir(dir).map(Some),
            Kind::Git(_) => Ok(None),
        }
    }
}
