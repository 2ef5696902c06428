//! A read-only view of a document's statements for the analyses (lint, escalation paths,
//! access delta): each element reduced to the strings it holds and where they are.
//!
//! The view is lenient: a malformed element (reported by [`crate::validate`]) is skipped,
//! so the analyses still run on the rest of the document. Pointers are built only when a
//! finding needs one, since most elements never get a finding.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::condition::{ConditionOperator, SetQualifier};
use crate::pointer::Loc;

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Takes away, whatever else grants.
    Deny,
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// A "string or list of strings" element (`Action`, `NotResource`, ...).
#[derive(Debug, Clone)]
pub(crate) struct List<'a> {
    /// The element's name, e.g. `NotAction`.
    pub(crate) key: &'static str,
    /// Whether it is the negated form (`NotAction`, `NotResource`, `NotPrincipal`).
    pub(crate) not: bool,
    /// Each string with its index in the list (`None` when the element is one string).
    pub(crate) items: Vec<(Option<usize>, &'a str)>,
}

/// One principal of a `Principal`/`NotPrincipal` element.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalItem<'a> {
    /// `AWS`, `Service`, `Federated`, `CanonicalUser`; `*` for `"Principal": "*"`.
    pub(crate) kind: &'a str,
    /// The principal; `*` for everyone.
    pub(crate) id: &'a str,
    /// Index in the kind's list, `None` when the kind holds one string.
    pub(crate) index: Option<usize>,
}

impl PrincipalItem<'_> {
    /// Whether this is everyone (`"*"` or `{"AWS": "*"}`).
    pub(crate) fn is_everyone(&self) -> bool {
        self.id == "*" && (self.kind == "*" || self.kind == "AWS")
    }
}

/// A principal element.
#[derive(Debug, Clone)]
pub(crate) struct Principals<'a> {
    pub(crate) key: &'static str,
    pub(crate) not: bool,
    pub(crate) items: Vec<PrincipalItem<'a>>,
}

/// One `operator: {key: values}` entry of a `Condition` block.
#[derive(Debug, Clone)]
pub(crate) struct Clause<'a> {
    /// The operator as written.
    pub(crate) operator: &'a str,
    /// The parsed operator, `None` when IAM would reject it.
    pub(crate) op: Option<ConditionOperator>,
    /// The condition key as written.
    pub(crate) key: &'a str,
    /// The values as text (IAM reads `true` and `"true"` alike).
    pub(crate) values: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone)]
pub(crate) struct Stmt<'a> {
    /// Index in the `Statement` list; `None` when `Statement` is a single object.
    pub(crate) index: Option<usize>,
    pub(crate) sid: Option<&'a str>,
    pub(crate) effect: Option<Effect>,
    pub(crate) action: Option<List<'a>>,
    pub(crate) resource: Option<List<'a>>,
    pub(crate) principal: Option<Principals<'a>>,
    pub(crate) clauses: Vec<Clause<'a>>,
}

/// The statements of `doc`, skipping what is not an object.
pub(crate) fn statements(doc: &Value) -> Vec<Stmt<'_>> {
    match doc.get("Statement") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_object().map(|m| statement(Some(i), m)))
            .collect(),
        Some(Value::Object(m)) => vec![statement(None, m)],
        _ => Vec::new(),
    }
}

fn statement(index: Option<usize>, m: &Map<String, Value>) -> Stmt<'_> {
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Some(Effect::Allow),
        Some("Deny") => Some(Effect::Deny),
        _ => None,
    };
    Stmt {
        index,
        sid: m.get("Sid").and_then(Value::as_str),
        effect,
        action: list(m, "Action", "NotAction"),
        resource: list(m, "Resource", "NotResource"),
        principal: principals(m),
        clauses: clauses(m.get("Condition")),
    }
}

fn strings(value: &Value) -> Vec<(Option<usize>, &str)> {
    match value {
        Value::String(s) => vec![(None, s.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_str().map(|s| (Some(i), s)))
            .collect(),
        _ => Vec::new(),
    }
}

fn list<'a>(m: &'a Map<String, Value>, pos: &'static str, neg: &'static str) -> Option<List<'a>> {
    // With both present (an error validate reports), the positive one is used.
    let (key, not) = if m.contains_key(pos) {
        (pos, false)
    } else if m.contains_key(neg) {
        (neg, true)
    } else {
        return None;
    };
    Some(List {
        key,
        not,
        items: strings(&m[key]),
    })
}

