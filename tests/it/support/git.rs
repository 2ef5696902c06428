//! Git repositories made by the tests with git2 in a temporary directory, reached through
//! `file://` URLs (no network).

use std::path::Path;

/// The committer of every commit made here.
pub const NAME: &str = "Alice Example";
/// Their email (the principal of allowed-signers lines).
pub const EMAIL: &str = "alice@example.com";

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
