//! Helpers of the tests of deploy/ (the `deploy_*` modules).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mlspace_gitops::aws::CallResult;
use mlspace_gitops::kinds::Kind;
use mlspace_gitops::metrics::{self, names, FetchResult, ReconcileResult};
use mlspace_gitops::status::ResourceState;

use super::{mlspace, CommandExt};

/// `mlspace-gitops run --help`, without any MLSPACE_GITOPS_* of the test's environment
/// showing up as values.
pub fn run_help() -> String {
    let out = mlspace(&["run", "--help"]).without_own_settings().run();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every `MLSPACE_GITOPS_*` name in `text`.
pub fn env_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("MLSPACE_GITOPS_") {
        let rest = &text[i..];
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        let name = rest[..len].trim_end_matches('_');
        // `MLSPACE_GITOPS_*` in prose names them all, not one.
        if name != "MLSPACE_GITOPS" {
            out.insert(name.to_string());
        }
    }
    out
}

/// Variables the deploy files may set ahead of the flag that reads them, with the reason.
/// Remove an entry once `run --help` lists the variable.
pub const PENDING_ENV: &[(&str, &str)] = &[];

/// Fail on any `MLSPACE_GITOPS_*` variable in `text` that the daemon does not read.
pub fn assert_known_env(file: &str, text: &str) {
    let known = env_names(&run_help());
    assert!(known.contains("MLSPACE_GITOPS_SOURCE"), "{known:?}");
    let unknown: Vec<String> = env_names(text)
        .into_iter()
        .filter(|v| !known.contains(v) && !PENDING_ENV.iter().any(|(p, _)| p == v))
        .collect();
    assert!(
        unknown.is_empty(),
        "{file} sets variables `mlspace-gitops run` does not read: {unknown:?}"
    );
}

/// The default of `--grace-period`, as `run --help` shows it.
pub fn default_grace_period() -> Duration {
    let help = run_help();
    let line = help
        .lines()
        .skip_while(|l| !l.contains("--grace-period"))
        .find(|l| l.contains("[default: "))
        .expect("run --help shows the grace period's default");
    let v = line.split("[default: ").nth(1).unwrap();
    humantime::parse_duration(&v[..v.find(']').unwrap()]).unwrap()
}

// ---------------------------------------------------------------------------------------
// PromQL used by the alerts and the dashboard, against the metrics the daemon exports.
// ---------------------------------------------------------------------------------------

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// Exported metric name → its label names, read from a registered [`metrics::Metrics`].
pub fn exported_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let reg = prometheus::Registry::new();
    let m = metrics::register(&reg).unwrap();
    let mut out = BTreeMap::new();
    for (name, labels) in m.descriptions() {
        out.insert(name, labels.into_iter().collect::<BTreeSet<_>>());
    }
    let all: BTreeSet<String> = names::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        out.keys().cloned().collect::<BTreeSet<_>>(),
        all,
        "metrics::names::ALL and Metrics::descriptions differ; list the new metric in both"
    );
    out
}

/// Every value a label takes, where the code fixes the set.
fn known_values(metric: &str, label: &str) -> Option<Vec<String>> {
    let call_results = || {
        // A new variant fails to compile here, so the list cannot fall behind.
        let all = [
            CallResult::Ok,
            CallResult::ClientError,
            CallResult::Throttled,
            CallResult::ServerError,
        ];
        for r in all {
            match r {
                CallResult::Ok
                | CallResult::ClientError
                | CallResult::Throttled
                | CallResult::ServerError => {}
            }
        }
        all.iter().map(|r| r.as_str().to_string()).collect()
    };
    let v: Vec<String> = match (metric, label) {
        (names::RECONCILE_TOTAL, "result") => ReconcileResult::ALL
            .iter()
            .map(|r| r.as_str().into())
            .collect(),
        (names::SOURCE_FETCH_TOTAL, "result") => {
            FetchResult::ALL.iter().map(|r| r.as_str().into()).collect()
        }
        (names::AWS_REQUESTS_TOTAL, "result") => call_results(),
        (names::RESOURCES, "state") => ResourceState::ALL
            .iter()
            .map(|s| s.as_str().into())
            .collect(),
        (names::PRUNE_REFUSED_TOTAL, "reason") => metrics::PRUNE_REFUSED_REASONS
            .iter()
            .map(|r| r.to_string())
            .collect(),
        (names::COMMIT_VERIFICATION_FAILURES_TOTAL, "reason") => {
            metrics::COMMIT_VERIFICATION_REASONS
                .iter()
                .map(|r| r.to_string())
                .collect()
        }
        (_, "kind") => Kind::ALL.iter().map(|k| k.as_str().into()).collect(),
        (names::CHANGES_APPLIED_TOTAL, "action") => {
            ["create", "update", "delete"].map(String::from).to_vec()
        }
        (names::CHANGES_APPLIED_TOTAL, "result") => {
            ["success", "failure"].map(String::from).to_vec()
        }
        (names::NOTIFICATIONS_TOTAL, "result") => metrics::NotificationResult::ALL
            .iter()
            .map(|r| r.as_str().into())
            .collect(),
        (names::NOTIFICATIONS_TOTAL, "event") => mlspace_gitops::notify::EventKind::NAMES
            .map(String::from)
            .to_vec(),
        _ => return None,
    };
    Some(v)
}