fn principals(m: &Map<String, Value>) -> Option<Principals<'_>> {
    let (key, not) = if m.contains_key("Principal") {
        ("Principal", false)
    } else if m.contains_key("NotPrincipal") {
        ("NotPrincipal", true)
    } else {
        return None;
    };
    let items = match &m[key] {
        Value::String(s) => vec![PrincipalItem {
            kind: "*",
            id: s.as_str(),
            index: None,
        }],
        Value::Object(kinds) => kinds
            .iter()
            .flat_map(|(kind, ids)| {
                strings(ids)
                    .into_iter()
                    .map(move |(index, id)| PrincipalItem {
                        kind: kind.as_str(),
                        id,
                        index,
                    })
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Principals { key, not, items })
}

fn clauses(condition: Option<&Value>) -> Vec<Clause<'_>> {
    let Some(Value::Object(ops)) = condition else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (operator, body) in ops {
        let Value::Object(keys) = body else { continue };
        let op = ConditionOperator::parse(operator);
        for (key, values) in keys {
            let values = match values {
                Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
                v => scalar_text(v).into_iter().collect(),
            };
            out.push(Clause {
                operator,
                op,
                key,
                values,
            });
        }
    }
    out
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Stmt<'_> {
    /// The statement's location: `/Statement/2` or `/Statement`.
    pub(crate) fn loc(&self) -> Loc {
        let loc = Loc::root().key("Statement");
        match self.index {
            Some(i) => loc.index(i),
            None => loc,
        }
    }

    /// The location of an element, or of one of its list items.
    pub(crate) fn item_loc(&self, key: &str, index: Option<usize>) -> Loc {
        let loc = self.loc().key(key);
        match index {
            Some(i) => loc.index(i),
            None => loc,
        }
    }

    /// The location of a condition key.
    pub(crate) fn clause_loc(&self, clause: &Clause<'_>) -> Loc {
        self.loc()
            .key("Condition")
            .key(clause.operator)
            .key(clause.key)
    }

    /// The location of a principal.
    pub(crate) fn principal_loc(&self, p: &PrincipalItem<'_>) -> Loc {
        let Some(principals) = &self.principal else {
            return self.loc();
        };
        let loc = self.loc().key(principals.key);
        if p.kind == "*" {
            return loc;
        }
        let loc = loc.key(p.kind);
        match p.index {
            Some(i) => loc.index(i),
            None => loc,
        }
    }

    /// Whether `Resource` has `"*"`.
    pub(crate) fn has_star_resource(&self) -> bool {
        self.resource
            .as_ref()
            .is_some_and(|r| !r.not && r.items.iter().any(|(_, s)| *s == "*"))
    }

    /// Normalized conditions, for comparing statements.
    pub(crate) fn conditions(&self) -> Conditions {
        Conditions::of(&self.clauses)
    }
}

/// A statement's conditions in a form that compares by meaning: each clause with its
/// operator as written, key lowercased (IAM ignores key case) and values as a set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Conditions {
    pub(crate) clauses: Vec<NClause>,
}

/// One normalized clause. Compares by operator, lowercased key and values only.
#[derive(Debug, Clone)]
pub(crate) struct NClause {
    pub(crate) operator: String,
    pub(crate) key: String,
    /// The key as first written, for display.
    pub(crate) display_key: String,
    pub(crate) values: BTreeSet<String>,
}

impl NClause {
    fn sort_key(&self) -> (&str, &str, &BTreeSet<String>) {
        (&self.operator, &self.key, &self.values)
    }
}

impl PartialEq for NClause {
    fn eq(&self, other: &Self) -> bool {
        self.sort_key() == other.sort_key()
    }
}

impl Eq for NClause {}

impl std::hash::Hash for NClause {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.sort_key().hash(state);
    }
}

