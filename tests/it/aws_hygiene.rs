//! The typed AWS layer stays typed: no code outside the one module built for it reads an
//! error's message or a response body, or compares an error code as a string. Each
//! service's codes are parsed once into its `ServiceCode` type (`impl ServiceCode for …`),
//! and emulator workarounds live in `src/aws/emulator.rs`.

use std::path::Path;

use crate::support::{root, rust_files};

/// The file's code without its unit tests (which may build errors with messages).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What may not appear, why, and the files allowed to hold it.
const RULES: &[(&str, &str, &[&str])] = &[
    (
        ".message()",
        "classifies an AWS error by its message text",
        // The one place an SDK error's message is copied into `AwsError` for display.
        &["src/aws/error.rs"],
    ),
    (
        "code() == Some(\"",
        "compares an error code as a string; parse it into the service's ServiceCode",
        &[],
    ),
    (
        "raw_code.as_deref() ==",
        "compares an error code as a string; use AwsError::code::<ServiceCode>()",
        &[],
    ),
    (
        ".body().bytes()",
        "reads a response body; the SDK's typed errors and retry classifiers say what it means",
        &["src/aws/emulator.rs"],
    ),
    (
        "from_utf8_lossy",
        "reads raw bytes as text (a body or a message)",
        &[],
    ),
];

#[test]
fn no_aws_error_is_classified_by_text() {
    let root = root();
    // The code that talks to AWS (the source talks to git, whose errors are git2's).
    let mut files = Vec::new();
    for dir in [
        "src/aws",
        "src/kinds",
        "src/state",
        "src/pipeline",
        "src/observe",
        "src/apply",
        "src/import",
        "src/daemon",
    ] {
        files.extend(rust_files(&root.join(dir)));
    }
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().display().to_string();
        let code = code_of(f);
        for (pattern, why, allowed) in RULES {
            if allowed.contains(&rel.as_str()) {
                continue;
            }
            for (n, line) in code.lines().enumerate() {
                let flat = line.trim_start();
                if flat.starts_with("//") {
                    continue;
                }
                if line.contains(pattern) {
                    found.push(format!("{rel}:{}: `{pattern}` {why}", n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Regression for the rule above: it must see what it forbids.
#[test]
fn the_scan_finds_what_it_forbids() {
    let bad = "let x = e.message().is_some_and(|m| m.contains(\"DeletionProtection\"));";
    assert!(RULES.iter().any(|(p, _, _)| bad.contains(p)));
    let bad = "if e.code() == Some(\"NoSuchEntity\") {";
    assert!(RULES.iter().any(|(p, _, _)| bad.contains(p)));
    let bad = "let text = String::from_utf8_lossy(&body[..2048]);";
    assert!(RULES.iter().any(|(p, _, _)| bad.contains(p)));
}
