//! Reading manifests from disk: the directory walk, the manifest files, the files they
//! name (`documentFile`), and the layout of a directory of Environments. Every file is read
//! through a [`Reader`] (regular files inside the directory, within the revision's
//! [`Limits`]); a file it refuses is a diagnostic like any other problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::compile::{compile, FileReader};
use super::diag::Diagnostics;
use super::read::{Limits, ReadError, Reader, Usage};
use super::yaml::Loc;
use super::{yaml, Loaded, ManifestError, SourceDoc};
use crate::kinds::{Kind, Scope};

/// How to load: the limits of the revision, and a flag that cancels loading between files
/// (set by the daemon on shutdown).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// What the revision may hold.
    pub limits: Limits,
    /// Loading stops with [`ManifestError::Cancelled`] once this is set.
    pub cancel: Option<&'a AtomicBool>,
}

/// Reads the files documents name from the local file system: regular files inside the
/// manifests directory only, charged to the revision's limits.
pub struct FsReader<'r, 'u, 'a> {
    reader: &'r Reader<'u, 'a>,
}

impl FileReader for FsReader<'_, '_, '_> {
    fn read(&self, path: &Path) -> Result<String, ReadError> {
        self.reader.read_text(path)
    }

    fn parse(&self, file: &Arc<Path>, text: &str) -> Result<Vec<yaml::Document>, yaml::YamlError> {
        self.reader.usage().parse(file, text)
    }
}

/// Read and compile every `*.yaml`/`*.yml` file under `dir` (any depth, hidden entries
/// skipped), within the default limits.
pub fn load_dir(dir: &Path) -> Result<Loaded, ManifestError> {
    load_dir_with(dir, &LoadOptions::default())
}

/// [`load_dir`] with explicit limits and cancellation.
pub fn load_dir_with(dir: &Path, opts: &LoadOptions<'_>) -> Result<Loaded, ManifestError> {
    load_dir_in(dir, &Usage::new(opts.limits, opts.cancel))
}

/// Load one Environment directory, charging the revision's `usage`.
fn load_dir_in(dir: &Path, usage: &Usage<'_>) -> Result<Loaded, ManifestError> {
    let files = list_yaml_files(dir)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ManifestError::Io { path, source }
    };
    let reader = Reader::new(dir, usage).map_err(io(dir))?;
    let mut diags = Diagnostics::default();
    // The sizes first: a revision far over its limit is refused before anything is read
    // (a file over the per-file limit is refused on its own, below).
    let listed: u64 = files
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(f).ok())
        .filter(|m| m.is_file() && m.len() <= usage.limits().max_file_bytes)
        .map(|m| m.len())
        .sum();
    if let Err(e) = usage.check_listed(listed) {
        diags.error(Some(Loc::file(Arc::from(dir))), e.to_string());
        return Err(ManifestError::Invalid(diags));
    }
    let mut docs = Vec::new();
    for f in files {
        let file: Arc<Path> = Arc::from(f.as_path());
        let text = match reader.read_text(&f) {
            Ok(t) => t,
            Err(ReadError::Cancelled) => return Err(ManifestError::Cancelled),
            Err(ReadError::Io(source)) => return Err(ManifestError::Io { path: f, source }),
            Err(ReadError::NotUtf8 { offset, line, col }) => {
                diags.error(
                    Some(Loc { file, line, col }),
                    format!("not UTF-8 (invalid byte at byte offset {offset})"),
                );
                continue;
            }
            Err(e) => {
                let wide = e.is_revision_wide();
                diags.error(Some(Loc::file(file)), e.to_string());
                if wide {
                    // Compiling what was read would only add errors the limit caused.
                    return Err(ManifestError::Invalid(diags));
                }
                continue;
            }
        };
        match usage.parse(&file, &text) {
            Ok(parsed) => push_docs(&file, parsed, &mut docs),
            Err(e) => {
                diags.error(Some(e.loc), e.message);
                if usage.exhausted() {
                    return Err(ManifestError::Invalid(diags));
                }
            }
        }
    }
    if usage.cancelled() {
        return Err(ManifestError::Cancelled);
    }
    compile(docs, diags, &FsReader { reader: &reader })
}

