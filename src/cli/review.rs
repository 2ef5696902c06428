//! The review commands: `lint` (the manifests' findings), `diff` (two git revisions'
//! desired states compared offline) and the markdown of `plan -o markdown`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;

use mlspace_gitops::manifest::diag::{Diagnostic, Diagnostics, Severity};
use mlspace_gitops::manifest::{self, Limits, LoadOptions, Loaded, ManifestError};
use mlspace_gitops::plan::Plan;
use mlspace_gitops::review::{self, Comment, DesiredDiff, Section, COMMENT_LIMIT};
use mlspace_gitops::source::revision::Repo;

use super::Outcome;

/// Output of `lint` and `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people.
    Text,
    /// For tools.
    Json,
    /// A pull-request comment.
    Markdown,
}

/// A finding as JSON: where, how bad, which check, what.
fn finding_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "file": d.loc.as_ref().map(|l| l.file.display().to_string()),
        "line": d.loc.as_ref().map(|l| l.line),
        "column": d.loc.as_ref().map(|l| l.col),
        "severity": d.severity,
        "check": d.check,
        "message": d.message,
    })
}

/// `N error(s), N security warning(s), N warning(s), N suggestion(s)`.
fn counts_line(n: [usize; 4]) -> String {
    format!(
        "{} error(s), {} security warning(s), {} warning(s), {} suggestion(s)",
        n[0], n[1], n[2], n[3]
    )
}

/// Load every Environment under `paths` and keep every diagnostic (errors included).
fn load_diagnostics(
    paths: &[PathBuf],
    limits: &Limits,
) -> anyhow::Result<(Vec<(PathBuf, Loaded)>, Diagnostics)> {
    let opts = LoadOptions {
        limits: *limits,
        cancel: None,
    };
    match manifest::load_environments_with(paths, &opts) {
        Ok(all) => {
            let mut d = Diagnostics::default();
            for (_, l) in &all {
                d.extend(l.warnings.clone());
            }
            Ok((all, d))
        }
        Err(ManifestError::Invalid(d)) => Ok((Vec::new(), d)),
        Err(e) => Err(e).context("loading manifests"),
    }
}

/// `lint`: every finding, `FILE:LINE:COL: SEVERITY[CHECK-ID]: message`, and a count line;
/// fails when a finding is at least as severe as `fail_on`.
pub fn lint(
    paths: &[PathBuf],
    fail_on: Severity,
    format: Format,
    limits: &Limits,
) -> anyhow::Result<Outcome> {
    let (_, diags) = load_diagnostics(paths, limits)?;
    let sorted = diags.sorted();
    let n = diags.counts();
    match format {
        Format::Json => {
            let v = json!({
                "findings": sorted.iter().map(|d| finding_json(d)).collect::<Vec<_>>(),
                "counts": {"error": n[0], "security-warning": n[1], "warning": n[2], "suggestion": n[3]},
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            for d in &sorted {
                println!("{d}");
            }
            println!("{}", counts_line(n));
        }
        Format::Markdown => {
            let findings: Vec<String> = sorted.iter().map(|d| d.to_string()).collect();
            let comment = Comment {
                title: "mlspace-gitops lint".into(),
                sections: Vec::new(),
                findings,
                full_output_hint: "Run `mlspace-gitops lint` to see every finding.".into(),
            };
            print!("{}", comment.render(COMMENT_LIMIT));
            println!("\n{}", counts_line(n));
        }
    }
    let failing = sorted.iter().any(|d| d.severity <= fail_on);
    Ok(if failing {
        Outcome::Failed
    } else {
        Outcome::Done
    })
}

/// The comment of `plan -o markdown`: each Environment's plan and the manifests' findings.
pub fn plan_markdown(envs: &[(String, &Plan)], findings: &Diagnostics) -> String {
    let findings: Vec<String> = findings.sorted().iter().map(|d| d.to_string()).collect();
    review::plan_comment(envs, findings).render(COMMENT_LIMIT)
}

/// One revision's Environments (by directory relative to the repository) and its
/// diagnostics, files relative to the repository.
struct Revision {
    envs: Vec<(String, Loaded)>,
    diags: Diagnostics,
}

/// Load the manifests at `rel` (relative to the repository) of revision `rev`, or of the
/// working tree when `rev` is `None`.
fn load_revision(
    repo: &Repo,
    rev: Option<&str>,
    rel: &Path,
    limits: &Limits,
) -> anyhow::Result<Revision> {
    let tmp;
    let root = match rev {
        Some(r) => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            repo.write_out(r, rel, tmp.path())?;
            tmp.path().to_path_buf()
        }
        None => repo.workdir().to_path_buf(),
    };
    let (all, mut diags) = load_diagnostics(&[root.join(rel)], limits)?;
    // Files relative to the repository, the same for both revisions (and for a reviewer).
    diags.relocate(&root, "");
    let envs = all
        .into_iter()
        .map(|(dir, l)| {
            let key = dir
                .strip_prefix(&root)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| dir.display().to_string());
            (key, l)
        })
        .collect();
    Ok(Revision { envs, diags })
}

