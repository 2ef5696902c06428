//! Validation rules, one bad manifest set per rule under `tests/fixtures/invalid/<case>/`,
//! each pinned by `expected.txt` (the diagnostics as `validate` prints them, paths relative
//! to the case directory). Regenerate with `UPDATE_GOLDEN=1 cargo test --test validate`
//! and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use mlspace_gitops::manifest::{load_dir, ManifestError};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
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
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for dir in cases() {
        let got = diagnostics_text(&dir);
        let expected_path = dir.join("expected.txt");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!(
                "== {}\n-- expected\n{expected}-- got\n{got}",
                dir.display()
            ));
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/bad_names");
    let out = Command::new(env!("CARGO_BIN_EXE_mlspace-gitops"))
        .args(["validate", "--manifests"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = stderr.lines().filter(|l| l.contains(": error: ")).count();
    assert!(errors >= 8, "expected every error, got:\n{stderr}");
}

#[test]
fn bundled_manifests_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let out = Command::new(env!("CARGO_BIN_EXE_mlspace-gitops"))
        .args(["validate", "--manifests"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
