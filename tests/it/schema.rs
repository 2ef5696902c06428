//! The manifest JSON Schema (`mlspace-gitops schema`) and the manifest reference
//! (docs/manifests.md), both held to the spec types:
//! - the schema has every kind, accepts every bundled manifest and rejects unknown fields;
//! - the committed copy, docs/mlspace-gitops.schema.json, is what the code generates
//!   (regenerate with `UPDATE_GOLDEN=1 cargo test --test it schema::`);
//! - every field of every kind is in docs/manifests.md, described in words that match its
//!   doc comment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlspace_gitops::kinds::Kind;
use mlspace_gitops::manifest::{list_yaml_files, yaml};
use mlspace_gitops::schema::manifest_schema;
use serde_json::{json, Value};

use crate::support::{golden, mlspace, root, CommandExt};

// ---------------------------------------------------------------------------------------
// A small JSON Schema checker: the draft-07 keywords schemars emits, nothing more.
// ---------------------------------------------------------------------------------------

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("the checker does not know type `{other}`"),
    }
}

/// Problems of `v` (at JSON pointer `at`) against `schema`, resolving `$ref` in `root`.
fn check(root: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let obj = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errs.push(format!("{at}: not allowed here")),
        Value::Object(o) => o,
        other => panic!("not a schema: {other}"),
    };
    for key in obj.keys() {
        const KNOWN: &[&str] = &[
            "$schema",
            "$ref",
            "title",
            "description",
            "default",
            "format",
            "type",
            "enum",
            "const",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "anyOf",
            "oneOf",
            "allOf",
            "if",
            "then",
            "minimum",
            "definitions",
        ];
        assert!(
            KNOWN.contains(&key.as_str()),
            "the schema uses `{key}`, which this checker ignores; teach it"
        );
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/definitions/").expect("local $ref");
        let target = &root["definitions"][name];
        assert!(!target.is_null(), "dangling $ref {r}");
        check(root, target, v, at, errs);
    }
    if let Some(t) = obj.get("type") {
        let ok = match t {
            Value::String(t) => type_matches(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)),
            _ => panic!("bad type {t}"),
        };
        if !ok {
            return errs.push(format!("{at}: expected type {t}, got {v}"));
        }
    }
    if let Some(c) = obj.get("const") {
        if c != v {
            errs.push(format!("{at}: must be {c}, got {v}"));
        }
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errs.push(format!(
                "{at}: {v} is not one of {}",
                Value::Array(e.clone())
            ));
        }
    }
    if let (Some(min), Some(n)) = (obj.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errs.push(format!("{at}: {n} is below {min}"));
        }
    }
    if let Value::Object(m) = v {
        let props = obj.get("properties").and_then(Value::as_object);
        for req in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap();
            if !m.contains_key(req) {
                errs.push(format!("{at}: `{req}` is required"));
            }
        }
        for (k, val) in m {
            let p = format!("{at}/{k}");
            match props.and_then(|ps| ps.get(k)) {
                Some(s) => check(root, s, val, &p, errs),
                None => match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{p}: unknown field")),
                    Some(s) => check(root, s, val, &p, errs),
                    None => {}
                },
            }
        }
    }
    if let (Some(items), Value::Array(a)) = (obj.get("items"), v) {
        for (i, item) in a.iter().enumerate() {
            check(root, items, item, &format!("{at}/{i}"), errs);
        }
    }
    for s in obj
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        check(root, s, v, at, errs);
    }
    let branch_errors = |key: &str| -> Option<Vec<Vec<String>>> {
        obj.get(key).and_then(Value::as_array).map(|bs| {
            bs.iter()
                .map(|b| {
                    let mut e = Vec::new();
                    check(root, b, v, at, &mut e);
                    e
                })
                .collect()
        })
    };
    if let Some(bs) = branch_errors("anyOf") {
        if !bs.iter().any(Vec::is_empty) {
            errs.push(format!("{at}: matches no alternative: {bs:?}"));
        }
    }
    if let Some(bs) = branch_errors("oneOf") {
        let n = bs.iter().filter(|e| e.is_empty()).count();
        if n != 1 {
            errs.push(format!(
                "{at}: matches {n} alternatives, not exactly one: {bs:?}"
            ));
        }
    }
    if let Some(cond) = obj.get("if") {
        let mut e = Vec::new();
        check(root, cond, v, at, &mut e);
        if e.is_empty() {
            if let Some(then) = obj.get("then") {
                check(root, then, v, at, errs);
            }
        }
    }
}

fn problems(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(schema, schema, doc, "", &mut errs);
    errs
}

