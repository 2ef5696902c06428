//! Git repositories made by the tests in a temporary directory, reached through `file://`
//! URLs (no network): with git2 ([`Repo`]), or with the git command as a user makes them
//! ([`git`], [`manifests_repo`]).

use std::path::Path;
use std::process::Command;

use super::cli::text;
use super::{copy_dir, manifests_dir, require};

/// The committer of every commit made here.
pub const NAME: &str = "Alice Example";
/// Their email (the principal of allowed-signers lines).
pub const EMAIL: &str = "alice@example.com";

/// An entry of a tree committed by [`Repo::commit_tree`].
pub enum Entry<'a> {
    /// A regular file and its content.
    File(&'a str, &'a [u8]),
    /// A symbolic link and its target.
    Link(&'a str, &'a str),
}

/// A repository with a `main` branch and a work tree.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub repo: git2::Repository,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_opts(
            dir.path(),
            git2::RepositoryInitOptions::new().initial_head("main"),
        )
        .unwrap();
        Repo { dir, repo }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Write files (relative path → content) and commit them on `main`; the commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        let changes: Vec<(&str, Option<&str>)> = files.iter().map(|&(p, c)| (p, Some(c))).collect();
        self.commit_changes(&changes, message)
    }

    /// Commit on `main`: `Some(content)` writes a file, `None` deletes it; the commit id.
    pub fn commit_changes(&self, changes: &[(&str, Option<&str>)], message: &str) -> String {
        let (tree, parents) = self.stage(changes);
        let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
        let sig = signature();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parent_refs)
            .unwrap()
            .to_string()
    }

    /// Like [`Repo::commit`], with an SSH signature by `key` as `git commit -S` makes it
    /// with `gpg.format = ssh`.
    pub fn commit_signed(
        &self,
        files: &[(&str, &str)],
        message: &str,
        key: &ssh_key::PrivateKey,
    ) -> String {
        let changes: Vec<(&str, Option<&str>)> = files.iter().map(|&(p, c)| (p, Some(c))).collect();
        let (tree, parents) = self.stage(&changes);
        let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
        let sig = signature();
        let buf = self
            .repo
            .commit_create_buffer(&sig, &sig, message, &tree, &parent_refs)
            .unwrap();
        let content = buf.as_str().unwrap();
        let armor = key
            .sign("git", ssh_key::HashAlg::Sha512, content.as_bytes())
            .unwrap()
            .to_pem(ssh_key::LineEnding::LF)
            .unwrap();
        let oid = self
            .repo
            .commit_signed(content, armor.trim_end(), None)
            .unwrap();
        self.repo
            .reference("refs/heads/main", oid, true, "signed commit")
            .unwrap();
        oid.to_string()
    }

    /// Commit on `main` a tree of exactly `entries` (nothing of the previous commit or the
    /// work tree is kept; links are committed as links); the commit id.
    pub fn commit_tree(&self, entries: &[Entry<'_>], message: &str) -> String {
        let mut index = git2::Index::new().unwrap();
        for e in entries {
            let (path, oid, mode) = match e {
                Entry::File(p, content) => (p, self.repo.blob(content).unwrap(), 0o100644),
                Entry::Link(p, target) => (p, self.repo.blob(target.as_bytes()).unwrap(), 0o120000),
            };
            index
                .add(&git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode,
                    uid: 0,
                    gid: 0,
                    file_size: 0,
                    id: oid,
                    flags: path.len().min(0xfff) as u16,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                })
                .unwrap();
        }
        let tree = self
            .repo
            .find_tree(index.write_tree_to(&self.repo).unwrap())
            .unwrap();
        let parents: Vec<git2::Commit> = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        let sig = signature();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
            .to_string()
    }

    /// Apply the changes to the work tree and the index; the tree and the current head (if
    /// any).
    fn stage(&self, changes: &[(&str, Option<&str>)]) -> (git2::Tree<'_>, Vec<git2::Commit<'_>>) {
        let mut index = self.repo.index().unwrap();
        for (rel, content) in changes {
            let path = self.dir.path().join(rel);
            match content {
                Some(text) => {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, text).unwrap();
                    index.add_path(Path::new(rel)).unwrap();
                }
                None => {
                    std::fs::remove_file(&path).unwrap();
                    index.remove_path(Path::new(rel)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<git2::Commit> = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        (tree, parents)
    }
}

fn signature() -> git2::Signature<'static> {
    git2::Signature::now(NAME, EMAIL).unwrap()
}

/// `git ARGS` in `dir`, as [`NAME`] <[`EMAIL`]>; panics with git's output unless it succeeds.
pub fn git(dir: &Path, args: &[&str]) {
    let o = Command::new(require("git"))
        .args(["-c", &format!("user.email={EMAIL}")])
        .args(["-c", &format!("user.name={NAME}")])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}:\n{}", text(&o));
}

/// A repository made with the git command whose `main` holds the bundled manifests under
/// `manifests/`, in one commit.
pub fn manifests_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&manifests_dir(), &dir.path().join("manifests"));
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "base"]);
    dir
}
