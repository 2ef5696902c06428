//! Validation rules, one bad manifest set per rule under `tests/fixtures/invalid/<case>/`,
//! each pinned by `expected.txt` (the diagnostics as `validate` prints them, paths relative
//! to the case directory). Regenerate with `UPDATE_GOLDEN=1 cargo test --test it validate::`
//! and review the diff.

use std::path::{Path, PathBuf};

use mlspace_gitops::manifest::{load_dir, ManifestError};

use crate::support::{golden, manifests_dir, mlspace, root, CommandExt};

const CASES: &str = "tests/fixtures/invalid";

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(CASES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn diagnostics_text(dir: &Path) -> String {
    match load_dir(dir) {
        Ok(l) => panic!(
            "{} validated but must fail; warnings: {}",
            dir.display(),
            l.warnings
        ),
        Err(ManifestError::Invalid(d)) => {
            let prefix = format!("{}/", dir.display());
            d.to_string().replace(&prefix, "")
        }
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

#[test]
fn every_invalid_case_reports_its_errors() {
    let mut failures = Vec::new();
    for dir in cases() {
        let got = diagnostics_text(&dir);
        let expected = dir.join("expected.txt");
        let expected = expected.strip_prefix(root()).unwrap();
        if let Err(hint) = golden::compare(expected, &got, "validate::") {
            failures.push(hint);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_names_file_line_and_column() {
    for dir in cases() {
        for line in diagnostics_text(&dir).lines() {
            if dir.ends_with("no_environment") && line.starts_with("error: no Environment") {
                continue;
            }
            let mut parts = line.splitn(4, ':');
            let (file, l, c) = (
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            assert!(
                !file.is_empty() && l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok(),
                "{}: `{line}` lacks FILE:LINE:COL",
                dir.display()
            );
        }
    }
}

#[test]
fn validate_command_exits_1_and_prints_every_error() {
    let dir = root().join(CASES).join("bad_names");
    let out = mlspace(&["validate"]).manifests(dir).run();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr.lines().filter(|l| l.contains(": error: ")).count();
    assert!(errors >= 8, "expected every error, got:\n{stderr}");
}

#[test]
fn bundled_manifests_are_valid() {
    let out = mlspace(&["validate"]).manifests(manifests_dir()).run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
