//! Semantic normal form of policy documents, for drift detection and plan output.
//!
//! Two documents that IAM evaluates identically get equal normal forms, so the reconciler
//! does not rewrite a policy just because IAM or S3 returns it formatted differently
//! (S3, for one, turns one-element lists into strings and account IDs into root ARNs).
//!
//! The normal form is itself a JSON document:
//! - `Statement` is always a list, sorted (statements are an unordered multiset; exact
//!   duplicates are kept, so a duplicated statement is still a difference).
//! - `Action`/`NotAction`/`Resource`/`NotResource`, each principal type's values, and
//!   each condition key's values are sorted lists without duplicates (a string is a
//!   one-element list). Actions are lowercased: IAM matches them case-insensitively.
//! - `Principal: "*"` becomes `{"AWS": ["*"]}`; AWS account principals become the bare
//!   12-digit ID (`arn:<partition>:iam::<id>:root` and `<id>` mean the same).
//! - Condition operator names are kept as written, condition key names lowercased,
//!   condition values turned into strings (`true` == `"true"`, `3` == `"3"`), and an
//!   empty `Condition` (or operator block) dropped, since it constrains nothing.
//! - `Version`, `Id` and `Sid` are kept: a missing `Version` changes how policy
//!   variables are read, and `Id`/`Sid` changes are intended edits worth applying.
//!
//! Elements the model does not understand are kept (with object keys sorted) so that
//! invalid documents still compare deterministically. Cost is O(n log n) in the size of
//! the document: sets are sorted then deduplicated, never compared pairwise.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::validate::is_account_id;

/// Statement keys in the order the normal form writes them.
const STATEMENT_ORDER: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
const TOP_LEVEL_ORDER: &[&str] = &["Version", "Id", "Statement"];

/// Semantic normal form: two documents that IAM evaluates identically have equal
/// normal forms. See the module documentation for the exact rules.
pub fn normalize(doc: &Value) -> Value {
    let Value::Object(obj) = doc else {
        return canonical(doc);
    };
    let mut out = Map::with_capacity(obj.len());
    for key in TOP_LEVEL_ORDER {
        let Some(value) = obj.get(*key) else { continue };
        let normal = if *key == "Statement" {
            normalize_statements(value)
        } else {
            canonical(value)
        };
        out.insert((*key).to_owned(), normal);
    }
    insert_unknown(&mut out, obj, TOP_LEVEL_ORDER);
    Value::Object(out)
}

/// Whether `a` and `b` have the same normal form, i.e. IAM evaluates them identically.
pub fn semantically_equal(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// The statements that differ between two documents, for humans reading a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatementDiff {
    /// Statements of the desired document with no equivalent in the actual one,
    /// as written in the desired document.
    pub added: Vec<Value>,
    /// Statements of the actual document with no equivalent in the desired one,
    /// as written in the actual document.
    pub removed: Vec<Value>,
}

impl StatementDiff {
    /// Whether both documents have the same statements.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// The statements in `desired` not in `actual` and vice versa, matched by normal form.
///
/// Statements are a multiset: a statement present twice in `desired` and once in
/// `actual` appears once in `added`. Results are the original statements (not their
/// normal forms) in document order, since that is what the author recognises.
/// Only statements are compared: use [`semantically_equal`] for `Version`/`Id` changes.
pub fn statement_diff(desired: &Value, actual: &Value) -> StatementDiff {
    let desired = statements_of(desired);
    let actual = statements_of(actual);

    // Normal-form text -> indexes of not yet matched actual statements, last first,
    // so popping matches duplicates in document order.
    let mut unmatched: HashMap<String, Vec<usize>> = HashMap::with_capacity(actual.len());
    for (i, stmt) in actual.iter().enumerate().rev() {
        unmatched.entry(statement_key(stmt)).or_default().push(i);
    }
    let mut matched = vec![false; actual.len()];
    let mut diff = StatementDiff::default();
    for stmt in desired {
        match unmatched.get_mut(&statement_key(stmt)).and_then(Vec::pop) {
            Some(i) => matched[i] = true,
            None => diff.added.push(stmt.clone()),
        }
    }
    diff.removed = actual
        .iter()
        .zip(matched)
        .filter(|(_, matched)| !matched)
        .map(|(stmt, _)| (*stmt).clone())
        .collect();
    diff
}

/// The statements of a document: a single statement object counts as a list of one.
fn statements_of(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(stmt @ Value::Object(_)) => vec![stmt],
        _ => Vec::new(),
    }
}

