//! `render`: the desired state as JSON (a stable contract) or YAML.

use serde_json::Value;

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

/// Emit any JSON value as block-style YAML. Strings are double-quoted unless they are
/// plainly text to every YAML reader (1.1 and 1.2): `2012-10-17` would be a date to a
/// YAML 1.1 tool, `yes` a boolean, `010` an octal number.
pub fn json_to_yaml_text(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => emit_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => emit_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn emit_map(out: &mut String, m: &serde_json::Map<String, Value>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&quote(k));
        out.push(':');
        emit_child(out, v, indent);
    }
}

fn emit_seq(out: &mut String, a: &[Value], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            // A mapping item starts on the dash's line.
            Value::Object(m) if !m.is_empty() => {
                let mut first = true;
                for (k, val) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        out.push_str(&" ".repeat(indent + 2));
                    }
                    out.push_str(&quote(k));
                    out.push(':');
                    emit_child(out, val, indent + 2);
                }
            }
            _ => emit_child(out, v, indent),
        }
    }
}

fn emit_child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// The string as a YAML scalar: plain when unambiguous, else a JSON string (valid YAML).
fn quote(s: &str) -> String {
    const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let plain = !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_output_reads_back_identically_and_quotes_ambiguous_strings() {
        let v = json!({"Version": "2012-10-17", "a": ["yes", "010", "x:y", "", "plain-text", 1, true, null],
            "b": [{"k": {"deep": [1]}, "l": "v"}], "c": {}, "d": [], "e": "it's \"q\"\n"});
        let text = json_to_yaml_text(&v);
        assert!(text.contains("Version: \"2012-10-17\""), "{text}");
        assert!(text.contains("- \"yes\""), "{text}");
        let back = crate::manifest::yaml::parse_documents(
            &std::sync::Arc::from(std::path::Path::new("t")),
            &text,
        )
        .unwrap();
        assert_eq!(back[0].value, v, "{text}");
    }
}