/// A series selector: metric name and `(label, operator, value)` matchers.
#[derive(Debug)]
pub struct Selector {
    /// Metric name as written (histograms with their `_bucket`/`_sum`/`_count` suffix).
    pub metric: String,
    /// Label matchers.
    pub matchers: Vec<(String, String, String)>,
}

/// Selectors of mlspace-gitops metrics (and `up`) in `expr`, and the labels named in
/// `by`/`without`/`on`/`ignoring`/`group_*` clauses. Grafana's `$variables` are skipped.
pub fn parse_promql(expr: &str) -> (Vec<Selector>, Vec<String>) {
    let c: Vec<char> = expr.chars().collect();
    let is_start = |ch: char| ch.is_ascii_alphabetic() || ch == '_';
    let is_ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    let skip_ws = |mut i: usize| {
        while i < c.len() && c[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let ident = |i: usize| {
        let mut j = i;
        while j < c.len() && is_ident(c[j]) {
            j += 1;
        }
        (c[i..j].iter().collect::<String>(), j)
    };
    let string = |i: usize| {
        let q = c[i];
        let mut j = i + 1;
        let mut s = String::new();
        while j < c.len() && c[j] != q {
            if c[j] == '\\' {
                j += 1;
            }
            s.push(c[j]);
            j += 1;
        }
        (s, j + 1)
    };
    let (mut sels, mut groups) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '"' || ch == '\'' || ch == '`' {
            i = string(i).1;
        } else if ch == '$' {
            // $var, ${var}, $__rate_interval
            i += 1;
            if i < c.len() && c[i] == '{' {
                while i < c.len() && c[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                i = ident(i).1;
            }
        } else if is_start(ch) && (i == 0 || !is_ident(c[i - 1])) {
            let (word, j) = ident(i);
            i = j;
            let k = skip_ws(i);
            if word.starts_with("mlspace_gitops_") || word == "up" {
                let mut sel = Selector {
                    metric: word,
                    matchers: Vec::new(),
                };
                if k < c.len() && c[k] == '{' {
                    i = k + 1;
                    loop {
                        i = skip_ws(i);
                        if c[i] == '}' {
                            i += 1;
                            break;
                        }
                        let (label, j) = ident(i);
                        i = skip_ws(j);
                        let op: String = if c[i] == '=' && c[i + 1] != '~' {
                            i += 1;
                            "=".into()
                        } else {
                            i += 2;
                            c[i - 2..i].iter().collect()
                        };
                        i = skip_ws(i);
                        let (value, j) = string(i);
                        sel.matchers.push((label, op, value));
                        i = skip_ws(j);
                        if c[i] == ',' {
                            i += 1;
                        }
                    }
                }
                sels.push(sel);
            } else if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word.as_str())
                && k < c.len()
                && c[k] == '('
            {
                i = k + 1;
                while c[i] != ')' {
                    i = skip_ws(i);
                    if is_start(c[i]) {
                        let (l, j) = ident(i);
                        groups.push(l);
                        i = j;
                    } else {
                        i += 1;
                    }
                }
            }
        } else {
            i += 1;
        }
    }
    (sels, groups)
}

/// Problems of one PromQL expression (metrics the daemon does not export, labels they do
/// not have, label values the code never sets), and the labels its series can carry, for
/// checking what names them afterwards (a Grafana legend, say).
pub fn check_promql(
    expr: &str,
    exported: &BTreeMap<String, BTreeSet<String>>,
) -> (Vec<String>, BTreeSet<String>) {
    let (sels, groups) = parse_promql(expr);
    let mut errs = Vec::new();
    let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for sel in &sels {
        if sel.metric == "up" {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|sfx| {
                sel.metric
                    .strip_suffix(sfx)
                    .filter(|b| b.ends_with("_seconds") && exported.contains_key(*b))
            })
            .unwrap_or(&sel.metric);
        let Some(labels) = exported.get(base) else {
            errs.push(format!("{}: the daemon exports no such metric", sel.metric));
            continue;
        };
        available.extend(labels.iter().cloned());
        if sel.metric.ends_with("_bucket") {
            available.insert("le".into());
        }
        for (label, op, value) in &sel.matchers {
            if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                errs.push(format!("{}: no label `{label}`", sel.metric));
                continue;
            }
            if value.contains('$') || op.ends_with('~') && value.contains(['.', '*', '+']) {
                continue; // a Grafana variable or a real regex
            }
            if let Some(known) = known_values(base, label) {
                for v in value.split('|') {
                    if !known.iter().any(|k| k == v) {
                        errs.push(format!(
                            "{}{{{label}{op}\"{value}\"}}: `{v}` is never set; values are {known:?}",
                            sel.metric
                        ));
                    }
                }
            }
        }
    }
    if sels.is_empty() {
        errs.push("uses no mlspace-gitops metric".into());
    }
    for g in groups {
        if !available.contains(&g) {
            errs.push(format!("groups by `{g}`, which none of its metrics has"));
        }
    }
    (errs, available)
}
