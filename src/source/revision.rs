//! One revision of a local git repository, written out as files: how `diff` reads the
//! manifests of a base and a head revision without touching the working tree.

use std::path::{Path, PathBuf};

/// Errors reading a revision.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// No git repository holds the directory.
    #[error("{path} is not inside a git repository")]
    NoRepository {
        /// The directory.
        path: PathBuf,
        /// libgit2's answer.
        #[source]
        source: git2::Error,
    },
    /// The revision does not name a commit.
    #[error("`{rev}` names no commit of the repository")]
    UnknownRevision {
        /// As given.
        rev: String,
        /// libgit2's answer.
        #[source]
        source: git2::Error,
    },
    /// The directory is not in the revision's tree.
    #[error("revision `{rev}` has no directory {path}")]
    NoSuchPath {
        /// The revision.
        rev: String,
        /// The directory, relative to the repository.
        path: PathBuf,
    },
    /// The directory is outside the repository's working tree.
    #[error("{path} is outside the repository at {workdir}")]
    Outside {
        /// The directory.
        path: PathBuf,
        /// The repository's working tree.
        workdir: PathBuf,
    },
    /// Reading the repository failed.
    #[error("reading the repository")]
    Git(#[from] git2::Error),
    /// Writing the files failed.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A repository and where a directory of it sits.
pub struct Repo {
    repo: git2::Repository,
    workdir: PathBuf,
}

impl Repo {
    /// The repository holding `dir`.
    pub fn discover(dir: &Path) -> Result<Repo, RevisionError> {
        let repo =
            git2::Repository::discover(dir).map_err(|source| RevisionError::NoRepository {
                path: dir.to_path_buf(),
                source,
            })?;
        let workdir = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.path().to_path_buf());
        let workdir = workdir.canonicalize().unwrap_or(workdir);
        Ok(Repo { repo, workdir })
    }

    /// The repository's working tree.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// `dir` relative to the working tree.
    pub fn relative(&self, dir: &Path) -> Result<PathBuf, RevisionError> {
        let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        abs.strip_prefix(&self.workdir)
            .map(Path::to_path_buf)
            .map_err(|_| RevisionError::Outside {
                path: dir.to_path_buf(),
                workdir: self.workdir.clone(),
            })
    }

    /// The commit `rev` names, as its full id and one-line summary.
    pub fn commit(&self, rev: &str) -> Result<(String, String), RevisionError> {
        let c = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|source| RevisionError::UnknownRevision {
                rev: rev.to_string(),
                source,
            })?;
        Ok((
            c.id().to_string(),
            c.summary().ok().flatten().unwrap_or_default().to_string(),
        ))
    }

    /// Write directory `path` (relative to the repository) of revision `rev` under `dest`,
    /// at `dest/path`. Regular files only: symbolic links and submodules are left out, as
    /// the daemon's checkout would not follow them out of the tree either.
    pub fn write_out(&self, rev: &str, path: &Path, dest: &Path) -> Result<PathBuf, RevisionError> {
        let tree = self
            .repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_tree())
            .map_err(|source| RevisionError::UnknownRevision {
                rev: rev.to_string(),
                source,
            })?;
        let sub = if path.as_os_str().is_empty() {
            tree
        } else {
            let entry = tree.get_path(path).map_err(|_| RevisionError::NoSuchPath {
                rev: rev.to_string(),
                path: path.to_path_buf(),
            })?;
            entry
                .to_object(&self.repo)?
                .into_tree()
                .map_err(|_| RevisionError::NoSuchPath {
                    rev: rev.to_string(),
                    path: path.to_path_buf(),
                })?
        };
        let root = dest.join(path);
        let write = |p: &Path, data: &[u8]| -> Result<(), RevisionError> {
            let err = |source| RevisionError::Write {
                path: p.to_path_buf(),
                source,
            };
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(err)?;
            }
            std::fs::write(p, data).map_err(|source| RevisionError::Write {
                path: p.to_path_buf(),
                source,
            })
        };
        std::fs::create_dir_all(&root).map_err(|source| RevisionError::Write {
            path: root.clone(),
            source,
        })?;
        let mut failed: Option<RevisionError> = None;
        sub.walk(git2::TreeWalkMode::PreOrder, |parent, entry| {
            let regular = matches!(entry.filemode(), 0o100644 | 0o100755);
            if !regular || entry.kind() != Some(git2::ObjectType::Blob) {
                return git2::TreeWalkResult::Ok;
            }
            let Ok(name) = entry.name() else {
                return git2::TreeWalkResult::Ok;
            };
            let file = root.join(parent).join(name);
            let blob = match self.repo.find_blob(entry.id()) {
                Ok(b) => b,
                Err(e) => {
                    failed = Some(e.into());
                    return git2::TreeWalkResult::Abort;
                }
            };
            if let Err(e) = write(&file, blob.content()) {
                failed = Some(e);
                return git2::TreeWalkResult::Abort;
            }
            git2::TreeWalkResult::Ok
        })
        .or_else(|e| if failed.is_some() { Ok(()) } else { Err(e) })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(root),
        }
    }
}
