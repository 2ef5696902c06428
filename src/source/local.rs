//! Local directory sources: the directory is the manifests directory, and its revision is a
//! digest of the manifest files in it, so an unchanged tree gives the same id on every run.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::SourceError;

/// Hex digits of the SHA-256 kept in a directory revision id.
const ID_HEX_LEN: usize = 16;

/// `dir-<hex>`: SHA-256 over every `*.yaml`/`*.yml`/`*.json` file under `dir` (any depth,
/// hidden entries skipped, as the manifest loader does), each as its `/`-separated relative
/// path and its contents, in path order.
pub(crate) fn digest(dir: &Path) -> Result<String, SourceError> {
    let mut hasher = Sha256::new();
    for (rel, path) in manifest_files(dir)? {
        let content = std::fs::read(&path).map_err(|source| SourceError::Io { path, source })?;
        // Lengths make the framing unambiguous: no two file sets hash the same bytes.
        hasher.update((rel.len() as u64).to_be_bytes());
        hasher.update(rel.as_bytes());
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(&content);
    }
    let hex = hex::encode(hasher.finalize());
    Ok(format!("dir-{}", &hex[..ID_HEX_LEN]))
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
        let before = digest(dir.path()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config.yaml"), "x").unwrap();
        std::fs::write(dir.path().join(".swap.yaml"), "x").unwrap();
        assert_eq!(digest(dir.path()).unwrap(), before);
        assert!(before.starts_with("dir-") && before.len() == 4 + ID_HEX_LEN);
    }

    #[test]
    fn path_is_part_of_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x: 1\n").unwrap();
        let before = digest(dir.path()).unwrap();
        std::fs::rename(dir.path().join("a.yaml"), dir.path().join("b.yaml")).unwrap();
        assert_ne!(digest(dir.path()).unwrap(), before);
    }
}
