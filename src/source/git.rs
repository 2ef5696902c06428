//! Git sources through libgit2: a bare cache repository under the state directory, a cheap
//! ls-remote before every fetch, and one fresh checkout directory per commit.
//!
//! Layout under `state_dir/git/<name>-<hash of the redacted location>/`:
//! - `repo.git/`: the cache; `refs/remotes/origin/<branch>` keeps what was synced.
//! - `checkouts/<commit>-<path hash>/<path>/`: the manifests of a commit, written once
//!   (built under a temporary name, then renamed, so a directory there is always complete).
//!   The current and the previous checkout are kept, older ones removed.
//!
//! What a commit holds is untrusted: a blob over the file size limit, or a tree over the
//! revision size limit, refuses the revision before anything of it is written; symbolic
//! links are written as links and the loader applies its rule to them (a link leading
//! outside the manifests directory is refused, unread). Credentials stay with their
//! origin: redirects to another host are not followed, and the credential callback
//! answers only for the configured origin.
//!
//! Everything here blocks; [`super::Source::sync`] runs it on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Once;

use git2::cert::Cert;
use git2::{
    AutotagOption, CertificateCheckStatus, Commit, Cred, CredentialType, Direction, ErrorCode,
    FetchOptions, ObjectType, Oid, ProxyOptions, RemoteCallbacks, RemoteRedirect, Repository,
    RepositoryInitOptions, Tree,
};
use sha2::{Digest, Sha256};

use super::known_hosts;
use super::url::{redact_url, scrub, GitUrl, MIN_SCRUBBED_SECRET};
use super::{GitAuth, Revision, SourceConfig, SourceError};
use crate::manifest::read::{Bytes, Limits};
use crate::secret::Secret;
use crate::syntax::diag::escape_control;

/// User name sent with a token when none is configured (GitHub and most forges accept it).
const TOKEN_USER: &str = "x-access-token";
/// User name for SSH when neither the URL nor the configuration gives one.
const SSH_USER: &str = "git";
/// libgit2 waits this long for a TCP connection...
const CONNECT_TIMEOUT_MS: i32 = 30_000;
/// ...and this long for any read or write on it.
const IO_TIMEOUT_MS: i32 = 120_000;
/// Git file mode of a symbolic link.
const MODE_SYMLINK: i32 = 0o120000;
/// Bytes one fetch may transfer unless configured (`--max-fetch-size`): a push of a huge
/// pack cannot fill the state directory.
pub const DEFAULT_MAX_FETCH_BYTES: u64 = 1 << 30;

/// A git source and what is needed to sync it.
#[derive(Debug, Clone)]
pub(crate) struct GitSource {
    /// The URL handed to libgit2: credentials removed (they go through the callback), so
    /// no libgit2 message, config or log can contain them.
    url: String,
    branch: String,
    /// Manifests directory inside the repository, normalised (empty: the root).
    path: PathBuf,
    /// `state_dir/git/<key>`.
    dir: PathBuf,
    auth: GitAuth,
    /// Port for the known_hosts lookup (libgit2 gives the callback the host only).
    ssh_port: u16,
    /// Values scrubbed from every message, whatever their origin.
    secrets: Vec<Secret>,
    /// Checkout directory returned by the last successful sync.
    current: Option<PathBuf>,
    /// Allowed-signers file the head commit must be verified against, if any.
    allowed_signers: Option<PathBuf>,
    /// The configured location's origin: credentials go there only.
    origin: GitUrl,
    /// Sizes a checkout may have.
    limits: Limits,
    /// Bytes one fetch may transfer.
    max_fetch_bytes: u64,
}

/// What one sync produced.
pub(crate) struct Synced {
    pub revision: Revision,
    pub fetched: bool,
    pub checkout: PathBuf,
}