/// The Environment directories that `paths` name. A path holding YAML files of its own is one
/// Environment; a path holding only directories is a directory of Environments (for example
/// `envs/dev`, `envs/staging`, `envs/prod`), each subdirectory with YAML in it being one.
/// Sorted and without duplicates.
pub fn environment_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ManifestError::Io { path, source }
    };
    let is_yaml = |p: &Path| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    let mut out = Vec::new();
    for root in paths {
        let mut subdirs = Vec::new();
        let mut own_yaml = false;
        for entry in std::fs::read_dir(root).map_err(io(root))? {
            let entry = entry.map_err(io(root))?;
            let path = entry.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            // Not followed: a linked directory could be anywhere on this machine.
            if entry.file_type().map_err(io(&path))?.is_dir() {
                subdirs.push(path);
            } else if is_yaml(&path) {
                // Whatever it is: the reader refuses what is not a regular file, loudly.
                own_yaml = true;
            }
        }
        let mut envs = Vec::new();
        if !own_yaml {
            for d in subdirs {
                if !list_yaml_files(&d)?.is_empty() {
                    envs.push(d);
                }
            }
        }
        if envs.is_empty() {
            // Without YAML below it, the path stays one (empty) Environment: loading it
            // reports that, instead of the command doing nothing.
            envs.push(root.clone());
        }
        out.extend(envs);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Load every Environment under `paths` (see [`environment_dirs`]). All or nothing: when one
/// is invalid, the errors of all are returned. Two Environments may not share a name (their
/// inventory, lease and status are keyed by it), nor manage the same resource in one account.
pub fn load_environments(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Loaded)>, ManifestError> {
    load_environments_with(paths, &LoadOptions::default())
}

/// [`load_environments`] with explicit limits (for all the Environments together: they are
/// one revision) and cancellation.
pub fn load_environments_with(
    paths: &[PathBuf],
    opts: &LoadOptions<'_>,
) -> Result<Vec<(PathBuf, Loaded)>, ManifestError> {
    let dirs = environment_dirs(paths)?;
    let usage = Usage::new(opts.limits, opts.cancel);
    let mut diags = Diagnostics::default();
    let mut out: Vec<(PathBuf, Loaded)> = Vec::new();
    for dir in dirs {
        match load_dir_in(&dir, &usage) {
            Ok(l) => out.push((dir, l)),
            Err(ManifestError::Invalid(d)) => {
                diags.extend(d);
                // A revision-wide limit: the other Environments cannot be read either.
                if usage.exhausted() {
                    return Err(ManifestError::Invalid(diags));
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut names: HashMap<&str, &Path> = HashMap::new();
    let mut owners: HashMap<(&str, &str, Kind, &str), &str> = HashMap::new();
    for (dir, l) in &out {
        let env = &l.desired.environment;
        if let Some(first) = names.insert(&env.name, dir) {
            diags.error(
                env.source.clone(),
                format!(
                    "metadata.name: Environment `{}` is also defined in {}; each Environment needs its own name",
                    env.name,
                    first.display()
                ),
            );
        }
        for r in &l.desired.resources {
            // IAM and bucket names are global to the account (buckets even to the
            // partition); table names are per region.
            let region = match r.kind.info().scope {
                Scope::Region => env.region.as_str(),
                Scope::Account => "",
            };
            let key = (env.account.as_str(), region, r.kind, r.name.as_str());
            match owners.get(&key) {
                Some(other) if *other != env.name => diags.error(
                    r.source.clone(),
                    format!(
                        "metadata.name: {} `{}` in account {} is also managed by Environment `{other}`; one resource has one owner",
                        r.kind, r.name, env.account
                    ),
                ),
                _ => {
                    owners.insert(key, &env.name);
                }
            }
        }
    }
    if diags.has_errors() {
        return Err(ManifestError::Invalid(diags));
    }
    Ok(out)
}

/// Parse one file's documents into `docs` (syntax errors go to `diags`).
pub fn parse_file(
    file: &Arc<Path>,
    text: &str,
    docs: &mut Vec<SourceDoc>,
    diags: &mut Diagnostics,
) {
    match yaml::parse_documents(file, text) {
        Ok(parsed) => push_docs(file, parsed, docs),
        Err(e) => diags.error(Some(e.loc), e.message),
    }
}

/// The non-empty documents of `file`.
fn push_docs(file: &Arc<Path>, parsed: Vec<yaml::Document>, docs: &mut Vec<SourceDoc>) {
    docs.extend(
        parsed
            .into_iter()
            .filter(|d| !d.value.is_null())
            .map(|d| SourceDoc {
                file: file.clone(),
                value: d.value,
                map: d.map,
            }),
    )
}

/// Every YAML file under `dir`, sorted, skipping hidden files and directories.
pub fn list_yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| ManifestError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| ManifestError::Io {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().map_err(|source| ManifestError::Io {
                path: path.clone(),
                source,
            })?;
            if ft.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod environment_dir_tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x: 1\n").unwrap();
    }

    #[test]
    fn a_directory_with_yaml_is_one_environment_and_one_without_lists_them() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        touch(&root.join("single/environment.yaml"));
        touch(&root.join("single/iam/roles.yaml"));
        touch(&root.join("envs/prod/environment.yaml"));
        touch(&root.join("envs/dev/environment.yaml"));
        touch(&root.join("envs/dev/s3/buckets.yml"));
        touch(&root.join("envs/notes/README.txt"));
        touch(&root.join("envs/.hidden/environment.yaml"));
        touch(&root.join("nothing/notes/README.txt"));
        let dirs = environment_dirs(&[root.join("single")]).unwrap();
        assert_eq!(dirs, [root.join("single")]);
        let dirs = environment_dirs(&[root.join("envs")]).unwrap();
        assert_eq!(dirs, [root.join("envs/dev"), root.join("envs/prod")]);
        // Named one by one (and twice), the same Environments come back once each.
        let dirs = environment_dirs(&[
            root.join("envs/prod"),
            root.join("envs/dev"),
            root.join("envs/prod"),
        ])
        .unwrap();
        assert_eq!(dirs, [root.join("envs/dev"), root.join("envs/prod")]);
        // Regression: a directory with no YAML below it gave no Environment at all, and plan
        // indexed the first one of none.
        assert_eq!(
            environment_dirs(&[root.join("nothing")]).unwrap(),
            [root.join("nothing")]
        );
        assert!(matches!(
            environment_dirs(&[root.join("missing")]),
            Err(ManifestError::Io { .. })
        ));
    }
}
