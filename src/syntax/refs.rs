//! References to values AWS assigns: `{ref:KIND/NAME.ATTRIBUTE}` in any string of a spec,
//! e.g. `{ref:KmsKey/mlspace-key.arn}`.
//!
//! The form cannot be confused with `{UPPER_SNAKE}` placeholders (it starts with a lower
//! case `ref:`) nor with IAM policy variables (`${aws:username}`, which start with `$`).
//! Placeholders inside a reference are resolved first (`{ref:KmsKey/{KEY_NAME}.arn}`). The
//! attribute is what follows the last `.`, so names with dots (bucket names) are fine.

use serde_json::Value;

/// The opening of a reference.
pub const PREFIX: &str = "{ref:";

/// One reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref {
    /// The kind named, as written (`KmsKey`).
    pub kind: String,
    /// The resource's name.
    pub name: String,
    /// The attribute (`arn`, `id`, `name`).
    pub attribute: String,
}

impl Ref {
    /// The reference as written: `{ref:KIND/NAME.ATTRIBUTE}`.
    pub fn text(&self) -> String {
        format!("{PREFIX}{}/{}.{}}}", self.kind, self.name, self.attribute)
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}.{}", self.kind, self.name, self.attribute)
    }
}

/// A reference that does not parse, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The text from `{ref:` to the end of the string or the closing `}`.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

/// Every reference in `s`, in order, and the malformed ones.
pub fn find(s: &str) -> (Vec<Ref>, Vec<Malformed>) {
    let mut refs = Vec::new();
    let mut bad = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(PREFIX) {
        let after = &rest[i + PREFIX.len()..];
        let Some(end) = after.find('}') else {
            bad.push(Malformed {
                text: rest[i..].to_string(),
                why: "has no closing `}`",
            });
            break;
        };
        let body = &after[..end];
        match parse(body) {
            Ok(r) => refs.push(r),
            Err(why) => bad.push(Malformed {
                text: format!("{PREFIX}{body}}}"),
                why,
            }),
        }
        rest = &after[end + 1..];
    }
    (refs, bad)
}

fn parse(body: &str) -> Result<Ref, &'static str> {
    let (kind, rest) = body
        .split_once('/')
        .ok_or("must be {ref:KIND/NAME.ATTRIBUTE}")?;
    let (name, attribute) = rest
        .rsplit_once('.')
        .ok_or("must name an attribute: {ref:KIND/NAME.ATTRIBUTE}")?;
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !ident(kind) {
        return Err("the kind must be a kind's name, such as KmsKey");
    }
    if name.is_empty() || name.contains(['{', '}']) {
        return Err("the name must not be empty nor hold braces");
    }
    if !ident(attribute) {
        return Err("the attribute must be a word, such as arn");
    }
    Ok(Ref {
        kind: kind.to_string(),
        name: name.to_string(),
        attribute: attribute.to_string(),
    })
}

/// What [`walk`] calls for each string holding a reference: its JSON pointer, the
/// references and the malformed ones.
pub type Visit<'a> = dyn FnMut(&str, &[Ref], &[Malformed]) + 'a;

/// Call `f` with the JSON pointer (relative to `v`) of every string of `v` that holds a
/// reference (object keys included), and what it holds.
pub fn walk(v: &Value, f: &mut Visit) {
    fn go(v: &Value, ptr: &mut String, f: &mut Visit) {
        match v {
            Value::String(s) if s.contains(PREFIX) => {
                let (refs, bad) = find(s);
                f(ptr, &refs, &bad);
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = ptr.len();
                    ptr.push_str(&format!("/{i}"));
                    go(item, ptr, f);
                    ptr.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&super::yaml::escape_segment(k));
                    if k.contains(PREFIX) {
                        let (refs, bad) = find(k);
                        f(ptr, &refs, &bad);
                    }
                    go(item, ptr, f);
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
    }
    go(v, &mut String::new(), f);
}

/// Every reference in `v`, each once, sorted.
pub fn collect(v: &Value) -> Vec<Ref> {
    let mut out = Vec::new();
    walk(v, &mut |_, refs, _| out.extend(refs.iter().cloned()));
    out.sort();
    out.dedup();
    out
}

/// Replace every reference of `v` for which `value` has an answer; the others stay as
/// written. Returns whether anything changed.
pub fn substitute(v: &mut Value, value: &dyn Fn(&Ref) -> Option<String>) -> bool {
    fn one(s: &str, value: &dyn Fn(&Ref) -> Option<String>) -> Option<String> {
        if !s.contains(PREFIX) {
            return None;
        }
        let (refs, _) = find(s);
        let mut out = s.to_string();
        let mut changed = false;
        for r in refs {
            if let Some(val) = value(&r) {
                out = out.replace(&r.text(), &val);
                changed = true;
            }
        }
        changed.then_some(out)
    }
    match v {
        Value::String(s) => match one(s, value) {
            Some(new) => {
                *s = new;
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let mut changed = false;
            for i in items {
                changed |= substitute(i, value);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| k.contains(PREFIX)) {
                let old = std::mem::take(map);
                for (k, mut item) in old {
                    changed |= substitute(&mut item, value);
                    let key = one(&k, value).inspect(|_| changed = true).unwrap_or(k);
                    map.insert(key, item);
                }
            } else {
                for item in map.values_mut() {
                    changed |= substitute(item, value);
                }
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn r(kind: &str, name: &str, attribute: &str) -> Ref {
        Ref {
            kind: kind.into(),
            name: name.into(),
            attribute: attribute.into(),
        }
    }

    #[test]
    fn references_are_found_and_placeholders_and_variables_are_not() {
        let (refs, bad) = find("arn:{AWS_PARTITION}:s3:::${aws:username}/{ref:KmsKey/mlspace-key.arn} and {ref:Bucket/a.b.c.name}");
        assert_eq!(
            refs,
            [
                r("KmsKey", "mlspace-key", "arn"),
                r("Bucket", "a.b.c", "name")
            ]
        );
        assert!(bad.is_empty());
        let (_, bad) = find("{ref:KmsKey/x} {ref:nope} {ref:Kms Key/x.arn} {ref:KmsKey/x.arn");
        let why: Vec<&str> = bad.iter().map(|b| b.why).collect();
        assert_eq!(
            why,
            [
                "must name an attribute: {ref:KIND/NAME.ATTRIBUTE}",
                "must be {ref:KIND/NAME.ATTRIBUTE}",
                "the kind must be a kind's name, such as KmsKey",
                "has no closing `}`"
            ]
        );
    }

    #[test]
    fn known_references_are_replaced_and_unknown_ones_kept() {
        let mut v = json!({"Resource": ["{ref:KmsKey/k.arn}", "{ref:KmsKey/other.arn}"], "{ref:KmsKey/k.id}": 1});
        let changed = substitute(&mut v, &|r| {
            (r.name == "k").then(|| format!("<{}>", r.attribute))
        });
        assert!(changed);
        assert_eq!(
            v,
            json!({"Resource": ["<arn>", "{ref:KmsKey/other.arn}"], "<id>": 1})
        );
        assert_eq!(collect(&v), [r("KmsKey", "other", "arn")]);
    }

    #[test]
    fn walk_gives_pointers() {
        let v = json!({"a": [{"b~/c": "x {ref:Role/r.arn}"}]});
        let mut seen = Vec::new();
        walk(&v, &mut |p, refs, _| seen.push((p.to_string(), refs.len())));
        assert_eq!(seen, [("/a/0/b~0~1c".to_string(), 1)]);
    }
}