impl GitSource {
    /// Validate the configuration; nothing is touched on disk or the network yet.
    pub fn new(cfg: &SourceConfig, url: &GitUrl) -> Result<GitSource, SourceError> {
        let refname = format!("refs/heads/{}", cfg.branch);
        if cfg.branch.is_empty() || !git2::Reference::is_valid_name(&refname) {
            return Err(SourceError::Config(format!(
                "{:?} is not a valid branch name",
                cfg.branch
            )));
        }
        let path = repo_relative(&cfg.path)?;
        let display = redact_url(&cfg.location);

        // Credentials written into the URL are used like configured ones, through the
        // callback; configured ones win.
        let mut auth = cfg.auth.clone();
        let mut secrets: Vec<Secret> = auth.token.iter().cloned().collect();
        if let Some(password) = &url.password {
            secrets.push(Secret::new(password.clone()));
            if auth.token.is_none() {
                auth.token = Some(Secret::new(password.clone()));
                if auth.username.is_none() {
                    auth.username.clone_from(&url.user);
                }
            }
        } else if let Some(user) = url.user.as_ref().filter(|_| !url.is_ssh()) {
            if auth.token.is_some() {
                auth.username.get_or_insert_with(|| user.clone());
            } else {
                // `https://<token>@host/...`: forges take a token as the user name.
                secrets.push(Secret::new(user.clone()));
                auth.token = Some(Secret::new(user.clone()));
            }
        }
        if auth.token.is_some() && url.scheme == "http" {
            return Err(SourceError::Config(format!(
                "refusing to send a token in clear text to {display}; use https://"
            )));
        }
        if let Some(t) = &auth.token {
            let n = t.expose().chars().count();
            if n < MIN_SCRUBBED_SECRET {
                tracing::warn!(
                    characters = n,
                    "the git token is suspiciously short for a real token; it is used, but \
                     too short to be scrubbed from error messages"
                );
            }
        }

        static TIMEOUTS: Once = Once::new();
        TIMEOUTS.call_once(|| {
            // SAFETY: these libgit2 options are process-wide; they are set once, when the
            // first git source is built, before this process starts any git operation.
            unsafe {
                let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
                let _ = git2::opts::set_server_timeout_in_milliseconds(IO_TIMEOUT_MS);
            }
        });

        Ok(GitSource {
            dir: cfg.state_dir.join("git").join(cache_key(&display)),
            url: display,
            branch: cfg.branch.clone(),
            path,
            auth,
            ssh_port: url.port.unwrap_or(22),
            secrets,
            current: None,
            allowed_signers: None,
            origin: url.clone(),
            limits: Limits::default(),
            max_fetch_bytes: DEFAULT_MAX_FETCH_BYTES,
        })
    }

    /// The bytes one fetch may transfer; a fetch over them is cancelled.
    pub fn set_max_fetch_bytes(&mut self, max: u64) {
        self.max_fetch_bytes = max;
    }

    /// The sizes a checkout may have (per file, and in all).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The location without credentials.
    pub fn display(&self) -> &str {
        &self.url
    }

    /// Require a verified signature on every head commit from now on.
    pub fn verify_with(&mut self, allowed_signers: PathBuf) {
        self.allowed_signers = Some(allowed_signers);
    }

    /// Remember the checkout the daemon now reads, so the next prune keeps it.
    pub fn set_current(&mut self, checkout: PathBuf) {
        self.current = Some(checkout);
    }

