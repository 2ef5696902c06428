//! Local directory sources: the directory is the manifests directory, and its revision is a
//! digest of the manifest files in it, so an unchanged tree gives the same id on every run.
//! Files are read by the manifest stage's [`Reader`], with its rules: a FIFO, a device, a
//! link leading outside the directory or a file over the limits is not read (what it is
//! stands for its content in the digest, and loading the revision reports it).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::SourceError;
use crate::manifest::read::{Limits, Reader, Usage};

/// Hex digits of the SHA-256 kept in a directory revision id.
const ID_HEX_LEN: usize = 16;

/// `dir-<hex>`: SHA-256 over every `*.yaml`/`*.yml`/`*.json` file under `dir` (any depth,
/// hidden entries skipped, as the manifest loader does), each as its `/`-separated relative
/// path and its contents, in path order.
pub(crate) fn digest(dir: &Path, limits: &Limits) -> Result<String, SourceError> {
    let usage = Usage::new(*limits, None);
    let reader = Reader::new(dir, &usage).map_err(|source| SourceError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    for (rel, path) in manifest_files(dir)? {
        let content = match reader.read_bytes(&path) {
            Ok(content) => content,
            // Not read: what it is and when it last changed stand for its content, so that
            // replacing it makes a new revision (which then loads, or reports it).
            Err(e) => not_read(&path, &e.to_string()).into_bytes(),
        };
        // Lengths make the framing unambiguous: no two file sets hash the same bytes.
        hasher.update((rel.len() as u64).to_be_bytes());
        hasher.update(rel.as_bytes());
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(&content);
    }
    let hex = hex::encode(hasher.finalize());
    Ok(format!("dir-{}", &hex[..ID_HEX_LEN]))
}

/// A stand-in for a file that was not read: why, its type, size and times, and the target
/// of a link (never its content). Starts with a NUL, which no manifest holds.
fn not_read(path: &Path, why: &str) -> String {
    let meta = |m: std::io::Result<std::fs::Metadata>| {
        m.map(|m| {
            format!(
                "{:o} {} {} {}.{} {}",
                m.mode(),
                m.len(),
                m.ino(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime()
            )
        })
        .unwrap_or_default()
    };
    let link = std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_default();
    // A device's times change with every write anyone makes to it: only a regular
    // target's are taken.
    let target = std::fs::metadata(path).ok().filter(|m| m.is_file());
    format!(
        "\0not read: {why}|{}|{}|{link}",
        meta(std::fs::symlink_metadata(path)),
        target.map(|m| meta(Ok(m))).unwrap_or_default()
    )
}

/// Manifest-like files under `dir` as (relative path with `/`, full path), sorted.
fn manifest_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, SourceError> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = stack.pop() {
        let io = |source| SourceError::Io {
            path: d.clone(),
            source,
        };
        for entry in std::fs::read_dir(&d).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let path = entry.path();
            if entry.file_type().map_err(io)?.is_dir() {
                stack.push((format!("{rel}/"), path));
            } else if is_manifest_like(&path) {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// YAML manifests and the JSON files they may inline.
fn is_manifest_like(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let before = digest(dir.path(), &Limits::default()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config.yaml"), "x").unwrap();
        std::fs::write(dir.path().join(".swap.yaml"), "x").unwrap();
        assert_eq!(digest(dir.path(), &Limits::default()).unwrap(), before);
        assert!(before.starts_with("dir-") && before.len() == 4 + ID_HEX_LEN);
    }

    #[test]
    fn path_is_part_of_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let before = digest(dir.path(), &Limits::default()).unwrap();
        std::fs::rename(dir.path().join("a.yaml"), dir.path().join("b.yaml")).unwrap();
        assert_ne!(digest(dir.path(), &Limits::default()).unwrap(), before);
    }

    #[test]
    fn fifo_named_yaml_does_not_hang_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.path().join("x.yaml"))
            .status()
            .unwrap();
        assert!(ok.success());
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("z.yaml")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("s"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("s"), dir.path().join("s.yaml")).unwrap();
        let started = std::time::Instant::now();
        let a = digest(dir.path(), &Limits::default()).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Changing what a refused link points to changes nothing read, but replacing the
        // link does change the revision.
        std::fs::remove_file(dir.path().join("s.yaml")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("s.yaml")).unwrap();
        assert_ne!(digest(dir.path(), &Limits::default()).unwrap(), a);
    }
}
