//! Placeholders: `{UPPER_SNAKE}` tokens in string values, resolved from the Environment.
//!
//! The seeds' policies are written with `{AWS_ACCOUNT}`-style tokens so they can be pasted
//! verbatim. IAM policy variables (`${aws:username}`) are not placeholders and pass through,
//! as does any `{...}` that is not upper snake case.

use std::collections::BTreeMap;

use serde_json::Value;

/// Placeholder name → value.
pub type Vars = BTreeMap<String, String>;

/// Replace placeholders in every string of `v` (keys included). Returns the pointers and
/// names of placeholders that have no value.
pub fn resolve(v: &mut Value, vars: &Vars) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    walk(v, None, vars, &mut missing);
    missing
}

/// The path to a node as a chain on the stack: pointers are only built for the rare
/// missing placeholder, not for every node (this walk runs over every manifest value).
struct Path<'p> {
    parent: Option<&'p Path<'p>>,
    seg: Seg<'p>,
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn pointer(p: Option<&Path>) -> String {
    let mut segs = Vec::new();
    let mut cur = p;
    while let Some(node) = cur {
        segs.push(match node.seg {
            Seg::Key(k) => super::yaml::escape_segment(k).into_owned(),
            Seg::Index(i) => i.to_string(),
        });
        cur = node.parent;
    }
    segs.iter().rev().map(|s| format!("/{s}")).collect()
}

fn walk(v: &mut Value, path: Option<&Path>, vars: &Vars, missing: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            if let Some(new) = substitute(s, vars, &mut |name| {
                missing.push((pointer(path), name.to_string()))
            }) {
                *s = new;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(
                    item,
                    Some(&Path {
                        parent: path,
                        seg: Seg::Index(i),
                    }),
                    vars,
                    missing,
                );
            }
        }
        Value::Object(map) => {
            // Keys may hold placeholders too (e.g. a condition key on a tagged ARN).
            if map.keys().any(|k| k.contains('{')) {
                let old = std::mem::take(map);
                for (k, mut val) in old {
                    let here = Path {
                        parent: path,
                        seg: Seg::Key(&k),
                    };
                    let key = substitute(&k, vars, &mut |name| {
                        missing.push((pointer(Some(&here)), name.to_string()))
                    })
                    .unwrap_or_else(|| k.clone());
                    walk(&mut val, Some(&here), vars, missing);
                    map.insert(key, val);
                }
            } else {
                for (k, val) in map.iter_mut() {
                    walk(
                        val,
                        Some(&Path {
                            parent: path,
                            seg: Seg::Key(k),
                        }),
                        vars,
                        missing,
                    );
                }
            }
        }
        _ => {}
    }
}

/// Substitute the placeholders of one string; `None` when it has none.
pub fn substitute(s: &str, vars: &Vars, on_missing: &mut dyn FnMut(&str)) -> Option<String> {
    if !s.contains('{') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && (i == 0 || bytes[i - 1] != b'$') {
            if let Some(len) = token_len(&bytes[i + 1..]) {
                let name = &s[i + 1..i + 1 + len];
                if bytes.get(i + 1 + len) == Some(&b'}') {
                    match vars.get(name) {
                        Some(val) => {
                            out.push_str(&s[last..i]);
                            out.push_str(val);
                            changed = true;
                        }
                        None => {
                            on_missing(name);
                            out.push_str(&s[last..i + len + 2]);
                        }
                    }
                    i += len + 2;
                    last = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(&s[last..]);
    Some(out)
}

/// Length of an UPPER_SNAKE name at the start of `b` (must start with a letter).
fn token_len(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_uppercase() {
        return None;
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'_')
        .count();
    Some(n)
}

/// Whether a string still holds a placeholder token.
pub fn has_placeholder(s: &str) -> bool {
    let mut found = false;
    substitute(s, &Vars::new(), &mut |_| found = true);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        [("AWS_ACCOUNT", "123456789012"), ("AWS_PARTITION", "aws")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn replaces_tokens_and_keeps_iam_variables() {
        let mut v = json!({"r": "arn:{AWS_PARTITION}:s3:::b-{AWS_ACCOUNT}/${aws:username}/{lower}/${AWS_X}"});
        assert!(resolve(&mut v, &vars()).is_empty());
        assert_eq!(
            v["r"],
            "arn:aws:s3:::b-123456789012/${aws:username}/{lower}/${AWS_X}"
        );
    }

    #[test]
    fn reports_missing_with_pointer() {
        let mut v = json!({"a": [{"b": "x-{NOPE}-{AWS_ACCOUNT}"}]});
        let missing = resolve(&mut v, &vars());
        assert_eq!(missing, vec![("/a/0/b".to_string(), "NOPE".to_string())]);
        assert_eq!(v["a"][0]["b"], "x-{NOPE}-123456789012");
    }

    #[test]
    fn keys_are_resolved() {
        let mut v = json!({"aws:ResourceTag/{AWS_PARTITION}": "x"});
        resolve(&mut v, &vars());
        assert_eq!(v["aws:ResourceTag/aws"], "x");
    }

    #[test]
    fn has_placeholder_detects_tokens() {
        assert!(has_placeholder("a{B_C}"));
        assert!(!has_placeholder("${aws:x} {b}"));
    }
}