/// Every document of every YAML file under `dir`, with its file.
fn documents(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for f in list_yaml_files(dir).unwrap() {
        let text = std::fs::read_to_string(&f).unwrap();
        let file: Arc<Path> = Arc::from(f.as_path());
        for d in yaml::parse_documents(&file, &text).unwrap() {
            if !d.value.is_null() {
                out.push((f.clone(), d.value));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The schema itself.
// ---------------------------------------------------------------------------------------

#[test]
fn cli_prints_the_schema_and_the_committed_copy_is_current() {
    let out = mlspace(&["schema"]).run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let printed: Value = serde_json::from_str(&text).expect("schema prints valid JSON");
    assert_eq!(printed, manifest_schema());

    // Also regenerated by `mlspace-gitops schema > docs/mlspace-gitops.schema.json`.
    golden::check("docs/mlspace-gitops.schema.json", &text, "schema::");
}

#[test]
fn schema_describes_the_header_and_every_kind() {
    let s = manifest_schema();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["properties"]["apiVersion"]["const"], "mlspace-gitops/v1");
    let kinds: Vec<&str> = s["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, all);
    for &k in Kind::ALL {
        let spec = spec_definition(&s, k);
        let def = &s["definitions"][&spec];
        assert_eq!(def["type"], "object", "{spec}");
        assert!(
            !def["properties"].as_object().unwrap().is_empty(),
            "{spec} has no properties"
        );
    }
    let required: Vec<&str> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["apiVersion", "kind", "metadata", "spec"]);
}

/// The definition name `kind`'s `spec` refers to.
fn spec_definition(schema: &Value, kind: Kind) -> String {
    let branch = schema["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["if"]["properties"]["kind"]["const"] == kind.as_str())
        .unwrap_or_else(|| panic!("no branch for {kind}"));
    branch["then"]["properties"]["spec"]["$ref"]
        .as_str()
        .unwrap()
        .strip_prefix("#/definitions/")
        .unwrap()
        .to_string()
}

#[test]
fn bundled_manifests_match_the_schema() {
    let s = manifest_schema();
    let mut seen_kinds = BTreeSet::new();
    let mut failures = Vec::new();
    for dir in ["manifests", "docs/examples", "deploy/iam"] {
        let docs = documents(&root().join(dir));
        assert!(!docs.is_empty(), "{dir} has no documents");
        for (file, doc) in docs {
            seen_kinds.insert(doc["kind"].as_str().unwrap_or_default().to_string());
            for p in problems(&s, &doc) {
                failures.push(format!("{}: {p}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let all: BTreeSet<String> = Kind::ALL.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        seen_kinds, all,
        "the bundled manifests should exercise every kind"
    );
}

#[test]
fn unknown_and_misplaced_fields_are_rejected() {
    let s = manifest_schema();
    // Every struct of the format denies unknown fields, as serde does.
    for (name, def) in s["definitions"].as_object().unwrap() {
        if def.get("properties").is_some() {
            assert_eq!(
                def["additionalProperties"],
                json!(false),
                "{name} accepts unknown fields"
            );
        }
    }
    let role = json!({
        "apiVersion": "mlspace-gitops/v1",
        "kind": "Role",
        "metadata": {"name": "mlspace-app-role"},
        "spec": {"assumeRolePolicyFile": "trust.json"}
    });
    assert_eq!(problems(&s, &role), Vec::<String>::new());

    let mut bad = role.clone();
    bad["spec"]["assumeRolePolicyFiel"] = json!("typo.json");
    assert_eq!(
        problems(&s, &bad),
        ["/spec/assumeRolePolicyFiel: unknown field"]
    );
    // A field of another kind is unknown too: the spec follows `kind`.
    let mut bad = role.clone();
    bad["spec"]["versioning"] = json!(true);
    assert_eq!(problems(&s, &bad), ["/spec/versioning: unknown field"]);
    let mut bad = role.clone();
    bad["metadata"]["namespace"] = json!("x");
    assert_eq!(problems(&s, &bad), ["/metadata/namespace: unknown field"]);
    let mut bad = role.clone();
    bad["status"] = json!({});
    assert_eq!(problems(&s, &bad), ["/status: unknown field"]);

    let mut bad = role.clone();
    bad["apiVersion"] = json!("mlspace-gitops/v2");
    assert_eq!(problems(&s, &bad).len(), 1);
    let mut bad = role;
    bad["kind"] = json!("Queue");
    assert_eq!(problems(&s, &bad).len(), 1);

    let table = json!({
        "apiVersion": "mlspace-gitops/v1",
        "kind": "Table",
        "metadata": {"name": "t"},
        "spec": {"billingMode": "ON_DEMAND"}
    });
    let p = problems(&s, &table).join("\n");
    assert!(p.contains("`partitionKey` is required"), "{p}");
    assert!(p.contains("/spec/billingMode"), "{p}");
}

// ---------------------------------------------------------------------------------------
// docs/manifests.md against the doc comments.
// ---------------------------------------------------------------------------------------

/// Definitions reachable from `start` through `$ref`, `start` included.
fn reachable(schema: &Value, start: &str) -> BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    out.push(r.trim_start_matches("#/definitions/").to_string());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_string()];
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone()) {
            refs(&schema["definitions"][&n], &mut todo);
        }
    }
    seen
}

/// The text under the level-2 heading `heading` up to the next one.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/manifests.md has no `## {heading}` section"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

/// Identifiers inside the code spans of `line` (`{readCapacityUnits, ...}` gives both names).
fn code_tokens(line: &str) -> BTreeSet<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| {
            span.split(|c: char| !(c.is_ascii_alphanumeric() || "_:-".contains(c)))
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The words that carry meaning, lowercased, a plural `s` dropped.
fn words(text: &str) -> BTreeSet<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "this", "that", "are", "its", "from", "only", "into", "not",
        "can", "has", "may", "any", "one", "all", "per", "each", "default", "true", "false",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(|w| w.to_lowercase())
        .filter(|w| w.len() >= 3 && !STOP.contains(&w.as_str()))
        .map(|w| w.strip_suffix('s').map(str::to_string).unwrap_or(w))
        .collect()
}

/// Share of the doc comment's words found in `line`.
fn overlap(comment: &str, line: &str) -> f64 {
    let want = words(comment);
    if want.is_empty() {
        return 1.0;
    }
    let have = words(line);
    want.intersection(&have).count() as f64 / want.len() as f64
}

/// The doc comment of a property schema (schemars puts it beside `$ref`/`allOf` too).
fn description(prop: &Value) -> &str {
    prop["description"].as_str().unwrap_or_default()
}

#[test]
fn every_field_of_every_kind_is_documented_in_manifests_md() {
    const MIN_OVERLAP: f64 = 0.7;
    let s = manifest_schema();
    let doc = std::fs::read_to_string(root().join("docs/manifests.md")).unwrap();
    let mut sections: BTreeMap<String, &str> = BTreeMap::new();
    sections.insert(
        "Metadata".into(),
        section(&doc, "Common fields: metadata and tags"),
    );
    for &k in Kind::ALL {
        sections.insert(spec_definition(&s, k), section(&doc, k.as_str()));
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (start, text) in &sections {
        for def_name in reachable(&s, start) {
            let def = &s["definitions"][&def_name];
            for (prop, pschema) in def["properties"].as_object().into_iter().flatten() {
                checked += 1;
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| code_tokens(l).contains(prop))
                    .collect();
                if lines.is_empty() {
                    failures.push(format!(
                        "{def_name}.{prop} (in {start}'s section) is not mentioned as `{prop}`"
                    ));
                    continue;
                }
                let comment = description(pschema);
                let best = lines
                    .iter()
                    .map(|l| overlap(comment, l))
                    .fold(0.0, f64::max);
                if best < MIN_OVERLAP {
                    failures.push(format!(
                        "{def_name}.{prop}: no line of {start}'s section describes it like its doc \
                         comment ({:.0}% of the words): {comment:?}\n    closest: {:?}",
                        best * 100.0,
                        lines
                            .iter()
                            .max_by(|a, b| overlap(comment, a).total_cmp(&overlap(comment, b)))
                            .unwrap()
                    ));
                }
            }
            // Enumerated values are spelled out too.
            for v in def["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b["const"].as_str())
                .chain(
                    def["enum"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                )
            {
                checked += 1;
                if !text.lines().any(|l| code_tokens(l).contains(v)) {
                    failures.push(format!(
                        "{def_name} value `{v}` is not in {start}'s section"
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} fields checked: the walk is broken"
    );
    assert!(
        failures.is_empty(),
        "docs/manifests.md is behind the spec types:\n{}",
        failures.join("\n")
    );
}

#[test]
fn docs_show_editor_setup() {
    let doc = std::fs::read_to_string(root().join("docs/manifests.md")).unwrap();
    for needle in [
        "mlspace-gitops schema",
        "# yaml-language-server: $schema=",
        "yaml.schemas",
        "mlspace-gitops.schema.json",
    ] {
        assert!(doc.contains(needle), "docs/manifests.md lacks `{needle}`");
    }
}