fn statement_key(stmt: &Value) -> String {
    sort_key(&normalize_statement(stmt))
}

fn normalize_statements(value: &Value) -> Value {
    match value {
        Value::Object(_) => Value::Array(vec![normalize_statement(value)]),
        Value::Array(items) => {
            // A multiset: sorted, but duplicates kept.
            let mut keyed: Vec<(String, Value)> = items
                .iter()
                .map(|stmt| {
                    let normal = normalize_statement(stmt);
                    (sort_key(&normal), normal)
                })
                .collect();
            keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            Value::Array(keyed.into_iter().map(|(_, normal)| normal).collect())
        }
        other => canonical(other),
    }
}

fn normalize_statement(stmt: &Value) -> Value {
    let Value::Object(obj) = stmt else {
        return canonical(stmt);
    };
    let mut out = Map::with_capacity(obj.len());
    for key in STATEMENT_ORDER {
        let Some(value) = obj.get(*key) else { continue };
        let normal = match *key {
            "Action" | "NotAction" => string_set(value, |s| s.to_ascii_lowercase()),
            "Resource" | "NotResource" => string_set(value, str::to_owned),
            "Principal" | "NotPrincipal" => normalize_principal(value),
            "Condition" => match normalize_condition(value) {
                Value::Object(ops) if ops.is_empty() => continue,
                other => other,
            },
            _ => canonical(value),
        };
        out.insert((*key).to_owned(), normal);
    }
    insert_unknown(&mut out, obj, STATEMENT_ORDER);
    Value::Object(out)
}

fn normalize_principal(value: &Value) -> Value {
    match value {
        // IAM documents "*" and {"AWS": "*"} as the same principal (everyone).
        Value::String(s) if s == "*" => {
            let mut out = Map::new();
            out.insert("AWS".to_owned(), Value::Array(vec![Value::from("*")]));
            Value::Object(out)
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let out = entries
                .into_iter()
                .map(|(kind, ids)| {
                    let normal = if kind == "AWS" {
                        string_set(ids, aws_principal)
                    } else {
                        string_set(ids, str::to_owned)
                    };
                    (kind.clone(), normal)
                })
                .collect();
            Value::Object(out)
        }
        other => canonical(other),
    }
}

/// `arn:<partition>:iam::<account>:root` -> `<account>`; anything else unchanged.
pub(crate) fn aws_principal(id: &str) -> String {
    let account = id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(partition, _)| !partition.is_empty())
        .and_then(|(_, rest)| rest.strip_prefix("iam::"))
        .and_then(|rest| rest.strip_suffix(":root"))
        .filter(|account| is_account_id(account));
    account.unwrap_or(id).to_owned()
}