    /// ls-remote, fetch if the head is not in the cache, check out. Blocking.
    pub fn sync_blocking(&self) -> Result<Synced, SourceError> {
        let repo = self.open_cache()?;
        let head = self.remote_head(&repo)?;
        // Having the commit is enough: it covers "unchanged since the last sync" and a
        // restart with a warm cache (a fetched commit always comes with its trees).
        let (oid, fetched) = if repo.find_commit(head).is_ok() {
            (head, false)
        } else {
            (self.fetch(&repo, head)?, true)
        };
        let commit = repo
            .find_commit(oid)
            .map_err(|e| self.cache_err("reading the head commit", &e))?;
        // Keeps the commit reachable and gives the next fetch something to negotiate from.
        repo.reference(&self.tracking_ref(), oid, true, "mlspace-gitops sync")
            .map_err(|e| self.cache_err("updating the branch reference", &e))?;
        // Before the checkout: unverified content is never written where it could be read.
        if let Some(file) = &self.allowed_signers {
            let signer = super::verify::verify_commit(&repo, &commit, file).map_err(|source| {
                SourceError::Unverified {
                    commit: oid.to_string(),
                    source,
                }
            })?;
            tracing::debug!(commit = %oid, key = %signer.fingerprint, principals = %signer.principals, "commit signature verified");
        }
        let checkout = self.checkout(&repo, &commit)?;
        let author = commit.author();
        let revision = Revision {
            id: oid.to_string(),
            manifests_dir: checkout.join(&self.path),
            // Whoever pushed wrote these: shown in logs, history and status, so escaped.
            author: Some(
                escape_control(&format!(
                    "{} <{}>",
                    String::from_utf8_lossy(author.name_bytes()),
                    String::from_utf8_lossy(author.email_bytes())
                ))
                .into_owned(),
            ),
            message: commit
                .summary_bytes()
                .map(|s| escape_control(&String::from_utf8_lossy(s)).into_owned()),
        };
        Ok(Synced {
            revision,
            fetched,
            checkout,
        })
    }

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Open the cache repository, creating it (or recreating a damaged one: it is only a
    /// cache).
    fn open_cache(&self) -> Result<Repository, SourceError> {
        let repo = self.open_or_create_cache()?;
        // libgit2 keeps the credentials it got when it follows a redirect, so a redirect
        // to another host would receive them: such redirects are not followed (the ls-remote
        // takes this from the repository's configuration; the fetch is told as well).
        let follows = repo
            .config()
            .and_then(|c| c.get_string("http.followRedirects"))
            .ok();
        if follows.as_deref() != Some("false") {
            repo.config()
                .and_then(|mut c| c.set_str("http.followRedirects", "false"))
                .map_err(|e| self.cache_err("configuring the cache", &e))?;
        }
        Ok(repo)
    }

    fn open_or_create_cache(&self) -> Result<Repository, SourceError> {
        let path = self.dir.join("repo.git");
        if path.exists() {
            match Repository::open_bare(&path) {
                Ok(repo) => return Ok(repo),
                Err(e) => {
                    tracing::warn!(
                        path = %path.display(),
                        error = %self.scrubbed(&e),
                        "git cache unusable, recreating it"
                    );
                    std::fs::remove_dir_all(&path).map_err(|source| SourceError::Io {
                        path: path.clone(),
                        source,
                    })?;
                }
            }
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| SourceError::Io {
            path: self.dir.clone(),
            source,
        })?;
        // No template: sample hooks and the like have no use in a cache.
        let mut opts = RepositoryInitOptions::new();
        opts.bare(true).external_template(false);
        Repository::init_opts(&path, &opts).map_err(|e| self.cache_err("creating the cache", &e))
    }

    /// The branch head as the remote advertises it (ls-remote: no objects transferred).
    fn remote_head(&self, repo: &Repository) -> Result<Oid, SourceError> {
        let unreachable = |e: git2::Error| SourceError::Connect {
            location: self.url.clone(),
            message: self.scrubbed(&e),
        };
        let mut remote = repo.remote_anonymous(&self.url).map_err(unreachable)?;
        let conn = remote
            .connect_auth(Direction::Fetch, Some(self.callbacks()), Some(proxy()))
            .map_err(unreachable)?;
        let want = format!("refs/heads/{}", self.branch);
        let head = conn
            .list()
            .map_err(unreachable)?
            .iter()
            .find(|h| h.name() == want)
            .map(|h| h.oid());
        head.ok_or_else(|| SourceError::BranchNotFound {
            location: self.url.clone(),
            branch: self.branch.clone(),
        })
    }

    /// Fetch the branch; returns the commit to use (`head`, or where the branch moved to
    /// in the meantime).
    fn fetch(&self, repo: &Repository, head: Oid) -> Result<Oid, SourceError> {
        let fetch_err = |message: String| SourceError::Fetch {
            location: self.url.clone(),
            branch: self.branch.clone(),
            message,
        };
        tracing::info!(location = %self.url, branch = %self.branch, commit = %head, "fetching");
        let tracking = self.tracking_ref();
        let before = repo.refname_to_id(&tracking).ok();
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|e| fetch_err(self.scrubbed(&e)))?;
        let mut callbacks = self.callbacks();
        let max = self.max_fetch_bytes;
        let over = std::rc::Rc::new(std::cell::Cell::new(false));
        let flag = over.clone();
        callbacks.transfer_progress(move |p| {
            let within = p.received_bytes() as u64 <= max;
            if !within {
                flag.set(true);
            }
            within
        });
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks)
            .proxy_options(proxy())
            .follow_redirects(RemoteRedirect::None)
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        let spec = format!("+refs/heads/{}:{tracking}", self.branch);
        let fetched = remote.fetch(&[spec.as_str()], Some(&mut opts), None);
        if over.get() {
            return Err(fetch_err(format!(
                "the fetch was stopped after {}: over the limit (--max-fetch-size)",
                Bytes(max)
            )));
        }
        fetched.map_err(|e| fetch_err(self.scrubbed(&e)))?;
        if repo.find_commit(head).is_ok() {
            return Ok(head);
        }
        // Force-pushed between the listing and the fetch: take what the fetch brought.
        match repo.refname_to_id(&tracking) {
            Ok(now) if Some(now) != before && repo.find_commit(now).is_ok() => Ok(now),
            _ => Err(fetch_err(format!(
                "the remote did not send commit {head} (the branch moved during the fetch?)"
            ))),
        }
    }

    /// Write the manifests of `commit` to `checkouts/<commit>-<path hash>/` (once) and prune
    /// old ones.
    fn checkout(&self, repo: &Repository, commit: &Commit<'_>) -> Result<PathBuf, SourceError> {
        let root = self.dir.join("checkouts");
        // Only the manifests path is written, so the path is part of the name: a restart
        // with another path must not reuse this directory.
        let path_hash = hex::encode(Sha256::digest(self.path.to_string_lossy().as_bytes()));
        let name = format!("{}-{}", commit.id(), &path_hash[..8]);
        let target = root.join(&name);
        if !target.is_dir() {
            let partial = root.join(format!(".partial-{name}"));
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| SourceError::Io { path, source }
            };
            if partial.exists() {
                std::fs::remove_dir_all(&partial).map_err(io(&partial))?;
            }
            std::fs::create_dir_all(&partial).map_err(io(&partial))?;
            match self.manifests_tree(repo, commit)? {
                Some(tree) => {
                    // Sizes first: nothing of a refused revision is written.
                    self.check_sizes(repo, &tree, commit.id())?;
                    let dest = partial.join(&self.path);
                    std::fs::create_dir_all(&dest).map_err(io(&dest))?;
                    self.write_tree(repo, &tree, &dest)?;
                }
                None => tracing::warn!(
                    location = %self.url,
                    commit = %commit.id(),
                    path = %self.path.display(),
                    "the manifests path does not exist in this commit"
                ),
            }
            std::fs::rename(&partial, &target).map_err(io(&target))?;
        }
        self.prune(&root, &target);
        Ok(target)
    }

    /// The tree at the manifests path; `None` when the commit has no such path.
    fn manifests_tree<'r>(
        &self,
        repo: &'r Repository,
        commit: &Commit<'r>,
    ) -> Result<Option<Tree<'r>>, SourceError> {
        let tree = commit
            .tree()
            .map_err(|e| self.cache_err("reading the commit tree", &e))?;
        if self.path.as_os_str().is_empty() {
            return Ok(Some(tree));
        }
        let entry = match tree.get_path(&self.path) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(self.cache_err("looking up the manifests path", &e)),
        };
        if entry.kind() != Some(ObjectType::Tree) {
            let what = if entry.filemode() == MODE_SYMLINK {
                "a symbolic link"
            } else {
                "not a directory"
            };
            return Err(SourceError::InvalidRevision {
                commit: commit.id().to_string(),
                message: format!(
                    "the manifests path {} is {what} in this commit; it must be a directory",
                    self.path.display()
                ),
            });
        }
        repo.find_tree(entry.id())
            .map(Some)
            .map_err(|e| self.cache_err("reading the manifests tree", &e))
    }

    /// Every blob under `tree` within the per-file limit, and all of them within the
    /// revision limit, from the object headers (nothing is read or inflated whole).
    fn check_sizes(
        &self,
        repo: &Repository,
        tree: &Tree<'_>,
        commit: Oid,
    ) -> Result<(), SourceError> {
        let odb = repo
            .odb()
            .map_err(|e| self.cache_err("opening the object database", &e))?;
        let mut total: u64 = 0;
        let mut refused = None;
        let walked = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == MODE_SYMLINK {
                return git2::TreeWalkResult::Ok;
            }
            let size = match odb.read_header(entry.id()) {
                Ok((size, _)) => size as u64,
                Err(e) => {
                    refused = Some(Err(self.cache_err("reading an object header", &e)));
                    return git2::TreeWalkResult::Abort;
                }
            };
            let name = format!("{dir}{}", String::from_utf8_lossy(entry.name_bytes()));
            let path = self.path.join(name);
            total = total.saturating_add(size);
            let why = if size > self.limits.max_file_bytes {
                format!(
                    "{} is {}, over the limit of {} per file (--max-file-size)",
                    path.display(),
                    Bytes(size),
                    Bytes(self.limits.max_file_bytes)
                )
            } else if total > self.limits.max_revision_bytes {
                format!(
                    "the files under {} add up to more than {} (--max-revision-size), at {}",
                    self.path.display(),
                    Bytes(self.limits.max_revision_bytes),
                    path.display()
                )
            } else {
                return git2::TreeWalkResult::Ok;
            };
            refused = Some(Err(SourceError::InvalidRevision {
                commit: commit.to_string(),
                message: escape_control(&why).into_owned(),
            }));
            git2::TreeWalkResult::Abort
        });
        if let Some(r) = refused {
            return r;
        }
        walked.map_err(|e| self.cache_err("walking the manifests tree", &e))
    }

    /// Write a tree's files under `dir`. Symbolic links are written as links (the loader
    /// refuses those leading outside the manifests directory, without reading them);
    /// submodules are skipped.
    fn write_tree(
        &self,
        repo: &Repository,
        tree: &Tree<'_>,
        dir: &Path,
    ) -> Result<(), SourceError> {
        for entry in tree.iter() {
            let Some(name) = entry.name().ok().filter(|n| is_plain_name(n)) else {
                tracing::warn!(
                    name = %String::from_utf8_lossy(entry.name_bytes()),
                    "skipping a tree entry with an unusable name"
                );
                continue;
            };
            let dest = dir.join(name);
            let io = |source| SourceError::Io {
                path: dest.clone(),
                source,
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    std::fs::create_dir(&dest).map_err(io)?;
                    let sub = repo
                        .find_tree(entry.id())
                        .map_err(|e| self.cache_err("reading a tree", &e))?;
                    self.write_tree(repo, &sub, &dest)?;
                }
                Some(ObjectType::Blob) if entry.filemode() == MODE_SYMLINK => {
                    let blob = repo
                        .find_blob(entry.id())
                        .map_err(|e| self.cache_err("reading a link", &e))?;
                    // A link's blob is its target; git keeps it short (a path).
                    let target = blob.content();
                    if target.is_empty() || target.len() > 4096 || target.contains(&0) {
                        tracing::warn!(path = %dest.display(), "skipping a symbolic link with an unusable target");
                        continue;
                    }
                    use std::os::unix::ffi::OsStrExt;
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &dest)
                        .map_err(io)?;
                }
                Some(ObjectType::Blob) => {
                    let blob = repo
                        .find_blob(entry.id())
                        .map_err(|e| self.cache_err("reading a file", &e))?;
                    std::fs::write(&dest, blob.content()).map_err(io)?;
                }
                _ => tracing::debug!(path = %dest.display(), "skipping a submodule"),
            }
        }
        Ok(())
    }

    /// Remove every checkout but `keep` and the previous one (the daemon may still be
    /// reading it). Failures only cost disk space, so they are logged, not returned.
    fn prune(&self, root: &Path, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path == keep || self.current.as_deref() == Some(path.as_path()) {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an old checkout");
            }
        }
    }

    /// Callbacks for one connection: credentials and SSH host-key verification.
    fn callbacks(&self) -> RemoteCallbacks<'static> {
        let mut cb = RemoteCallbacks::new();
        let auth = self.auth.clone();
        let origin = self.origin.clone();
        let mut tried = CredentialType::empty();
        cb.credentials(move |url, url_user, allowed| {
            credential_for(&auth, &origin, url, url_user, allowed, &mut tried)
        });
        let known_hosts = self.auth.known_hosts.clone();
        let port = self.ssh_port;
        cb.certificate_check(move |cert, host| {
            check_certificate(cert, host, port, known_hosts.as_deref())
        });
        cb
    }

    /// A libgit2 message with anything credential-like removed.
    fn scrubbed(&self, e: &git2::Error) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(Secret::expose).collect();
        scrub(e.message(), &secrets)
    }

    fn cache_err(&self, action: &str, e: &git2::Error) -> SourceError {
        SourceError::Cache {
            location: self.url.clone(),
            message: format!("{action}: {}", self.scrubbed(e)),
        }
    }
}

