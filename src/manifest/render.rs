//! `render`: the desired state as JSON (a stable contract) or YAML.

use serde_json::Value;
use yaml_rust2::yaml::{Hash, Yaml};

use super::DesiredState;

/// The render contract: `{"environment": {...}, "resources": [{"kind", "name", "spec"}]}`.
pub fn to_json_value(d: &DesiredState) -> Value {
    serde_json::to_value(d).expect("desired state is plain data")
}

/// Pretty JSON with a trailing newline.
pub fn to_json(d: &DesiredState) -> String {
    let mut s = serde_json::to_string_pretty(&to_json_value(d)).expect("plain data");
    s.push('\n');
    s
}

/// The same content as YAML.
pub fn to_yaml(d: &DesiredState) -> String {
    json_to_yaml_text(&to_json_value(d))
}

/// Emit any JSON value as block-style YAML.
pub fn json_to_yaml_text(v: &Value) -> String {
    let mut out = String::new();
    let mut em = yaml_rust2::YamlEmitter::new(&mut out);
    em.dump(&to_yaml_node(v)).expect("writing to a String cannot fail");
    out.push('\n');
    out
}

fn to_yaml_node(v: &Value) -> Yaml {
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(to_yaml_node).collect()),
        Value::Object(m) => {
            let mut h = Hash::new();
            for (k, v) in m {
                h.insert(Yaml::String(k.clone()), to_yaml_node(v));
            }
            Yaml::Hash(h)
        }
    }
}
