//! The repository's bundled manifests as policy documents, for tests and benches:
//! `{PLACEHOLDER}` tokens resolved from `manifests/environment.yaml` as the daemon does.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository root (two levels above this crate).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_yaml(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// YAML to JSON, as the manifest loader reads documents.
pub fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s.parse::<f64>().map_or(Value::Null, Value::from),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), to_json(v)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// The placeholder values of the default environment.
pub fn params() -> BTreeMap<String, String> {
    let env = &load_yaml(&repo().join("manifests/environment.yaml"))[0]["spec"];
    let mut out = BTreeMap::new();
    out.insert(
        "AWS_PARTITION".into(),
        env["partition"].as_str().unwrap().to_owned(),
    );
    out.insert(
        "AWS_REGION".into(),
        env["region"].as_str().unwrap().to_owned(),
    );
    out.insert(
        "AWS_ACCOUNT".into(),
        env["account"].as_str().unwrap().to_owned(),
    );
    if let Yaml::Hash(params) = &env["params"] {
        for (k, v) in params {
            out.insert(
                k.as_str().unwrap().to_owned(),
                v.as_str().unwrap().to_owned(),
            );
        }
    }
    out
}

/// `text` with every `{NAME}` replaced (values may use the built-in names themselves), and
/// every reference to a KMS key's ARN (`{ref:KmsKey/NAME.arn}`, a value KMS assigns) replaced
/// by a key ARN of the same shape, as mlspace-gitops checks documents before the key exists.
pub fn resolve(text: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = text.to_owned();
    for _ in 0..2 {
        for (k, v) in params {
            out = out.replace(&format!("{{{k}}}"), v);
        }
    }
    while let Some(start) = out.find("{ref:KmsKey/") {
        let end = start
            + out[start..]
                .find(".arn}")
                .expect("a key reference ends in .arn}");
        let arn = format!(
            "arn:{}:kms:{}:{}:key/00000000-0000-4000-8000-000000000000",
            params["AWS_PARTITION"], params["AWS_REGION"], params["AWS_ACCOUNT"]
        );
        out.replace_range(start..end + ".arn}".len(), &arn);
    }
    out
}

fn resolved_json(v: &Value, params: &BTreeMap<String, String>) -> Value {
    serde_json::from_str(&resolve(&v.to_string(), params)).unwrap()
}

/// `manifests/iam/policies/*.json`, resolved, by file name, sorted.
pub fn bundled_policies() -> Vec<(String, Value)> {
    let params = params();
    let dir = repo().join("manifests/iam/policies");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = resolve(&std::fs::read_to_string(&p).unwrap(), &params);
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A Role of `manifests/iam/roles.yaml`.
pub struct Role {
    pub name: String,
    pub trust: Value,
    /// Managed policy names or ARNs, resolved.
    pub managed: Vec<String>,
}

/// The roles of `manifests/iam/roles.yaml`.
pub fn bundled_roles() -> Vec<Role> {
    let params = params();
    load_yaml(&repo().join("manifests/iam/roles.yaml"))
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Role"))
        .map(|d| Role {
            name: d["metadata"]["name"].as_str().unwrap().to_owned(),
            trust: resolved_json(&to_json(&d["spec"]["assumeRolePolicy"]), &params),
            managed: d["spec"]["managedPolicies"]
                .as_vec()
                .map(|v| {
                    v.iter()
                        .map(|p| resolve(p.as_str().unwrap(), &params))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// The bucket policies of `manifests/s3/buckets.yaml`, by bucket name.
pub fn bundled_bucket_policies() -> Vec<(String, Value)> {
    let params = params();
    load_yaml(&repo().join("manifests/s3/buckets.yaml"))
        .iter()
        .filter(|d| !d["spec"]["policy"].is_badvalue())
        .map(|d| {
            let name = resolve(d["metadata"]["name"].as_str().unwrap(), &params);
            (name, resolved_json(&to_json(&d["spec"]["policy"]), &params))
        })
        .collect()
}

/// The managed policy named `name` (by `manifests/iam/policies.yaml` file naming).
pub fn bundled_policy(name: &str) -> Option<Value> {
    bundled_policies()
        .into_iter()
        .find(|(file, _)| file.trim_end_matches(".json") == name)
        .map(|(_, v)| v)
}

/// The same access written differently: one statement per (action, resource), in
/// reverse order, actions in another case, one-element lists as strings, condition
/// values reversed and condition keys lowercased.
pub fn rewrite(doc: &Value) -> Value {
    let mut out = Vec::new();
    for (si, s) in doc["Statement"].as_array().unwrap().iter().enumerate() {
        let list = |v: &Value| -> Vec<Value> {
            match v {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            }
        };
        let actions = list(&s["Action"]);
        let resources = list(&s["Resource"]);
        for (ai, a) in actions.iter().enumerate() {
            for r in &resources {
                let a = a.as_str().unwrap();
                let a = if (si + ai) % 2 == 0 {
                    a.to_ascii_lowercase()
                } else {
                    a.to_ascii_uppercase()
                };
                let mut stmt = Map::new();
                stmt.insert("Effect".into(), s["Effect"].clone());
                stmt.insert("Action".into(), json!([a]));
                stmt.insert("Resource".into(), r.clone());
                if let Some(Value::Object(ops)) = s.get("Condition") {
                    let mut cond = Map::new();
                    for (op, keys) in ops.iter().rev() {
                        let mut k2 = Map::new();
                        for (k, v) in keys.as_object().unwrap() {
                            let v = match v {
                                Value::Array(items) => {
                                    Value::Array(items.iter().rev().cloned().collect())
                                }
                                other => json!([other]),
                            };
                            k2.insert(k.to_ascii_lowercase(), v);
                        }
                        cond.insert(op.clone(), Value::Object(k2));
                    }
                    stmt.insert("Condition".into(), Value::Object(cond));
                }
                out.push(Value::Object(stmt));
            }
        }
    }
    out.reverse();
    json!({"Version": "2012-10-17", "Statement": out})
}

/// Every bundled document with the kind it is used as: managed policies (the boundary as
/// a boundary), trust policies, bucket policies.
pub fn bundled_documents() -> Vec<(String, mlspace_policy::PolicyKind, Value)> {
    use mlspace_policy::PolicyKind;
    let mut out: Vec<(String, PolicyKind, Value)> = bundled_policies()
        .into_iter()
        .map(|(file, doc)| {
            let kind = if file.contains("boundary") {
                PolicyKind::Boundary
            } else {
                PolicyKind::Identity
            };
            (file, kind, doc)
        })
        .collect();
    for role in bundled_roles() {
        out.push((format!("role {}", role.name), PolicyKind::Trust, role.trust));
    }
    for (name, doc) in bundled_bucket_policies() {
        out.push((format!("bucket {name}"), PolicyKind::Resource, doc));
    }
    out
}