/// Proxy settings from git configuration and the environment, as git itself would use.
fn proxy() -> ProxyOptions<'static> {
    let mut p = ProxyOptions::new();
    p.auto();
    p
}

/// Answer libgit2's credential request from `url`: nothing unless it is the configured
/// `origin` (a redirect to another host, port or scheme gets no credentials).
fn credential_for(
    auth: &GitAuth,
    origin: &GitUrl,
    url: &str,
    url_user: Option<&str>,
    allowed: CredentialType,
    tried: &mut CredentialType,
) -> Result<Cred, git2::Error> {
    if !GitUrl::parse(url).is_some_and(|u| u.same_origin(origin)) {
        return Err(git2::Error::from_str(&format!(
            "refusing to send credentials to {}: it is not the configured origin",
            redact_url(url)
        )));
    }
    next_credential(auth, url_user, allowed, tried)
}

/// Answer libgit2's credential request; each kind is offered once, since libgit2 asks
/// again after a rejection and would otherwise loop.
fn next_credential(
    auth: &GitAuth,
    url_user: Option<&str>,
    allowed: CredentialType,
    tried: &mut CredentialType,
) -> Result<Cred, git2::Error> {
    let ssh_user = url_user
        .or(auth.username.as_deref())
        .unwrap_or(SSH_USER)
        .to_string();
    let mut offer = |kind: CredentialType| {
        let fresh = allowed.contains(kind) && !tried.contains(kind);
        if fresh {
            tried.insert(kind);
        }
        fresh
    };
    if auth.token.is_some() && offer(CredentialType::USER_PASS_PLAINTEXT) {
        let token = auth.token.as_ref().map(Secret::expose).unwrap_or_default();
        let user = auth.username.as_deref().unwrap_or(TOKEN_USER);
        return Cred::userpass_plaintext(user, token);
    }
    if let Some(key) = auth.ssh_key.as_deref() {
        if offer(CredentialType::SSH_KEY) {
            return Cred::ssh_key(&ssh_user, None, key, None);
        }
    }
    if offer(CredentialType::USERNAME) {
        return Cred::username(&ssh_user);
    }
    Err(git2::Error::from_str(if tried.is_empty() {
        "the remote asks for credentials, but none are configured for it \
         (a token for https, an ssh key for ssh)"
    } else {
        "authentication failed: the remote refused the configured credentials"
    }))
}

