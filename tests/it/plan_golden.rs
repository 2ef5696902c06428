//! Golden plans: manifests plus observed AWS state as JSON → the plan, as text and as JSON,
//! for every kind and every action. Pure: no emulator, no network, no async runtime.
//!
//! Each directory under `tests/golden/plans/` is one case:
//!
//! | file | what it holds |
//! |---|---|
//! | `manifests/*.yaml` | an Environment and the resources (input) |
//! | `observed.json` | what AWS has, as `mlspace_gitops::plan::Observed`; `{}` for an empty account (input) |
//! | `inventory.json` | optional: the inventory, a list of `InventoryEntry` (input) |
//! | `options.json` | optional: `{"prune": bool, "allowMassPrune": bool}` (input) |
//! | `plan.txt` | the plan as people read it, plus the line saying why prune was refused |
//! | `plan.json` | the plan's JSON contract, plus `pruneRefused` |
//! | `steps.json` | the steps of every change that does something, in plan order |
//! | `plan.md` | the pull-request comment (`plan -o markdown`) |
//!
//! The run is what `plan` does between reading and applying: load the manifests, choose the
//! removals from the inventory, plan (resources whose inventory entry says `creating` are
//! ours), render. `observed.json` must also read back unchanged after being written out.
//!
//! To add a case, create its directory with the inputs, then write the expected files with
//! `UPDATE_GOLDEN=1 cargo test --test it plan_golden::` and read every one of them before
//! committing: a wrong expectation frozen here is worse than none. After an intended change to
//! the planner, regenerate the same way and review `git diff tests/golden/plans`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use mlspace_gitops::inventory::{self, InventoryEntry, PruneOptions};
use mlspace_gitops::plan::{self, Observed, Plan, PlanInput, ResourceId};

use crate::support::{golden, root};

/// `options.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Options {
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    allow_mass_prune: bool,
}

/// The expected files of every case.
const EXPECTED: [&str; 4] = ["plan.txt", "plan.json", "steps.json", "plan.md"];
/// The inputs a case may hold.
const KNOWN: [&str; 4] = [
    "manifests",
    "observed.json",
    "inventory.json",
    "options.json",
];

/// The cases, relative to the repository root.
const CASES: &str = "tests/golden/plans";

#[test]
fn golden_plans() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join(CASES))
        .expect("tests/golden/plans")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under tests/golden/plans");
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir.file_name().unwrap().to_string_lossy();
        let got = run_case(dir).unwrap_or_else(|e| panic!("case {name}: {e}"));
        for (file, text) in EXPECTED.iter().zip(&got) {
            let path = Path::new(CASES).join(&*name).join(file);
            if let Err(e) = golden::compare_with(&path, text, "plan_golden::", diff) {
                failures.push(format!("case {name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) wrong\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Plan one case; returns the texts of [`EXPECTED`].
fn run_case(dir: &Path) -> Result<[String; 4], String> {
    // A misspelt input would otherwise be left out without a word.
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let file = entry.map_err(|e| e.to_string())?.file_name();
        let file = file.to_string_lossy();
        if !KNOWN.contains(&file.as_ref()) && !EXPECTED.contains(&file.as_ref()) {
            return Err(format!(
                "unknown file `{file}` (expected {KNOWN:?} and {EXPECTED:?})"
            ));
        }
    }
    let loaded =
        mlspace_gitops::manifest::load_dir(&dir.join("manifests")).map_err(|e| match e {
            mlspace_gitops::manifest::ManifestError::Invalid(d) => {
                format!("invalid manifests:\n{d}")
            }
            other => other.to_string(),
        })?;
    let desired = &loaded.desired;
    let fixture: Value = read_json(&dir.join("observed.json"))?;
    let observed: Observed =
        serde_path_to_error::deserialize(&fixture).map_err(|e| format!("observed.json: {e}"))?;
    round_trips(&fixture, &observed)?;
    let entries: Vec<InventoryEntry> = read_optional(&dir.join("inventory.json"))?;
    let options: Options = read_optional(&dir.join("options.json"))?;

    let removals = inventory::removals(
        desired,
        Ok(&entries),
        PruneOptions {
            enabled: options.prune,
            allow_mass: options.allow_mass_prune,
        },
    );
    let creating: BTreeSet<ResourceId> = entries
        .iter()
        .filter(|e| e.creating)
        .map(InventoryEntry::id)
        .collect();
    let input = PlanInput {
        desired,
        observed: &observed,
        removals: &removals.removals,
        skip_kinds: &BTreeSet::new(),
        creating: &creating,
    };
    let plan = plan::plan(&input);
    // Pure: the same input gives the same plan.
    if plan::plan(&input) != plan {
        return Err("planning twice gave two plans".into());
    }

    let mut text = plan.to_string();
    let mut json = plan.to_json();
    if let Some(why) = &removals.refused {
        text.push_str(&format!("{why}\n"));
        json["pruneRefused"] = json!({ "reason": why.reason(), "message": why.to_string() });
    }
    // Paths relative to the case: the golden file must not depend on where the clone lives.
    let mut warnings = loaded.warnings.clone();
    warnings.relocate(dir, "");
    let findings: Vec<String> = warnings.sorted().iter().map(|d| d.to_string()).collect();
    let title = format!("{} (manifests)", desired.environment.name);
    let markdown = mlspace_gitops::review::plan_comment(&[(title, &plan)], findings)
        .render(mlspace_gitops::review::COMMENT_LIMIT);
    Ok([text, pretty(&json), pretty(&steps(&plan)), markdown])
}

/// `[{kind, name, action, steps: [op, ...]}]` for every change that does something.
fn steps(plan: &Plan) -> Value {
    let changes: Vec<Value> = plan
        .actionable()
        .map(|c| {
            let ops: Vec<Value> = c
                .steps
                .iter()
                .map(|s| serde_json::to_value(s).expect("steps serialize")["op"].take())
                .collect();
            json!({ "kind": c.kind, "name": c.name, "action": c.action, "steps": ops })
        })
        .collect();
    Value::Array(changes)
}

/// The observed state survives a round trip: written out, it is the fixture itself (so the
/// fixture holds no field the types drop, e.g. a misspelt one, and is in the types' own form:
/// sets sorted, settings not read left out), and read back, it is the same value.
fn round_trips(fixture: &Value, observed: &Observed) -> Result<(), String> {
    let written = serde_json::to_value(observed).map_err(|e| e.to_string())?;
    if &written != fixture {
        return Err(format!(
            "observed.json is not what its types write (- fixture, + written)\n{}",
            diff(&pretty(fixture), &pretty(&written))
        ));
    }
    let again: Observed = serde_json::from_value(written)
        .map_err(|e| format!("observed state does not read back: {e}"))?;
    if &again != observed {
        return Err("observed state changes when written and read back".into());
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_optional<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    if path.exists() {
        read_json(path)
    } else {
        Ok(T::default())
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialize") + "\n"
}

/// A line diff (longest common subsequence) of `want` and `got`: changed lines with two
/// lines of context, `-` expected, `+` got. (The plans are short; every change is shown.)
fn diff(want: &str, got: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i]));
            i += 1;
        } else {
            lines.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        lines[k.saturating_sub(2)..(k + 3).min(lines.len())]
            .iter()
            .any(|(s, _)| *s != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (sign, line)) in lines.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            out.push_str(&format!("{sign} {line}\n"));
        } else {
            skipped = true;
        }
    }
    out
}