impl PartialOrd for NClause {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NClause {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl Conditions {
    pub(crate) fn of(clauses: &[Clause<'_>]) -> Self {
        let mut out: Vec<NClause> = clauses
            .iter()
            .map(|c| NClause {
                operator: c.operator.to_owned(),
                key: c.key.to_ascii_lowercase(),
                display_key: c.key.to_owned(),
                values: c.values.iter().cloned().collect(),
            })
            .collect();
        out.sort();
        out.dedup();
        Self { clauses: out }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Whether every request that satisfies `self` also satisfies `weaker`: each clause
    /// of `weaker` is implied by a clause of `self`.
    pub(crate) fn implies(&self, weaker: &Conditions) -> bool {
        weaker
            .clauses
            .iter()
            .all(|w| self.clauses.iter().any(|s| clause_implies(s, w)))
    }
}

/// Whether clause `s` implies clause `w` (same key; `w` the same test or a looser one).
fn clause_implies(s: &NClause, w: &NClause) -> bool {
    if s.key != w.key {
        return false;
    }
    if s.operator == w.operator && s.values == w.values {
        return true;
    }
    let (Some(so), Some(wo)) = (
        ConditionOperator::parse(&s.operator),
        ConditionOperator::parse(&w.operator),
    ) else {
        return false;
    };
    // A test that requires the key implies the same test made only if the key exists.
    if so.base != wo.base || so.qualifier != wo.qualifier || (so.if_exists && !wo.if_exists) {
        return false;
    }
    match polarity(so.base, so.qualifier) {
        // More allowed values is looser.
        Polarity::Positive => s.values.is_subset(&w.values),
        // More excluded values is stricter.
        Polarity::Negative => w.values.is_subset(&s.values),
        Polarity::Exact => s.values == w.values,
    }
}

enum Polarity {
    Positive,
    Negative,
    Exact,
}

fn polarity(base: &str, _qualifier: Option<SetQualifier>) -> Polarity {
    match base {
        "StringEquals"
        | "StringEqualsIgnoreCase"
        | "StringLike"
        | "ArnEquals"
        | "ArnLike"
        | "NumericEquals"
        | "DateEquals"
        | "IpAddress"
        | "BinaryEquals" => Polarity::Positive,
        "StringNotEquals"
        | "StringNotEqualsIgnoreCase"
        | "StringNotLike"
        | "ArnNotEquals"
        | "ArnNotLike"
        | "NumericNotEquals"
        | "DateNotEquals"
        | "NotIpAddress" => Polarity::Negative,
        _ => Polarity::Exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_statements_leniently() {
        let doc = json!({"Statement": [
            {"Sid": "A", "Effect": "Allow", "Action": ["s3:GetObject", 3, "s3:PutObject"], "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": true}, "StringEquals": {"s3:prefix": ["a", "b"]}}},
            "junk",
            {"Effect": "Deny", "NotAction": "iam:*", "NotPrincipal": {"AWS": ["1", "2"]}}
        ]});
        let s = statements(&doc);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].effect, Some(Effect::Allow));
        let a = s[0].action.as_ref().unwrap();
        assert_eq!(
            a.items,
            vec![(Some(0), "s3:GetObject"), (Some(2), "s3:PutObject")]
        );
        assert_eq!(s[0].clauses[0].values, vec!["true"]);
        assert_eq!(s[0].clauses[1].values, vec!["a", "b"]);
        assert!(s[0].has_star_resource());
        assert_eq!(s[1].index, Some(2));
        assert!(s[1].action.as_ref().unwrap().not);
        let p = s[1].principal.as_ref().unwrap();
        assert!(p.not);
        assert_eq!(
            s[1].principal_loc(&p.items[1]).pointer,
            "/Statement/2/NotPrincipal/AWS/1"
        );
        assert_eq!(
            s[0].clause_loc(&s[0].clauses[1]).pointer,
            "/Statement/0/Condition/StringEquals/s3:prefix"
        );
    }

    #[test]
    fn single_statement_object() {
        let doc =
            json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}});
        let s = statements(&doc);
        assert_eq!(s[0].index, None);
        assert_eq!(s[0].item_loc("Action", None).pointer, "/Statement/Action");
        assert!(s[0].principal.as_ref().unwrap().items[0].is_everyone());
    }

    fn conds(v: Value) -> Conditions {
        let doc = json!({"Statement": [{"Condition": v}]});
        statements(&doc)[0].conditions()
    }

    #[test]
    fn condition_implication() {
        let strict =
            conds(json!({"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}));
        let loose = conds(
            json!({"StringEquals": {"iam:passedtoservice": ["sagemaker.amazonaws.com", "translate.amazonaws.com"]}}),
        );
        assert!(strict.implies(&loose));
        assert!(!loose.implies(&strict));
        assert!(strict.implies(&Conditions::default()));
        assert!(!Conditions::default().implies(&strict));
        let not_strict = conds(json!({"StringNotEquals": {"aws:username": ["a", "b"]}}));
        let not_loose = conds(json!({"StringNotEquals": {"aws:username": "a"}}));
        assert!(not_strict.implies(&not_loose));
        assert!(!not_loose.implies(&not_strict));
        let if_exists = conds(
            json!({"StringEqualsIfExists": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        );
        assert!(strict.implies(&if_exists));
        assert!(!if_exists.implies(&strict));
        let lt = conds(json!({"NumericLessThan": {"s3:max-keys": 10}}));
        let lt2 = conds(json!({"NumericLessThan": {"s3:max-keys": "10"}}));
        assert_eq!(lt, lt2);
    }
}