/// SSH: trust only what the known_hosts file lists. TLS: libgit2's own verification.
fn check_certificate(
    cert: &Cert<'_>,
    host: &str,
    port: u16,
    known_hosts: Option<&Path>,
) -> Result<CertificateCheckStatus, git2::Error> {
    let Some(hostkey) = cert.as_hostkey() else {
        return Ok(CertificateCheckStatus::CertificatePassthrough);
    };
    let refuse = |message: String| Err(git2::Error::from_str(&message));
    let Some(file) = known_hosts else {
        return refuse(format!(
            "cannot verify ssh host {host}: no known_hosts file is configured; refusing to connect"
        ));
    };
    let (Some(key), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type()) else {
        return refuse(format!(
            "ssh host {host} did not provide a host key to verify; refusing to connect"
        ));
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            return refuse(format!(
                "cannot read known_hosts file {}: {e}; refusing to connect",
                file.display()
            ))
        }
    };
    match known_hosts::verify(&text, file, host, port, kind.name(), key) {
        Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
        Err(message) => refuse(message),
    }
}

/// The manifests path as a clean relative path inside the repository.
fn repo_relative(path: &Path) -> Result<PathBuf, SourceError> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(SourceError::Config(format!(
                    "manifests path {} must be relative to the repository root, without '..'",
                    path.display()
                )))
            }
        }
    }
    Ok(out)
}