fn normalize_condition(value: &Value) -> Value {
    let Value::Object(operators) = value else {
        return canonical(value);
    };
    let mut out: Vec<(String, Value)> = Vec::with_capacity(operators.len());
    for (operator, body) in operators {
        let Value::Object(keys) = body else {
            out.push((operator.clone(), canonical(body)));
            continue;
        };
        let mut entries: Vec<(String, Value)> = keys
            .iter()
            .map(|(key, values)| (key.to_ascii_lowercase(), condition_values(values)))
            .collect();
        if entries.is_empty() {
            // No keys: the operator block is vacuously true.
            continue;
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        out.push((operator.clone(), Value::Object(merge_same_keys(entries))));
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Value::Object(out.into_iter().collect())
}

/// Builds the key -> values map from entries sorted by key. Keys that differ only in
/// case (e.g. `aws:SourceIp` and `aws:sourceip`) are separate tests that must all
/// hold, so they cannot be merged into one value set: such a key maps to the sorted
/// list of its distinct value sets instead (one set when they were all equal).
fn merge_same_keys(entries: Vec<(String, Value)>) -> Map<String, Value> {
    let mut out = Map::with_capacity(entries.len());
    let mut iter = entries.into_iter().peekable();
    while let Some((key, first)) = iter.next() {
        if iter.peek().is_none_or(|(next, _)| *next != key) {
            out.insert(key, first);
            continue;
        }
        let mut group = vec![first];
        while let Some((_, values)) = iter.next_if(|(next, _)| *next == key) {
            group.push(values);
        }
        let merged = match set_of(group) {
            Value::Array(mut sets) if sets.len() == 1 => sets.pop().unwrap_or(Value::Null),
            other => other,
        };
        out.insert(key, merged);
    }
    out
}

/// Condition values: an unordered set, compared as strings.
fn condition_values(value: &Value) -> Value {
    match value {
        Value::Array(items) => set_of(items.iter().map(condition_scalar).collect()),
        scalar => set_of(vec![condition_scalar(scalar)]),
    }
}

fn condition_scalar(value: &Value) -> Value {
    match value {
        Value::String(_) => value.clone(),
        // IAM reads every condition value as text: `true` and `"true"` are one value.
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        other => canonical(other),
    }
}

/// A "string or list of strings" element as a sorted set, each string mapped by `f`.
/// Other shapes (invalid) are kept as they are.
fn string_set(value: &Value, f: impl Fn(&str) -> String) -> Value {
    let map_item = |item: &Value| match item {
        Value::String(s) => Value::String(f(s)),
        other => canonical(other),
    };
    match value {
        Value::String(s) => Value::Array(vec![Value::String(f(s))]),
        Value::Array(items) => set_of(items.iter().map(map_item).collect()),
        other => canonical(other),
    }
}

/// Sorts and deduplicates `items` in O(n log n).
fn set_of(mut items: Vec<Value>) -> Value {
    if items.iter().all(Value::is_string) {
        // The common case: compare the strings directly, no serialization.
        items.sort_unstable_by(|a, b| a.as_str().cmp(&b.as_str()));
        items.dedup();
    } else {
        let mut keyed: Vec<(String, Value)> =
            items.into_iter().map(|v| (sort_key(&v), v)).collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        items = keyed.into_iter().map(|(_, v)| v).collect();
    }
    Value::Array(items)
}

/// Total order for values already in canonical form: their compact JSON text.
fn sort_key(value: &Value) -> String {
    // Serializing a Value cannot fail: its map keys are always strings.
    serde_json::to_string(value).unwrap_or_default()
}

/// Copies the keys of `obj` not in `known`, sorted, with canonical values.
fn insert_unknown(out: &mut Map<String, Value>, obj: &Map<String, Value>, known: &[&str]) {
    let mut unknown: Vec<(&String, &Value)> = obj
        .iter()
        .filter(|(key, _)| !known.contains(&key.as_str()))
        .collect();
    unknown.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (key, value) in unknown {
        out.insert(key.clone(), canonical(value));
    }
}

/// `value` with object keys sorted at every level, so that the JSON text (used as the
/// sort key) does not depend on the order keys were written in.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_iam_document;
    use serde_json::json;

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn stmt(extra: Value) -> Value {
        let mut base = json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    fn same(a: Value, b: Value) {
        assert!(
            semantically_equal(&a, &b),
            "expected equal:\n{a}\n{b}\nnormal forms:\n{}\n{}",
            normalize(&a),
            normalize(&b)
        );
    }

    fn different(a: Value, b: Value) {
        assert!(
            !semantically_equal(&a, &b),
            "expected different:\n{a}\n{b}\nnormal form: {}",
            normalize(&a)
        );
    }

    #[test]
    fn string_equals_one_element_list() {
        same(
            doc(json!([stmt(
                json!({"Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
            )])),
            doc(json!([stmt(
                json!({"Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]})
            )])),
        );
        same(
            doc(json!([stmt(
                json!({"Principal": {"Service": "ec2.amazonaws.com"}})
            )])),
            doc(json!([stmt(
                json!({"Principal": {"Service": ["ec2.amazonaws.com"]}})
            )])),
        );
        same(
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:username": "a"}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:username": ["a"]}}})
            )])),
        );
    }

    #[test]
    fn single_statement_object_equals_one_element_list() {
        let s = stmt(json!({}));
        same(doc(s.clone()), doc(json!([s])));
    }

    #[test]
    fn element_values_are_unordered_sets() {
        same(
            doc(json!([stmt(json!({
                "Action": ["s3:GetObject", "s3:PutObject", "s3:GetObject"],
                "NotResource": ["arn:aws:s3:::b", "arn:aws:s3:::a"],
                "Principal": {"AWS": ["111111111111", "222222222222"], "Service": ["b.amazonaws.com", "a.amazonaws.com"]},
                "Condition": {"StringLike": {"s3:prefix": ["x/*", "y/*", "x/*"]}}
            }))])),
            doc(json!([stmt(json!({
                "Action": ["s3:PutObject", "s3:GetObject"],
                "NotResource": ["arn:aws:s3:::a", "arn:aws:s3:::b", "arn:aws:s3:::a"],
                "Principal": {"Service": ["a.amazonaws.com", "b.amazonaws.com"], "AWS": ["222222222222", "111111111111"]},
                "Condition": {"StringLike": {"s3:prefix": ["y/*", "x/*"]}}
            }))])),
        );
        different(
            doc(json!([stmt(
                json!({"Action": ["s3:GetObject", "s3:PutObject"]})
            )])),
            doc(json!([stmt(json!({"Action": ["s3:GetObject"]}))])),
        );
    }

    #[test]
    fn action_names_are_case_insensitive_resources_are_not() {
        same(
            doc(json!([stmt(
                json!({"Action": "S3:getobject", "NotAction": ["IAM:*"]})
            )])),
            doc(json!([stmt(
                json!({"Action": "s3:GetObject", "NotAction": "iam:*"})
            )])),
        );
        different(
            doc(json!([stmt(json!({"Resource": "arn:aws:s3:::Bucket/*"}))])),
            doc(json!([stmt(json!({"Resource": "arn:aws:s3:::bucket/*"}))])),
        );
        assert_eq!(
            normalize(&doc(json!([stmt(json!({"Action": "S3:GetObject"}))])))["Statement"][0]
                ["Action"],
            json!(["s3:getobject"])
        );
    }

    #[test]
    fn condition_operator_names_kept_key_names_case_insensitive() {
        same(
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"AWS:PrincipalTag/Team": "ml"}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:principaltag/team": "ml"}}})
            )])),
        );
        // Operators differ in meaning, and their names are not case-folded.
        different(
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:username": "a"}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"StringEqualsIgnoreCase": {"aws:username": "a"}}})
            )])),
        );
        different(
            doc(json!([stmt(
                json!({"Condition": {"Bool": {"aws:SecureTransport": "true"}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"bool": {"aws:SecureTransport": "true"}}})
            )])),
        );
        // Condition values stay case-sensitive.
        different(
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:username": "Alice"}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"StringEquals": {"aws:username": "alice"}}})
            )])),
        );
    }

    #[test]
    fn condition_keys_differing_only_in_case_are_not_merged() {
        // Two tests on one key must both hold; merging their values would widen access.
        let both = doc(json!([stmt(json!({"Condition": {"StringLike": {
            "aws:userid": "A*", "AWS:UserId": "*:alice"
        }}}))]));
        let union = doc(json!([stmt(json!({"Condition": {"StringLike": {
            "aws:userid": ["A*", "*:alice"]
        }}}))]));
        different(both.clone(), union);
        let swapped = doc(json!([stmt(json!({"Condition": {"StringLike": {
            "AWS:UserId": "A*", "aws:userid": "*:alice"
        }}}))]));
        same(both, swapped);
        // The same test written twice is just that test.
        same(
            doc(json!([stmt(
                json!({"Condition": {"StringLike": {"aws:userid": "A*", "AWS:UserId": ["A*"]}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"StringLike": {"aws:userid": "A*"}}})
            )])),
        );
    }

    #[test]
    fn condition_scalars_compare_as_strings() {
        same(
            doc(json!([stmt(json!({"Condition": {
                "Bool": {"aws:SecureTransport": true},
                "NumericLessThan": {"s3:max-keys": [3, 10]}
            }}))])),
            doc(json!([stmt(json!({"Condition": {
                "NumericLessThan": {"s3:max-keys": ["10", "3"]},
                "Bool": {"aws:SecureTransport": "true"}
            }}))])),
        );
        different(
            doc(json!([stmt(
                json!({"Condition": {"Bool": {"aws:SecureTransport": true}}})
            )])),
            doc(json!([stmt(
                json!({"Condition": {"Bool": {"aws:SecureTransport": "false"}}})
            )])),
        );
    }

    #[test]
    fn empty_condition_equals_no_condition() {
        same(
            doc(json!([stmt(json!({"Condition": {}}))])),
            doc(json!([stmt(json!({}))])),
        );
        same(
            doc(json!([stmt(json!({"Condition": {"StringEquals": {}}}))])),
            doc(json!([stmt(json!({}))])),
        );
    }

    #[test]
    fn account_principal_equals_root_arn_in_any_partition() {
        let principal = |aws: Value| doc(json!([stmt(json!({"Principal": {"AWS": aws}}))]));
        same(
            principal(json!("123456789012")),
            principal(json!("arn:aws:iam::123456789012:root")),
        );
        same(
            principal(json!(["arn:aws-cn:iam::123456789012:root", "123456789012"])),
            principal(json!("arn:aws-us-gov:iam::123456789012:root")),
        );
        assert_eq!(
            normalize(&principal(json!("arn:aws:iam::123456789012:root")))["Statement"][0]
                ["Principal"],
            json!({"AWS": ["123456789012"]})
        );
        // A user or role of the account is not the account.
        different(
            principal(json!("123456789012")),
            principal(json!("arn:aws:iam::123456789012:role/root")),
        );
        different(
            principal(json!("123456789012")),
            principal(json!("arn:aws:iam::123456789013:root")),
        );
        // Only AWS principals are account principals.
        different(
            doc(json!([stmt(
                json!({"Principal": {"Federated": "arn:aws:iam::123456789012:root"}})
            )])),
            doc(json!([stmt(
                json!({"Principal": {"Federated": "123456789012"}})
            )])),
        );
    }

    #[test]
    fn principal_star_equals_aws_star() {
        same(
            doc(json!([stmt(json!({"Principal": "*"}))])),
            doc(json!([stmt(json!({"Principal": {"AWS": "*"}}))])),
        );
        same(
            doc(json!([stmt(json!({"NotPrincipal": "*"}))])),
            doc(json!([stmt(json!({"NotPrincipal": {"AWS": ["*"]}}))])),
        );
        different(
            doc(json!([stmt(json!({"Principal": "*"}))])),
            doc(json!([stmt(json!({"NotPrincipal": "*"}))])),
        );
    }

    #[test]
    fn statements_are_an_unordered_multiset_identified_with_sid() {
        let a = stmt(json!({"Sid": "A", "Action": "s3:GetObject"}));
        let b = stmt(json!({"Sid": "B", "Action": "s3:PutObject"}));
        same(doc(json!([a, b])), doc(json!([b, a])));
        // Duplicates count.
        different(doc(json!([a, a, b])), doc(json!([a, b])));
        // Sid is part of a statement's identity.
        let unnamed = stmt(json!({"Action": "s3:GetObject"}));
        different(doc(json!([a])), doc(json!([unnamed])));
        different(
            doc(json!([a])),
            doc(json!([stmt(
                json!({"Sid": "A2", "Action": "s3:GetObject"})
            )])),
        );
    }

    #[test]
    fn version_and_id_are_kept() {
        let s = json!([stmt(json!({}))]);
        different(
            json!({"Statement": s}),
            json!({"Version": "2012-10-17", "Statement": s}),
        );
        different(
            json!({"Version": "2008-10-17", "Statement": s}),
            json!({"Version": "2012-10-17", "Statement": s}),
        );
        different(
            json!({"Version": "2012-10-17", "Id": "a", "Statement": s}),
            json!({"Version": "2012-10-17", "Statement": s}),
        );
    }

    #[test]
    fn key_order_and_effect_matter_as_expected() {
        same(
            json!({"Statement": [{"Resource": "*", "Action": "s3:*", "Effect": "Allow"}], "Version": "2012-10-17"}),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        );
        different(
            doc(json!([stmt(json!({"Effect": "Allow"}))])),
            doc(json!([stmt(json!({"Effect": "Deny"}))])),
        );
        different(
            doc(json!([stmt(json!({"Action": "s3:*"}))])),
            doc(json!([stmt(json!({"NotAction": "s3:*"}))])),
        );
    }

    #[test]
    fn document_from_iam_equals_document_from_git() {
        // As GetRolePolicy returns it: URL-encoded, the author's own formatting.
        let from_iam = decode_iam_document(
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22Read%22%2C\
             %22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A\
             %5B%22arn%3Aaws%3As3%3A%3A%3Ab%2F%2A%22%5D%2C%22Condition%22%3A%7B%22Bool%22%3A%7B\
             %22aws%3ASecureTransport%22%3A%22true%22%7D%7D%7D%5D%7D",
        )
        .unwrap();
        let from_git = json!({
            "Version": "2012-10-17",
            "Statement": {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["s3:getobject"],
                "Resource": "arn:aws:s3:::b/*",
                "Condition": {"Bool": {"aws:securetransport": true}}
            }
        });
        same(from_iam, from_git);
    }

    #[test]
    fn bucket_policy_as_s3_rewrites_it() {
        let desired = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "AllowAccount",
                "Effect": "Allow",
                "Principal": {"AWS": ["123456789012"]},
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::b/*"]
            }]
        });
        let from_s3 = decode_iam_document(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
        )
        .unwrap();
        same(desired, from_s3);
    }

    #[test]
    fn normalize_is_idempotent_and_total() {
        let inputs = [
            doc(json!([
                stmt(
                    json!({"Principal": "*", "Condition": {"Bool": {"aws:SecureTransport": false}}})
                ),
                stmt(json!({"Sid": "X", "Action": ["B:y", "a:X"], "Extra": {"b": 1, "a": [2, 1]}}))
            ])),
            json!({"Statement": "nonsense", "Zed": 1}),
            json!({"Statement": [1, {"Action": 3, "Resource": {"x": 1}}, [], null]}),
            json!({"Statement": [{"Condition": {"StringEquals": ["x"], "Null": {"k": [{"a": 1}, "x", 1]}}}]}),
            json!([1, 2]),
            json!(null),
        ];
        for input in inputs {
            let once = normalize(&input);
            assert_eq!(normalize(&once), once, "{input}");
            assert!(semantically_equal(&input, &once));
        }
    }

    #[test]
    fn normal_form_shape() {
        let normal = normalize(&json!({
            "Statement": {"Resource": "arn:aws:s3:::b", "Effect": "Allow", "Principal": "*",
                          "Action": "S3:ListBucket", "Sid": "L"},
            "Version": "2012-10-17"
        }));
        assert_eq!(
            serde_json::to_string(&normal).unwrap(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"L","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:listbucket"],"Resource":["arn:aws:s3:::b"]}]}"#
        );
    }

    #[test]
    fn statement_diff_reports_originals_by_normal_form() {
        let keep = stmt(json!({"Sid": "Keep", "Action": ["s3:GetObject"]}));
        let keep_as_iam = stmt(json!({"Sid": "Keep", "Action": "S3:GetObject"}));
        let new = stmt(json!({"Sid": "New", "Action": "s3:PutObject"}));
        let old = stmt(json!({"Sid": "Old", "Action": "s3:DeleteObject"}));

        let diff = statement_diff(
            &doc(json!([new.clone(), keep.clone()])),
            &doc(json!([keep_as_iam.clone(), old.clone()])),
        );
        assert_eq!(diff.added, vec![new]);
        assert_eq!(diff.removed, vec![old]);
        assert!(!diff.is_empty());

        let diff = statement_diff(&doc(keep.clone()), &doc(json!([keep_as_iam])));
        assert!(diff.is_empty());
    }

    #[test]
    fn statement_diff_counts_duplicates() {
        let a = stmt(json!({"Sid": "A"}));
        let diff = statement_diff(&doc(json!([a, a])), &doc(json!([a])));
        assert_eq!(diff.added, vec![a.clone()]);
        assert!(diff.removed.is_empty());

        let diff = statement_diff(&doc(json!([a])), &doc(json!([a, a, a])));
        assert!(diff.added.is_empty());
        assert_eq!(diff.removed, vec![a.clone(), a]);
    }

    #[test]
    fn statement_diff_with_missing_statements() {
        let a = stmt(json!({}));
        let diff = statement_diff(&doc(json!([a])), &json!({}));
        assert_eq!(diff.added, vec![a]);
        assert!(diff.removed.is_empty());
        assert!(statement_diff(&json!(null), &json!("x")).is_empty());
    }

    #[test]
    fn many_statements_normalize_in_one_pass() {
        // 5,000 statements of 50 actions each, reversed: equal after normalization.
        let statements: Vec<Value> = (0..5_000)
            .map(|i| {
                let actions: Vec<String> = (0..50).map(|j| format!("svc{j}:Action{i}")).collect();
                stmt(json!({"Sid": format!("S{i}"), "Action": actions}))
            })
            .collect();
        let reversed: Vec<Value> = statements.iter().rev().cloned().collect();
        let started = std::time::Instant::now();
        assert!(semantically_equal(
            &doc(json!(statements)),
            &doc(json!(reversed))
        ));
        // Generous bound (debug build, shared CI machine): quadratic work would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
}
