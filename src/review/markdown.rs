//! A pull-request comment: what a reviewer needs first (the summary, whether access
//! widens, each access delta, new findings), then each resource's diff in a collapsible
//! block. The body stays under GitHub's comment limit; what does not fit is left out by
//! whole entries, and a closing note says what was left out.

use std::fmt::Write as _;

use crate::access::AccessSummary;
use crate::plan::{write_change_body, Action, Change, Plan};

/// GitHub's limit on a comment body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing note on what was left out.
const NOTE_ROOM: usize = 2_000;

/// One Environment's part of the comment.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    /// The Environment (and its directory) as the heading shows it.
    pub title: String,
    /// The counts line, e.g. `Plan: 1 to create, 2 to update, 0 to delete.`
    pub headline: String,
    /// The access verdict, when some change touches policies.
    pub access: Option<&'a AccessSummary>,
    /// Every change that does something (no-ops left out by the caller).
    pub changes: Vec<&'a Change>,
    /// Problems: refused changes, errors of the run.
    pub problems: Vec<String>,
}

/// A whole comment.
#[derive(Debug, Clone)]
pub struct Comment<'a> {
    /// First line, e.g. `mlspace-gitops plan` or `mlspace-gitops diff main...HEAD`.
    pub title: String,
    /// One section per Environment.
    pub sections: Vec<Section<'a>>,
    /// Lint findings to show (new ones for a diff), one line each as printed.
    pub findings: Vec<String>,
    /// How to see everything, for the truncation note (markdown, e.g. the command to run).
    pub full_output_hint: String,
}

/// Entries of the comment, added in this order while they fit.
enum Part {
    Access,
    Finding,
    Resource,
}

impl Comment<'_> {
    /// The markdown body, at most `limit` characters.
    pub fn render(&self, limit: usize) -> String {
        let mut out = String::new();
        let mut left_out: Vec<(Part, String)> = Vec::new();
        let budget = limit.saturating_sub(NOTE_ROOM);
        let mut push = |out: &mut String, part: Part, label: String, text: String| {
            if left_out.is_empty() && chars(out) + chars(&text) <= budget {
                out.push_str(&text);
            } else {
                left_out.push((part, label));
            }
        };

        let widens = self
            .sections
            .iter()
            .any(|s| s.access.is_some_and(|a| a.widens));
        let _ = writeln!(out, "### {}\n", self.title);
        if widens {
            out.push_str(
                "> [!WARNING]\n> This change **widens access**: review the access added below.\n\n",
            );
        }
        for s in &self.sections {
            let _ = writeln!(out, "**{}**: {}", escape(&s.title), escape(&s.headline));
            if let Some(a) = s.access {
                let _ = writeln!(out, "{}", escape(&a.to_string()));
            }
            out.push('\n');
            for p in &s.problems {
                let _ = writeln!(out, "- :x: {}", escape(p));
            }
            if !s.problems.is_empty() {
                out.push('\n');
            }
        }

        // Access deltas first: what a reviewer must not miss.
        let with_access: Vec<(&Section, &Change)> = self
            .sections
            .iter()
            .flat_map(|s| s.changes.iter().map(move |c| (s, *c)))
            .filter(|(_, c)| !c.access.is_empty())
            .collect();
        if !with_access.is_empty() {
            out.push_str("#### Access added and removed\n\n");
            for (s, c) in &with_access {
                let mut text = String::new();
                let prefix = if self.sections.len() > 1 {
                    format!("{}: ", s.title)
                } else {
                    String::new()
                };
                for a in &c.access {
                    let mark = if a.widens { " **(widens)**" } else { "" };
                    let _ = writeln!(
                        text,
                        "- {}`{} {}`, {}{mark}",
                        escape(&prefix),
                        c.kind,
                        c.name,
                        escape(&a.subject)
                    );
                    if let Some(n) = &a.note {
                        let _ = writeln!(text, "  {}", escape(n));
                    }
                    let body = a.delta.to_string();
                    if !body.is_empty() {
                        text.push_str(&fenced("diff", &body, "  "));
                    }
                }
                push(
                    &mut out,
                    Part::Access,
                    format!("{} {}", c.kind, c.name),
                    text,
                );
            }
            out.push('\n');
        }

        if !self.findings.is_empty() {
            out.push_str("#### Lint findings\n\n");
            for f in &self.findings {
                push(
                    &mut out,
                    Part::Finding,
                    f.split(": ").next().unwrap_or(f).to_string(),
                    format!("- `{}`\n", f.replace('`', "'")),
                );
            }
            out.push('\n');
        }

        let changes: Vec<(&Section, &Change)> = self
            .sections
            .iter()
            .flat_map(|s| s.changes.iter().map(move |c| (s, *c)))
            .collect();
        if !changes.is_empty() {
            out.push_str("#### Changes\n\n");
            for (s, c) in changes {
                let what = match c.action {
                    Action::Create => "create",
                    Action::Update => "update",
                    Action::Delete => "delete",
                    Action::Forget => "forget (kept in AWS)",
                    Action::Conflict => "not managed (conflict)",
                    Action::NoOp => "no change",
                    Action::Skip => "skipped (reconcile disabled)",
                    Action::Drift => "drifted (observed only)",
                };
                let env = if self.sections.len() > 1 {
                    format!(" ({})", s.title)
                } else {
                    String::new()
                };
                let mut body = String::new();
                let _ = write_change_body(&mut body, c, false);
                let text = format!(
                    "<details><summary><code>{} {} {}</code>: {what}{}</summary>\n\n{}\n</details>\n",
                    c.action.symbol(),
                    c.kind,
                    html(&c.name),
                    html(&env),
                    fenced("diff", &unindent(&body), "")
                );
                push(
                    &mut out,
                    Part::Resource,
                    format!("{} {}", c.kind, c.name),
                    text,
                );
            }
        }

        if !left_out.is_empty() {
            let count = |p: fn(&Part) -> bool| left_out.iter().filter(|(k, _)| p(k)).count();
            let (a, f, r) = (
                count(|p| matches!(p, Part::Access)),
                count(|p| matches!(p, Part::Finding)),
                count(|p| matches!(p, Part::Resource)),
            );
            let mut what = Vec::new();
            if a > 0 {
                what.push(format!("the access delta of {a} resource(s)"));
            }
            if f > 0 {
                what.push(format!("{f} finding(s)"));
            }
            if r > 0 {
                what.push(format!("the diff of {r} resource(s)"));
            }
            let mut names: Vec<&str> = left_out.iter().map(|(_, n)| n.as_str()).collect();
            names.dedup();
            let shown: String = names
                .iter()
                .take(20)
                .map(|n| format!("`{}`", n.replace('`', "'")))
                .collect::<Vec<_>>()
                .join(", ");
            let more = names.len().saturating_sub(20);
            let _ = write!(
                out,
                "\n---\n:scissors: Truncated to stay under GitHub's {COMMENT_LIMIT}-character comment limit: left out {} ({shown}{}). {}\n",
                what.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() },
                self.full_output_hint
            );
        }
        debug_assert!(chars(&out) <= limit || limit < NOTE_ROOM);
        out
    }
}