/// `diff --base REF [--head REF]`: the desired states of two revisions compared, offline.
/// Exit 2 when they differ, 3 with `deny_widening` when access widens, 1 when the head is
/// invalid.
pub fn diff(
    paths: &[PathBuf],
    base: &str,
    head: Option<&str>,
    format: Format,
    deny_widening: bool,
    limits: &Limits,
) -> anyhow::Result<Outcome> {
    let first = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    let repo = Repo::discover(&first)?;
    let mut diffs: Vec<(String, DesiredDiff)> = Vec::new();
    let mut new_findings: Vec<String> = Vec::new();
    let mut head_errors: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let (base_id, _) = repo.commit(base)?;
    let head_name = head.unwrap_or("the working tree");
    for path in paths {
        let rel = repo.relative(path)?;
        let b = load_revision(&repo, Some(base), &rel, limits)
            .with_context(|| format!("reading {} at {base}", rel.display()))?;
        let h = load_revision(&repo, head, &rel, limits)
            .with_context(|| format!("reading {} at {head_name}", rel.display()))?;
        if h.diags.counts()[0] > 0 {
            head_errors.extend(
                h.diags
                    .sorted()
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .map(|d| d.to_string()),
            );
            continue;
        }
        if b.diags.counts()[0] > 0 {
            notes.push(format!(
                "{} at {base} does not validate ({} error(s)); its resources are compared as if absent",
                rel.display(),
                b.diags.counts()[0]
            ));
        }
        for d in review::new_findings(&b.diags, &h.diags) {
            new_findings.push(d.to_string());
        }
        for (key, hl) in &h.envs {
            match b.envs.iter().find(|(k, _)| k == key) {
                Some((_, bl)) => diffs.push((key.clone(), review::diff(&bl.desired, &hl.desired))),
                None => {
                    let empty = manifest::DesiredState {
                        environment: hl.desired.environment.clone(),
                        resources: Vec::new(),
                    };
                    diffs.push((key.clone(), review::diff(&empty, &hl.desired)));
                }
            }
        }
        for (key, bl) in &b.envs {
            if !h.envs.iter().any(|(k, _)| k == key) {
                notes.push(format!(
                    "Environment {} ({key}) is gone at {head_name}; its resources are removed from the manifests (the daemon never prunes on an empty revision)",
                    bl.desired.environment.name
                ));
            }
        }
    }

    let differs = diffs.iter().any(|(_, d)| d.differs()) || !notes.is_empty();
    let widens = diffs.iter().any(|(_, d)| d.widens_access());
    let title = format!(
        "mlspace-gitops diff {}...{head_name}",
        short(base, &base_id)
    );
    match format {
        Format::Text => {
            for e in &head_errors {
                eprintln!("{e}");
            }
            for n in &notes {
                println!("note: {n}");
            }
            for (key, d) in &diffs {
                if diffs.len() > 1 {
                    println!("# Environment {} ({key})", d.environment);
                }
                print!("{d}");
            }
            if !new_findings.is_empty() {
                println!("\nNew findings:");
                for f in &new_findings {
                    println!("{f}");
                }
            }
        }
        Format::Json => {
            let v = json!({
                "base": base_id,
                "head": head.map(|h| repo.commit(h).map(|c| c.0).unwrap_or_default()),
                "environments": diffs.iter().map(|(key, d)| json!({
                    "directory": key,
                    "environment": d.environment,
                    "changes": d.changes,
                    "summary": d.summary,
                    "access": d.access,
                })).collect::<Vec<_>>(),
                "new_findings": new_findings,
                "errors": head_errors,
                "notes": notes,
                "differs": differs,
                "widens_access": widens,
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Markdown => {
            let sections = diffs
                .iter()
                .map(|(key, d)| Section {
                    title: format!("{} ({key})", d.environment),
                    headline: format!(
                        "{} added, {} changed, {} removed.",
                        d.summary.added, d.summary.changed, d.summary.removed
                    ),
                    access: d.access.as_ref(),
                    changes: d.changes.iter().collect(),
                    problems: Vec::new(),
                })
                .collect();
            let mut findings = head_errors.clone();
            findings.extend(new_findings.iter().cloned());
            let mut comment = Comment {
                title,
                sections,
                findings,
                full_output_hint: format!(
                    "Run `mlspace-gitops diff --base {base}` to see everything."
                ),
            };
            if !notes.is_empty() {
                comment.sections.push(Section {
                    title: "Notes".into(),
                    headline: notes.join(" "),
                    access: None,
                    changes: Vec::new(),
                    problems: Vec::new(),
                });
            }
            print!("{}", comment.render(COMMENT_LIMIT));
        }
    }
    Ok(if !head_errors.is_empty() {
        Outcome::Failed
    } else if deny_widening && widens {
        Outcome::Widens
    } else if differs {
        Outcome::Changes
    } else {
        Outcome::Done
    })
}

/// `REF (abc1234)`, or the id alone when `rev` is one.
fn short(rev: &str, id: &str) -> String {
    if id.starts_with(rev) {
        id[..id.len().min(12)].to_string()
    } else {
        format!("{rev} ({})", &id[..id.len().min(12)])
    }
}
