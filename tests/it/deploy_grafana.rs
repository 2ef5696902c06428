//! deploy/grafana/dashboard.json: a well-formed dashboard whose queries use only metrics,
//! labels and label values the daemon exports, and which shows what the issue lists
//! (reconcile rate and failures, duration percentiles, resources by state, drift over time,
//! AWS calls and errors by operation, the revision).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::deploy::{check_promql, exported_metrics, parse_promql};
use crate::support::read;

const DASHBOARD: &str = "deploy/grafana/dashboard.json";

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).expect("dashboard.json is JSON")
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// (panel title, expr, legend) of every query.
fn queries(d: &Value) -> Vec<(String, String, String)> {
    panels(d)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                (
                    title.clone(),
                    t["expr"].as_str().expect("a PromQL target").to_string(),
                    t["legendFormat"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "mlspace-gitops");
    assert!(d["title"].is_string());
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let vars = d["templating"]["list"].as_array().unwrap();
    assert!(vars.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap().to_string();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: gridPos");
        for (ox, oy, ow, oh, other) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title.clone()));
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
            assert!(p["description"].is_string(), "{title}: a description");
            for t in p["targets"].as_array().unwrap() {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            }
        }
    }
}

#[test]
fn queries_use_only_exported_metrics_and_labels() {
    let d = dashboard();
    let exported = exported_metrics();
    let mut failures = Vec::new();
    for (title, expr, legend) in queries(&d) {
        let (errs, labels) = check_promql(&expr, &exported);
        failures.extend(errs.into_iter().map(|e| format!("{title}: {e}")));
        for part in legend.split("{{").skip(1) {
            let l = part.split("}}").next().unwrap().trim();
            if !labels.contains(l) {
                failures.push(format!(
                    "{title}: legend uses {{{{{l}}}}}, not a label of its series"
                ));
            }
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        let Some(q) = v["query"]["query"].as_str() else {
            continue;
        };
        let (errs, labels) = check_promql(q, &exported);
        failures.extend(
            errs.into_iter()
                .map(|e| format!("variable {}: {e}", v["name"])),
        );
        // label_values(metric, LABEL): the label must exist.
        let label = q.trim_end_matches(')').rsplit(',').next().unwrap().trim();
        if !labels.contains(label) {
            failures.push(format!("variable {}: no label {label}", v["name"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dashboard_shows_what_operators_need() {
    let d = dashboard();
    let qs = queries(&d);
    let has = |what: &str, ok: &dyn Fn(&str, &str, &BTreeSet<String>) -> bool| {
        assert!(
            qs.iter().any(|(_, e, l)| {
                let metrics: BTreeSet<String> =
                    parse_promql(e).0.into_iter().map(|s| s.metric).collect();
                ok(e, l, &metrics)
            }),
            "no panel shows {what}"
        )
    };
    let grouped_by = |e: &str, label: &str| parse_promql(e).1.iter().any(|g| g == label);
    has("the reconcile rate", &|e, _, m| {
        m.contains("mlspace_gitops_reconcile_total")
            && e.contains("rate(")
            && grouped_by(e, "result")
    });
    has("reconcile failures", &|e, _, m| {
        m.contains("mlspace_gitops_reconcile_total") && e.contains("failure")
    });
    for q in ["0.5", "0.9", "0.99"] {
        has(&format!("the p{q} reconcile duration"), &|e, _, m| {
            m.contains("mlspace_gitops_reconcile_duration_seconds_bucket")
                && e.contains(&format!("histogram_quantile({q},"))
        });
    }
    has("resources by state", &|e, _, m| {
        m.contains("mlspace_gitops_resources") && grouped_by(e, "state")
    });
    has("drift over time", &|e, _, m| {
        m.contains("mlspace_gitops_drift_detected_total") && e.contains("increase(")
    });
    has("AWS calls by operation", &|e, _, m| {
        m.contains("mlspace_gitops_aws_requests_total")
            && grouped_by(e, "operation")
            && !e.contains("result!=")
    });
    has("AWS errors by operation", &|e, _, m| {
        m.contains("mlspace_gitops_aws_requests_total")
            && grouped_by(e, "operation")
            && e.contains(r#"result!="ok""#)
    });
    has("the revision", &|_, l, m| {
        m.contains("mlspace_gitops_source_revision_info") && l.contains("{{revision}}")
    });
    has("the leader of each environment", &|e, _, m| {
        m.contains("mlspace_gitops_leader") && grouped_by(e, "environment")
    });
}

#[test]
fn docs_show_how_to_import_the_dashboard() {
    let ops = read("docs/operations.md");
    assert!(ops.contains("deploy/grafana/dashboard.json"));
}