/// The comment of `plan -o markdown`: each Environment's plan (titled as given) and the
/// manifests' findings, one printed line each.
pub fn plan_comment<'a>(envs: &[(String, &'a Plan)], findings: Vec<String>) -> Comment<'a> {
    let sections = envs
        .iter()
        .map(|(title, plan)| Section {
            title: title.clone(),
            headline: plan.headline(),
            access: plan.access.as_ref(),
            changes: plan
                .changes
                .iter()
                .filter(|c| c.action != Action::NoOp)
                .collect(),
            problems: plan
                .errors
                .iter()
                .map(|e| format!("refused: {e}"))
                .collect(),
        })
        .collect();
    Comment {
        title: "mlspace-gitops plan".into(),
        sections,
        findings,
        full_output_hint: "Run `mlspace-gitops plan` (or see the job's log) for the whole plan."
            .into(),
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `text` in a fenced code block whose fence no line of it can close.
fn fenced(lang: &str, text: &str, indent: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut out = format!("{indent}{fence}{lang}\n");
    for line in text.lines() {
        let _ = writeln!(out, "{indent}{line}");
    }
    let _ = writeln!(out, "{indent}{fence}");
    out
}

/// The change body's lines without their four-space indent (the block is its own frame).
fn unindent(body: &str) -> String {
    body.lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Markdown text with the characters that would format it escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>|#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text inside HTML.
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::{FieldChange, Kind};

    fn change(i: usize, size: usize) -> Change {
        Change {
            kind: Kind::Table,
            name: format!("table-{i:04}"),
            action: Action::Create,
            fields: vec![FieldChange::new(
                "spec.tags.note",
                None,
                Some(serde_json::json!("x".repeat(size))),
            )],
            reason: None,
            access: Vec::new(),
            steps: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    #[test]
    fn a_large_plan_is_cut_by_whole_entries_under_the_limit_and_says_what_was_left_out() {
        let changes: Vec<Change> = (0..400).map(|i| change(i, 400)).collect();
        let plan = Plan::new(changes, Vec::new());
        let comment = plan_comment(
            &[("dev (manifests)".into(), &plan)],
            vec!["a.yaml:1:1: warning[x]: y".into()],
        );
        let body = comment.render(COMMENT_LIMIT);
        assert!(body.chars().count() <= COMMENT_LIMIT, "{}", body.len());
        // Summary and findings come first and are kept.
        assert!(
            body.contains("**dev (manifests)**: Plan: 400 to create, 0 to update, 0 to delete.")
        );
        assert!(body.contains("- `a.yaml:1:1: warning[x]: y`"));
        // Every block that is in is whole.
        assert_eq!(
            body.matches("<details>").count(),
            body.matches("</details>").count()
        );
        let kept = body.matches("<details>").count();
        assert!(kept > 50 && kept < 400, "{kept}");
        let note = body.rsplit("---\n").next().unwrap();
        assert!(
            note.contains(&format!("left out the diff of {} resource(s)", 400 - kept)),
            "{note}"
        );
        assert!(note.contains(&format!("`Table table-{kept:04}`")), "{note}");
        assert!(note.contains("Run `mlspace-gitops plan`"), "{note}");
        // Nothing left out, no note.
        let small = Plan::new((0..3).map(|i| change(i, 10)).collect(), Vec::new());
        let body = plan_comment(&[("dev".into(), &small)], Vec::new()).render(COMMENT_LIMIT);
        assert!(!body.contains("Truncated"));
        assert_eq!(body.matches("<details>").count(), 3);
    }

    #[test]
    fn a_fence_is_longer_than_any_backtick_run_inside() {
        let f = fenced("diff", "a ```` b\n", "");
        assert!(f.starts_with("`````diff\n"), "{f}");
        assert!(f.ends_with("\n`````\n"), "{f}");
    }

    #[test]
    fn markdown_and_html_in_names_are_escaped() {
        assert_eq!(escape("a*b_[c]"), "a\\*b\\_\\[c\\]");
        assert_eq!(html("<x>&"), "&lt;x&gt;&amp;");
    }
}