/// A tree entry name that stays inside its directory.
fn is_plain_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..") && !name.contains(['/', '\\', '\0'])
}

/// `<last path segment>-<16 hex of SHA-256>` of the redacted location: readable, unique,
/// and unchanged when only the credentials change.
fn cache_key(display: &str) -> String {
    let hash = hex::encode(Sha256::digest(display.as_bytes()));
    let last = display
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let readable: String = last
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let readable = if readable.is_empty() {
        "repo"
    } else {
        &readable
    };
    format!("{readable}-{}", &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_is_readable_and_ignores_credentials() {
        let a = cache_key(&redact_url("https://user:tok@host/org/infra.git"));
        let b = cache_key(&redact_url("https://other:tok2@host/org/infra.git"));
        assert_eq!(a, b);
        assert!(
            a.starts_with("infra-") && a.len() == "infra-".len() + 16,
            "{a}"
        );
        assert!(!a.contains("tok"));
        assert!(cache_key("git@host:infra").starts_with("infra-"));
        assert!(cache_key("file:///").starts_with("repo-"));
        assert_ne!(
            cache_key("https://h/a/x.git"),
            cache_key("https://h/b/x.git")
        );
    }

    #[test]
    fn manifests_path_must_stay_inside() {
        assert_eq!(
            repo_relative(Path::new("./envs/prod/")).unwrap(),
            PathBuf::from("envs/prod")
        );
        assert_eq!(repo_relative(Path::new(".")).unwrap(), PathBuf::new());
        assert!(repo_relative(Path::new("../x")).is_err());
        assert!(repo_relative(Path::new("/etc")).is_err());
    }

    #[test]
    fn entry_names() {
        assert!(is_plain_name("roles.yaml"));
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name("a/b"));
        assert!(!is_plain_name(""));
    }

    #[test]
    fn a_redirect_to_another_origin_gets_no_credentials() {
        let auth = GitAuth {
            token: Some(Secret::new("ghp_0123456789abcdef")),
            ..GitAuth::default()
        };
        let origin = GitUrl::parse("https://git.example.com/org/repo.git").unwrap();
        let plain = CredentialType::USER_PASS_PLAINTEXT;
        for elsewhere in [
            "https://evil.example.net/org/repo.git",
            "https://git.example.com:8443/org/repo.git",
            "not a url",
        ] {
            let mut tried = CredentialType::empty();
            let Err(e) = credential_for(&auth, &origin, elsewhere, None, plain, &mut tried) else {
                panic!("credentials sent to {elsewhere}")
            };
            assert!(
                e.message().contains("not the configured origin"),
                "{}",
                e.message()
            );
            assert!(!e.message().contains("ghp_"));
            assert!(tried.is_empty());
        }
        let mut tried = CredentialType::empty();
        let same = "https://git.example.com/org/renamed.git";
        assert!(credential_for(&auth, &origin, same, None, plain, &mut tried).is_ok());
    }

    #[test]
    fn credentials_offered_once_each() {
        let auth = GitAuth {
            token: Some(Secret::new("t0k")),
            ..GitAuth::default()
        };
        let mut tried = CredentialType::empty();
        let plain = CredentialType::USER_PASS_PLAINTEXT;
        assert!(next_credential(&auth, None, plain, &mut tried).is_ok());
        let Err(again) = next_credential(&auth, None, plain, &mut tried) else {
            panic!("offered twice")
        };
        assert!(again.message().contains("refused"), "{}", again.message());
        assert!(!again.message().contains("t0k"));

        let none = GitAuth::default();
        let mut tried = CredentialType::empty();
        let Err(err) = next_credential(&none, None, plain, &mut tried) else {
            panic!("nothing to offer")
        };
        assert!(err.message().contains("none are configured"));
    }
}
