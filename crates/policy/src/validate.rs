//! Structural validation of policy documents, as IAM (and S3 for bucket policies) does it.
//!
//! The validator walks the whole document and records every problem instead of stopping
//! at the first, so one `plan` run shows everything a manifest author has to fix.
//! Errors are what IAM/S3 would reject; warnings are accepted but likely mistakes.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::condition::{condition_key_problem, ConditionOperator};
use crate::pointer::Loc;
use crate::{VERSION_2008, VERSION_2012};

/// Where a policy is used: decides which elements are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PolicyKind {
    /// Identity-based policy: managed or inline. No principal.
    Identity,
    /// Permissions boundary: written like an identity policy, but it only caps what the
    /// role's identity policies grant.
    Boundary,
    /// Role trust (assume-role) policy: principal required, no resource.
    Trust,
    /// Resource-based policy (S3 bucket policy): principal and resource required.
    Resource,
    /// KMS key policy: principal required; `"Resource": "*"` means the key itself.
    KeyPolicy,
}

impl PolicyKind {
    /// Whether statements name principals (trust, bucket and key policies).
    pub fn has_principals(self) -> bool {
        matches!(
            self,
            PolicyKind::Trust | PolicyKind::Resource | PolicyKind::KeyPolicy
        )
    }

    /// Whether statements name resources (all but trust policies).
    pub fn has_resources(self) -> bool {
        self != PolicyKind::Trust
    }
}

/// How bad an [`Issue`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// IAM (or S3) would reject the document.
    Error,
    /// Accepted, but probably not what the author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// RFC 6901 JSON pointer into the document, e.g. `/Statement/2/Action` (`""` = root).
    /// For a missing element it points at the object that should contain it.
    pub pointer: String,
    /// Whether IAM would reject the document.
    pub severity: Severity,
    /// Human-readable message naming the element, e.g. `Statement[2].Effect must be ...`.
    pub message: String,
}

impl Issue {
    /// Whether this issue makes the document unacceptable to IAM.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)
    }
}

/// Whether any of `issues` is an error (as opposed to a warning).
pub fn has_errors(issues: &[Issue]) -> bool {
    issues.iter().any(Issue::is_error)
}

/// Structural validation as IAM does it; collects every issue, never stops at the first.
///
/// Checks shapes only: it does not know which services, actions, condition keys or
/// principals exist. Statement indexes in pointers and messages are 0-based.
pub fn validate(doc: &Value, kind: PolicyKind) -> Vec<Issue> {
    validate_with_checks(doc, kind)
        .into_iter()
        .map(|(_, issue)| issue)
        .collect()
}

/// Check id of a structural error in lint output.
pub(crate) const INVALID_STRUCTURE: &str = "invalid-structure";
/// Check id of a structural warning in lint output.
pub(crate) const STRUCTURE_WARNING: &str = "structure-warning";
/// Check id of a condition key given an empty list of values.
pub(crate) const EMPTY_CONDITION_VALUES: &str = "empty-condition-values";
/// Check id of a missing `Version`.
pub(crate) const MISSING_VERSION: &str = "missing-version";
/// Check id of a `Sid` used twice.
pub(crate) const DUPLICATE_SID: &str = "duplicate-sid";

/// [`validate`], each issue with the lint check id it is reported under (see
/// [`crate::lint::CHECKS`]), so that callers can silence one check.
pub fn validate_with_checks(doc: &Value, kind: PolicyKind) -> Vec<(&'static str, Issue)> {
    let mut validator = Validator {
        kind,
        issues: Vec::new(),
        substitutes_variables: false,
    };
    validator.document(doc);
    validator.issues
}

const TOP_LEVEL_KEYS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_KEYS: &[&str] = &[
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
const PRINCIPAL_KEYS: &[&str] = &["AWS", "Service", "Federated", "CanonicalUser"];
/// Actions that make sense in a trust policy, lowercase; `sts:AssumeRole*` is matched
/// by prefix separately.
const TRUST_ACTIONS: &[&str] = &["sts:tagsession", "sts:setsourceidentity", "sts:setcontext"];

struct Validator {
    kind: PolicyKind,
    issues: Vec<(&'static str, Issue)>,
    /// Version 2012-10-17: `${...}` is a policy variable rather than literal text.
    substitutes_variables: bool,
}

impl Validator {
    fn push(&mut self, loc: &Loc, severity: Severity, message: String) {
        let check = match severity {
            Severity::Error => INVALID_STRUCTURE,
            Severity::Warning => STRUCTURE_WARNING,
        };
        self.push_check(check, loc, severity, message);
    }

    fn push_check(&mut self, check: &'static str, loc: &Loc, severity: Severity, message: String) {
        let issue = Issue {
            pointer: loc.pointer.clone(),
            severity,
            message,
        };
        self.issues.push((check, issue));
    }

    fn error(&mut self, loc: &Loc, message: String) {
        self.push(loc, Severity::Error, message);
    }

    fn warning(&mut self, loc: &Loc, message: String) {
        self.push(loc, Severity::Warning, message);
    }

    fn document(&mut self, doc: &Value) {
        let root = Loc::root();
        let Some(obj) = doc.as_object() else {
            self.error(
                &root,
                format!(
                    "the policy document must be a JSON object, got {}",
                    describe(doc)
                ),
            );
            return;
        };
        self.unknown_keys(&root, obj, TOP_LEVEL_KEYS);

        match obj.get("Version") {
            None => self.push_check(
                MISSING_VERSION,
                &root,
                Severity::Warning,
                format!(
                    "the policy document has no Version; IAM then applies \"{VERSION_2008}\", \
                     which does not substitute policy variables: add \"Version\": \"{VERSION_2012}\""
                ),
            ),
            Some(Value::String(v)) if v == VERSION_2012 => self.substitutes_variables = true,
            Some(Value::String(v)) if v == VERSION_2008 => {}
            Some(other) => self.error(
                &root.key("Version"),
                format!(
                    "Version must be \"{VERSION_2012}\" or \"{VERSION_2008}\", got {}",
                    describe(other)
                ),
            ),
        }

        if let Some(id) = obj.get("Id") {
            if !id.is_string() {
                self.error(
                    &root.key("Id"),
                    format!("Id must be a string, got {}", describe(id)),
                );
            }
        }

        let statements_loc = root.key("Statement");
        let mut statements: Vec<(Loc, &Map<String, Value>)> = Vec::new();
        match obj.get("Statement") {
            None => self.error(&root, "the policy document has no Statement".to_owned()),
            Some(Value::Object(stmt)) => statements.push((statements_loc, stmt)),
            Some(Value::Array(items)) => {
                if items.is_empty() {
                    self.error(
                        &statements_loc,
                        "Statement must not be an empty list".to_owned(),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    let loc = statements_loc.index(i);
                    match item.as_object() {
                        Some(stmt) => statements.push((loc, stmt)),
                        None => self.error(
                            &loc,
                            format!("{} must be an object, got {}", loc.name(), describe(item)),
                        ),
                    }
                }
            }
            Some(other) => self.error(
                &statements_loc,
                format!(
                    "Statement must be an object or a list of objects, got {}",
                    describe(other)
                ),
            ),
        }

        // Sid -> label of its first statement, for the uniqueness check.
        let mut sids: HashMap<&str, String> = HashMap::new();
        for (loc, stmt) in &statements {
            self.statement(loc, stmt);
            if let Some(Value::String(sid)) = stmt.get("Sid") {
                if sid.is_empty() {
                    continue;
                }
                if let Some(first) = sids.get(sid.as_str()) {
                    let message = format!(
                        "{}.Sid \"{sid}\" is not unique: {first} has the same Sid",
                        loc.name()
                    );
                    self.push_check(DUPLICATE_SID, &loc.key("Sid"), Severity::Error, message);
                } else {
                    sids.insert(sid, loc.name().to_owned());
                }
            }
        }
    }

    fn statement(&mut self, loc: &Loc, stmt: &Map<String, Value>) {
        self.unknown_keys(loc, stmt, STATEMENT_KEYS);
        if let Some(sid) = stmt.get("Sid") {
            self.sid(&loc.key("Sid"), sid);
        }
        self.effect(loc, stmt);

        if let Some(key) = self.exactly_one(loc, stmt, "Action", "NotAction") {
            self.actions(&loc.key(key), &stmt[key], key == "Action");
        }

        match self.kind {
            PolicyKind::Identity | PolicyKind::Boundary => {
                for key in ["Principal", "NotPrincipal"] {
                    if stmt.contains_key(key) {
                        self.error(
                            &loc.key(key),
                            format!(
                                "{}.{key} is not allowed in an identity-based policy: \
                                 the principal is whoever the policy is attached to",
                                loc.name()
                            ),
                        );
                    }
                }
            }
            PolicyKind::Trust | PolicyKind::Resource | PolicyKind::KeyPolicy => {
                if let Some(key) = self.exactly_one(loc, stmt, "Principal", "NotPrincipal") {
                    self.principal(&loc.key(key), &stmt[key]);
                }
            }
        }

        match self.kind {
            PolicyKind::Trust => {
                for key in ["Resource", "NotResource"] {
                    if stmt.contains_key(key) {
                        self.error(
                            &loc.key(key),
                            format!(
                                "{}.{key} is not allowed in a role trust policy: \
                                 the resource is the role itself",
                                loc.name()
                            ),
                        );
                    }
                }
            }
            PolicyKind::Identity
            | PolicyKind::Boundary
            | PolicyKind::Resource
            | PolicyKind::KeyPolicy => {
                if let Some(key) = self.exactly_one(loc, stmt, "Resource", "NotResource") {
                    self.resources(&loc.key(key), &stmt[key]);
                }
            }
        }

        if let Some(condition) = stmt.get("Condition") {
            self.condition(&loc.key("Condition"), condition);
        }
    }

    fn unknown_keys(&mut self, loc: &Loc, obj: &Map<String, Value>, allowed: &[&str]) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.unknown_key(loc, key, allowed);
            }
        }
    }

    fn unknown_key(&mut self, loc: &Loc, key: &str, allowed: &[&str]) {
        let hint = suggestion(key, allowed)
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        self.error(
            &loc.key(key),
            format!("{} has unknown element \"{key}\"{hint}", loc.name()),
        );
    }

    /// Requires exactly one of `a`/`b`; returns the one present, if any.
    fn exactly_one(
        &mut self,
        loc: &Loc,
        stmt: &Map<String, Value>,
        a: &'static str,
        b: &'static str,
    ) -> Option<&'static str> {
        match (stmt.contains_key(a), stmt.contains_key(b)) {
            (true, false) => Some(a),
            (false, true) => Some(b),
            (true, true) => {
                self.error(
                    &loc.key(b),
                    format!("{} must not have both {a} and {b}", loc.name()),
                );
                // Still check the positive one so its own problems are reported too.
                Some(a)
            }
            (false, false) => {
                self.error(loc, format!("{} must have {a} or {b}", loc.name()));
                None
            }
        }
    }

    fn sid(&mut self, loc: &Loc, sid: &Value) {
        let Value::String(s) = sid else {
            self.error(
                loc,
                format!("{} must be a string, got {}", loc.name(), describe(sid)),
            );
            return;
        };
        if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            let message = format!(
                "{} must contain only letters A-Z, a-z and digits 0-9, got {}",
                loc.name(),
                describe(sid)
            );
            // S3 bucket policies accept free-text Sids, and KMS key policies are made with
            // them ("Enable IAM User Permissions"); IAM policies reject them.
            match self.kind {
                PolicyKind::Resource => self.warning(loc, message),
                PolicyKind::KeyPolicy => {}
                PolicyKind::Identity | PolicyKind::Boundary | PolicyKind::Trust => {
                    self.error(loc, message)
                }
            }
        }
    }

    fn effect(&mut self, loc: &Loc, stmt: &Map<String, Value>) {
        match stmt.get("Effect") {
            None => self.error(loc, format!("{} must have Effect", loc.name())),
            Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
            Some(other) => {
                let loc = loc.key("Effect");
                self.error(
                    &loc,
                    format!(
                        "{} must be \"Allow\" or \"Deny\", got {}",
                        loc.name(),
                        describe(other)
                    ),
                );
            }
        }
    }

    /// Checks a "string or non-empty list of strings" element, running `check` on each
    /// string in document order (so issues come out in the order of the document).
    fn string_list(
        &mut self,
        loc: &Loc,
        value: &Value,
        mut check: impl FnMut(&mut Self, &Loc, &str),
    ) {
        match value {
            Value::String(s) => check(self, loc, s),
            Value::Array(items) => {
                if items.is_empty() {
                    self.error(loc, format!("{} must not be an empty list", loc.name()));
                }
                for (i, item) in items.iter().enumerate() {
                    let item_loc = loc.index(i);
                    match item {
                        Value::String(s) => check(self, &item_loc, s),
                        other => self.error(
                            &item_loc,
                            format!(
                                "{} must be a string, got {}",
                                item_loc.name(),
                                describe(other)
                            ),
                        ),
                    }
                }
            }
            other => self.error(
                loc,
                format!(
                    "{} must be a string or a list of strings, got {}",
                    loc.name(),
                    describe(other)
                ),
            ),
        }
    }

    fn actions(&mut self, loc: &Loc, value: &Value, positive: bool) {
        self.string_list(loc, value, |v, item_loc, action| {
            v.action(item_loc, action, positive)
        });
    }

    fn action(&mut self, loc: &Loc, action: &str, positive: bool) {
        match action_shape(action) {
            ActionShape::Valid => {}
            ActionShape::UppercaseService => self.warning(
                loc,
                format!(
                    "{} {}: service prefixes are lowercase",
                    loc.name(),
                    quote(action)
                ),
            ),
            ActionShape::Invalid => self.error(
                loc,
                format!(
                    "{} must be \"*\" or \"service:ActionName\" (wildcards * and ? allowed \
                     in the name), got {}",
                    loc.name(),
                    quote(action)
                ),
            ),
        }
        // NotAction in a trust policy is odd but not wrong; only Action is checked.
        if self.kind == PolicyKind::Trust && positive && !is_trust_action(action) {
            self.warning(
                loc,
                format!(
                    "{} {} is not a role-assumption action: a trust policy normally allows \
                     only sts:AssumeRole*, sts:TagSession, sts:SetSourceIdentity or \
                     sts:SetContext",
                    loc.name(),
                    quote(action)
                ),
            );
        }
    }

    fn resources(&mut self, loc: &Loc, value: &Value) {
        self.string_list(loc, value, Self::resource);
    }

    fn resource(&mut self, loc: &Loc, resource: &str) {
        if resource == "*" {
            return;
        }
        if !resource.starts_with("arn:") {
            self.error(
                loc,
                format!(
                    "{} must be \"*\" or an ARN starting with \"arn:\", got {}",
                    loc.name(),
                    quote(resource)
                ),
            );
            return;
        }
        // Mask variables first: "${aws:username}" contains a colon of its own.
        let segments = mask_variables(resource).split(':').count();
        if segments < 6 && !resource.contains('*') {
            self.warning(
                loc,
                format!(
                    "{} {} does not look like a complete ARN \
                     (arn:partition:service:region:account:resource)",
                    loc.name(),
                    quote(resource)
                ),
            );
        }
        self.variables(loc, resource);
    }

    fn principal(&mut self, loc: &Loc, value: &Value) {
        let map = match value {
            Value::String(s) if s == "*" => return,
            Value::Object(map) => map,
            other => {
                self.error(
                    loc,
                    format!(
                        "{} must be \"*\" or an object such as {{\"AWS\": ...}}, got {}",
                        loc.name(),
                        describe(other)
                    ),
                );
                return;
            }
        };
        if map.is_empty() {
            self.error(loc, format!("{} must not be an empty object", loc.name()));
        }
        for (key, ids) in map {
            if !PRINCIPAL_KEYS.contains(&key.as_str()) {
                self.unknown_key(loc, key, PRINCIPAL_KEYS);
                continue;
            }
            let is_aws = key == "AWS";
            self.string_list(&loc.key(key), ids, |v, item_loc, id| {
                if id.is_empty() {
                    v.error(item_loc, format!("{} must not be empty", item_loc.name()));
                } else if is_aws {
                    v.aws_principal(item_loc, id);
                }
            });
        }
    }

    fn aws_principal(&mut self, loc: &Loc, id: &str) {
        if id == "*" || is_account_id(id) || id.starts_with("arn:") {
            return;
        }
        if looks_like_unique_id(id) {
            // IAM rewrites a principal ARN to its unique ID when the principal is deleted.
            self.warning(
                loc,
                format!(
                    "{} {} looks like the unique ID of a deleted IAM principal",
                    loc.name(),
                    quote(id)
                ),
            );
        } else {
            self.error(
                loc,
                format!(
                    "{} must be \"*\", a 12-digit account ID or an ARN, got {}",
                    loc.name(),
                    quote(id)
                ),
            );
        }
    }

    fn condition(&mut self, loc: &Loc, value: &Value) {
        let Some(operators) = value.as_object() else {
            self.error(
                loc,
                format!(
                    "{} must be an object mapping condition operators to {{key: values}}, got {}",
                    loc.name(),
                    describe(value)
                ),
            );
            return;
        };
        for (operator, body) in operators {
            let op_loc = loc.key(operator);
            if ConditionOperator::parse(operator).is_none() {
                let hint = if operator.ends_with("IfExists") && operator.contains("Null") {
                    " (Null does not take IfExists)".to_owned()
                } else {
                    operator_suggestion(operator)
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_default()
                };
                self.error(
                    &op_loc,
                    format!(
                        "{} has unknown condition operator \"{operator}\"{hint}",
                        loc.name()
                    ),
                );
            }
            let Some(keys) = body.as_object() else {
                self.error(
                    &op_loc,
                    format!(
                        "{} must be an object mapping condition keys to values, got {}",
                        op_loc.name(),
                        describe(body)
                    ),
                );
                continue;
            };
            if keys.is_empty() {
                self.warning(&op_loc, format!("{} has no condition keys", op_loc.name()));
            }
            for (key, values) in keys {
                let key_loc = op_loc.key(key);
                if let Some(problem) = condition_key_problem(key) {
                    self.error(
                        &key_loc,
                        format!(
                            "{}: condition key \"{key}\" {problem} (expected prefix:Name, \
                             optionally with a /tag part)",
                            op_loc.name()
                        ),
                    );
                }
                self.condition_values(&key_loc, values);
            }
        }
    }

    fn condition_values(&mut self, loc: &Loc, values: &Value) {
        match values {
            Value::Array(items) => {
                if items.is_empty() {
                    self.push_check(
                        EMPTY_CONDITION_VALUES,
                        loc,
                        Severity::Warning,
                        format!(
                            "{} is an empty list, which no request value matches: under ForAnyValue: (and plain operators) the condition never holds, so the statement never applies; under ForAllValues: it always holds",
                            loc.name()
                        ),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    self.condition_scalar(&loc.index(i), item);
                }
            }
            scalar => self.condition_scalar(loc, scalar),
        }
    }

    fn condition_scalar(&mut self, loc: &Loc, value: &Value) {
        match value {
            Value::String(s) => self.variables(loc, s),
            Value::Bool(_) | Value::Number(_) => {}
            other => self.error(
                loc,
                format!(
                    "{} must be a string, number, boolean or a list of them, got {}",
                    loc.name(),
                    describe(other)
                ),
            ),
        }
    }

    /// Warns about `${...}` text that IAM will take literally under the old version.
    fn variables(&mut self, loc: &Loc, s: &str) {
        if !self.substitutes_variables && s.contains("${") {
            self.warning(
                loc,
                format!(
                    "{} {} uses a policy variable, which IAM substitutes only when Version \
                     is \"{VERSION_2012}\"; here it is literal text",
                    loc.name(),
                    quote(s)
                ),
            );
        }
    }
}

enum ActionShape {
    Valid,
    /// Valid except for uppercase letters in the service prefix.
    UppercaseService,
    Invalid,
}

fn action_shape(action: &str) -> ActionShape {
    if action == "*" {
        return ActionShape::Valid;
    }
    let Some((service, name)) = action.split_once(':') else {
        return ActionShape::Invalid;
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_'));
    let service_ok = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !(name_ok && service_ok) {
        ActionShape::Invalid
    } else if service.chars().any(|c| c.is_ascii_uppercase()) {
        ActionShape::UppercaseService
    } else {
        ActionShape::Valid
    }
}

fn is_trust_action(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    lower.starts_with("sts:assumerole") || TRUST_ACTIONS.contains(&lower.as_str())
}

pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// IAM unique IDs: a 4-letter type prefix (AIDA, AROA, ...) and 16+ uppercase alphanumerics.
fn looks_like_unique_id(s: &str) -> bool {
    s.len() >= 20
        && s.starts_with('A')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Replaces each `${...}` with a colon-free placeholder.
fn mask_variables(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push('v');
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// The allowed key the author probably meant: same letters in another case, or a
/// stray plural ("Actions").
fn suggestion<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let singular = key.strip_suffix(['s', 'S']).unwrap_or(key);
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(key) || a.eq_ignore_ascii_case(singular))
}

/// A valid operator spelled like `operator` apart from letter case.
fn operator_suggestion(operator: &str) -> Option<String> {
    let (prefix, rest) = match operator.split_once(':') {
        Some((p, r)) if p.eq_ignore_ascii_case("ForAnyValue") => ("ForAnyValue:", r),
        Some((p, r)) if p.eq_ignore_ascii_case("ForAllValues") => ("ForAllValues:", r),
        _ => ("", operator),
    };
    let lower = rest.to_ascii_lowercase();
    let (base, suffix) = match lower.strip_suffix("ifexists") {
        Some(base) => (base, "IfExists"),
        None => (lower.as_str(), ""),
    };
    crate::condition::BASE_OPERATORS
        .iter()
        .find(|b| b.eq_ignore_ascii_case(base))
        .map(|b| format!("{prefix}{b}{suffix}"))
        .filter(|s| ConditionOperator::parse(s).is_some())
}

/// A short rendering of a value for messages.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
        other => other.to_string(),
    }
}

/// A string as a JSON literal, shortened so one bad value cannot flood the output.
fn quote(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", Value::from(&s[..cut])),
        None => Value::from(s).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(statement: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    fn errors(doc: &Value, kind: PolicyKind) -> Vec<Issue> {
        validate(doc, kind)
            .into_iter()
            .filter(Issue::is_error)
            .collect()
    }

    fn warnings(doc: &Value, kind: PolicyKind) -> Vec<Issue> {
        validate(doc, kind)
            .into_iter()
            .filter(|i| i.severity == Severity::Warning)
            .collect()
    }

    fn pointers(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.pointer.as_str()).collect()
    }

    fn good_identity() -> Value {
        json!({
            "Version": "2012-10-17",
            "Id": "MlspaceApp",
            "Statement": [
                {
                    "Sid": "ReadData",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:List*"],
                    "Resource": ["arn:aws:s3:::mlspace-data", "arn:aws:s3:::mlspace-data/${aws:username}/*"],
                    "Condition": {
                        "StringEquals": {"aws:RequestedRegion": "us-east-1"},
                        "ForAnyValue:StringLike": {"aws:PrincipalTag/team": ["ml-*"]},
                        "BoolIfExists": {"aws:MultiFactorAuthPresent": true},
                        "Null": {"aws:TokenIssueTime": "false"},
                        "NumericLessThan": {"s3:max-keys": 100}
                    }
                },
                {"Effect": "Deny", "NotAction": "iam:*", "NotResource": "*"}
            ]
        })
    }

    #[test]
    fn valid_documents_have_no_issues() {
        assert_eq!(validate(&good_identity(), PolicyKind::Identity), vec![]);
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com", "AWS": ["123456789012", "arn:aws:iam::123456789012:role/x"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"]
            }
        });
        assert_eq!(validate(&trust, PolicyKind::Trust), vec![]);
        let bucket = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            }]
        });
        assert_eq!(validate(&bucket, PolicyKind::Resource), vec![]);
    }

    #[test]
    fn boundary_and_key_policy_kinds() {
        assert_eq!(validate(&good_identity(), PolicyKind::Boundary), vec![]);
        let with_principal = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}),
        );
        assert_eq!(
            pointers(&errors(&with_principal, PolicyKind::Boundary)),
            ["/Statement/0/Principal"]
        );
        let key = json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"
        }]});
        assert_eq!(validate(&key, PolicyKind::KeyPolicy), vec![]);
        let mut no_principal = key.clone();
        no_principal["Statement"][0]
            .as_object_mut()
            .unwrap()
            .shift_remove("Principal");
        assert_eq!(
            pointers(&errors(&no_principal, PolicyKind::KeyPolicy)),
            ["/Statement/0"]
        );
        assert!(PolicyKind::KeyPolicy.has_principals() && PolicyKind::KeyPolicy.has_resources());
        assert!(!PolicyKind::Boundary.has_principals());
        assert!(!PolicyKind::Trust.has_resources());
    }

    #[test]
    fn root_must_be_object() {
        for doc in [json!([]), json!("x"), json!(null), json!(1)] {
            let issues = validate(&doc, PolicyKind::Identity);
            assert_eq!(issues.len(), 1);
            assert_eq!(issues[0].pointer, "");
            assert!(issues[0].is_error());
            assert!(issues[0].message.contains("must be a JSON object"));
        }
    }

    #[test]
    fn version_missing_is_warning_other_is_error() {
        let mut doc = good_identity();
        doc.as_object_mut().unwrap().shift_remove("Version");
        let issues = validate(&doc, PolicyKind::Identity);
        assert!(!has_errors(&issues));
        assert_eq!(issues[0].pointer, "");
        assert!(issues[0].message.contains("no Version"));

        doc["Version"] = json!("2008-10-17");
        assert!(!has_errors(&validate(&doc, PolicyKind::Identity)));

        for bad in [json!("2012-10-18"), json!(2012), json!(null)] {
            doc["Version"] = bad;
            let errs = errors(&doc, PolicyKind::Identity);
            assert_eq!(pointers(&errs), ["/Version"]);
            assert!(errs[0].message.starts_with("Version must be"));
        }
    }

    #[test]
    fn policy_variables_need_version_2012() {
        let mut doc = good_identity();
        doc["Version"] = json!("2008-10-17");
        let warns = warnings(&doc, PolicyKind::Identity);
        assert_eq!(pointers(&warns), ["/Statement/0/Resource/1"]);
        assert!(warns[0].message.contains("policy variable"));
    }

    #[test]
    fn id_must_be_string() {
        let mut doc = good_identity();
        doc["Id"] = json!(7);
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(pointers(&errs), ["/Id"]);
        assert_eq!(errs[0].message, "Id must be a string, got 7");
    }

    #[test]
    fn statement_required_object_or_nonempty_list_of_objects() {
        let errs = errors(&json!({"Version": "2012-10-17"}), PolicyKind::Identity);
        assert_eq!(pointers(&errs), [""]);
        assert!(errs[0].message.contains("no Statement"));

        let errs = errors(
            &json!({"Version": "2012-10-17", "Statement": []}),
            PolicyKind::Identity,
        );
        assert_eq!(pointers(&errs), ["/Statement"]);

        let errs = errors(
            &json!({"Version": "2012-10-17", "Statement": "x"}),
            PolicyKind::Identity,
        );
        assert_eq!(pointers(&errs), ["/Statement"]);

        let errs = errors(
            &json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, 3, []
            ]}),
            PolicyKind::Identity,
        );
        assert_eq!(pointers(&errs), ["/Statement/1", "/Statement/2"]);
        assert_eq!(errs[0].message, "Statement[1] must be an object, got 3");
    }

    #[test]
    fn single_statement_object_uses_unindexed_names() {
        let doc = json!({"Version": "2012-10-17", "Statement": {"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"}});
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(pointers(&errs), ["/Statement/Effect"]);
        assert_eq!(
            errs[0].message,
            r#"Statement.Effect must be "Allow" or "Deny", got "allow""#
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_hints() {
        let mut doc = good_identity();
        doc["Comment"] = json!("x");
        doc["Statement"][1]["Actions"] = json!("s3:GetObject");
        doc["Statement"][1]["effect"] = json!("Allow");
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            ["/Comment", "/Statement/1/Actions", "/Statement/1/effect"]
        );
        assert_eq!(
            errs[0].message,
            r#"the policy document has unknown element "Comment""#
        );
        assert_eq!(
            errs[1].message,
            r#"Statement[1] has unknown element "Actions" (did you mean "Action"?)"#
        );
        assert!(errs[2].message.contains(r#"did you mean "Effect"?"#));
    }

    #[test]
    fn effect_required_and_exact() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": true, "Action": "s3:GetObject", "Resource": "*"}
        ]});
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            ["/Statement/0", "/Statement/2/Effect", "/Statement/3/Effect"]
        );
        assert_eq!(errs[0].message, "Statement[0] must have Effect");
        assert_eq!(
            errs[1].message,
            r#"Statement[2].Effect must be "Allow" or "Deny", got "allow""#
        );
        assert_eq!(
            errs[2].message,
            r#"Statement[3].Effect must be "Allow" or "Deny", got true"#
        );
    }

    #[test]
    fn exactly_one_of_action_and_not_action() {
        let none = identity(json!({"Effect": "Allow", "Resource": "*"}));
        let errs = errors(&none, PolicyKind::Identity);
        assert_eq!(pointers(&errs), ["/Statement/0"]);
        assert_eq!(
            errs[0].message,
            "Statement[0] must have Action or NotAction"
        );

        let both = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}),
        );
        let errs = errors(&both, PolicyKind::Identity);
        assert_eq!(pointers(&errs), ["/Statement/0/NotAction"]);
    }

    #[test]
    fn action_shapes() {
        let doc = identity(json!({"Effect": "Allow", "Resource": "*", "Action": [
            "*", "s3:GetObject", "s3:Get*", "ec2:Describe?nstances", "execute-api:Invoke",
            "s3GetObject", "s3:", ":GetObject", "s3:Get:Object", "s_3:GetObject", "s3:Get Object", 3
        ]}));
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            (5..12)
                .map(|i| format!("/Statement/0/Action/{i}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            errs[0].message,
            r#"Statement[0].Action[5] must be "*" or "service:ActionName" (wildcards * and ? allowed in the name), got "s3GetObject""#
        );
        assert_eq!(
            errs[6].message,
            "Statement[0].Action[11] must be a string, got 3"
        );

        let upper = identity(json!({"Effect": "Allow", "Resource": "*", "Action": "S3:GetObject"}));
        assert_eq!(errors(&upper, PolicyKind::Identity), vec![]);
        assert_eq!(
            pointers(&warnings(&upper, PolicyKind::Identity)),
            ["/Statement/0/Action"]
        );
    }

    #[test]
    fn empty_lists_are_errors() {
        let doc = identity(json!({"Effect": "Allow", "Action": [], "Resource": []}));
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            ["/Statement/0/Action", "/Statement/0/Resource"]
        );
        assert_eq!(
            errs[0].message,
            "Statement[0].Action must not be an empty list"
        );

        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": []}
        }]});
        let errs = errors(&doc, PolicyKind::Trust);
        assert_eq!(pointers(&errs), ["/Statement/0/Principal/AWS"]);
    }

    #[test]
    fn identity_forbids_principal_and_requires_one_resource_element() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"AWS": "123456789012"}},
            {"Effect": "Allow", "Action": "s3:*"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotResource": "arn:aws:s3:::b"}
        ]});
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            [
                "/Statement/0/Principal",
                "/Statement/1/NotPrincipal",
                "/Statement/2",
                "/Statement/3/NotResource"
            ]
        );
        assert_eq!(
            errs[2].message,
            "Statement[2] must have Resource or NotResource"
        );
        assert_eq!(
            errs[3].message,
            "Statement[3] must not have both Resource and NotResource"
        );
    }

    #[test]
    fn trust_requires_principal_and_forbids_resource() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": "*", "NotPrincipal": "*"},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}, "Resource": "*"}
        ]});
        let errs = errors(&doc, PolicyKind::Trust);
        assert_eq!(
            pointers(&errs),
            [
                "/Statement/0",
                "/Statement/1/NotPrincipal",
                "/Statement/2/Resource"
            ]
        );
        assert_eq!(
            errs[0].message,
            "Statement[0] must have Principal or NotPrincipal"
        );
    }

    #[test]
    fn trust_warns_on_non_assume_role_actions() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
            "Action": ["sts:AssumeRoleWithWebIdentity", "sts:assumerole", "sts:AssumeRole*", "sts:TagSession",
                       "sts:SetSourceIdentity", "sts:SetContext", "s3:GetObject", "sts:*"]
        }]});
        assert_eq!(errors(&doc, PolicyKind::Trust), vec![]);
        let warns = warnings(&doc, PolicyKind::Trust);
        assert_eq!(
            pointers(&warns),
            ["/Statement/0/Action/6", "/Statement/0/Action/7"]
        );
        assert!(warns[0].message.contains("not a role-assumption action"));
        // The same actions are fine in an identity policy.
        let mut identity_doc = doc.clone();
        let stmt = identity_doc["Statement"][0].as_object_mut().unwrap();
        stmt.shift_remove("Principal");
        stmt.insert("Resource".into(), json!("*"));
        assert_eq!(validate(&identity_doc, PolicyKind::Identity), vec![]);
    }

    #[test]
    fn resource_policy_requires_principal_and_resource() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Principal": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"}, "NotResource": "arn:aws:s3:::b/public/*"}
        ]});
        let errs = errors(&doc, PolicyKind::Resource);
        assert_eq!(pointers(&errs), ["/Statement/0", "/Statement/1"]);
        assert_eq!(
            errs[1].message,
            "Statement[1] must have Resource or NotResource"
        );
    }

    #[test]
    fn principal_shapes() {
        let trust = |principal: Value| {
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}
            ]})
        };
        for ok in [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": ["123456789012", "arn:aws-cn:iam::123456789012:root"]}),
            json!({"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}),
            json!({"Federated": "cognito-identity.amazonaws.com"}),
            json!({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}),
        ] {
            assert_eq!(
                validate(&trust(ok.clone()), PolicyKind::Trust),
                vec![],
                "{ok}"
            );
        }

        let cases = [
            (json!("123456789012"), "/Statement/0/Principal"),
            (json!(["*"]), "/Statement/0/Principal"),
            (json!({}), "/Statement/0/Principal"),
            (json!({"aws": "*"}), "/Statement/0/Principal/aws"),
            (json!({"User": "x"}), "/Statement/0/Principal/User"),
            (
                json!({"AWS": 123456789012_u64}),
                "/Statement/0/Principal/AWS",
            ),
            (json!({"AWS": ["12345"]}), "/Statement/0/Principal/AWS/0"),
            (json!({"Service": ""}), "/Statement/0/Principal/Service"),
        ];
        for (principal, pointer) in cases {
            let errs = errors(&trust(principal.clone()), PolicyKind::Trust);
            assert_eq!(pointers(&errs), [pointer], "{principal}");
        }
        let errs = errors(&trust(json!("me")), PolicyKind::Trust);
        assert_eq!(
            errs[0].message,
            r#"Statement[0].Principal must be "*" or an object such as {"AWS": ...}, got "me""#
        );

        // IAM shows a deleted principal as its unique ID: accepted with a warning.
        let deleted = trust(json!({"AWS": "AROAEXAMPLEEXAMPLE1234"}));
        assert_eq!(errors(&deleted, PolicyKind::Trust), vec![]);
        assert_eq!(
            pointers(&warnings(&deleted, PolicyKind::Trust)),
            ["/Statement/0/Principal/AWS"]
        );
    }

    #[test]
    fn resource_strings_are_star_or_arn() {
        let doc = identity(json!({"Effect": "Allow", "Action": "s3:*", "Resource": [
            "*",
            "arn:aws:s3:::b/${aws:username}/*",
            "arn:${aws:partition}:s3:::b",
            "mlspace-data",
            "ARN:aws:s3:::b",
            "arn:aws:s3"
        ]}));
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            ["/Statement/0/Resource/3", "/Statement/0/Resource/4"]
        );
        assert_eq!(
            errs[0].message,
            r#"Statement[0].Resource[3] must be "*" or an ARN starting with "arn:", got "mlspace-data""#
        );
        assert_eq!(
            pointers(&warnings(&doc, PolicyKind::Identity)),
            ["/Statement/0/Resource/5"]
        );
    }

    #[test]
    fn sid_alphanumeric_and_unique() {
        let doc = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Read1", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "Read-2", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "Read1", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": 5, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Sid": "", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
        ]});
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            ["/Statement/1/Sid", "/Statement/2/Sid", "/Statement/3/Sid"]
        );
        assert_eq!(
            errs[0].message,
            r#"Statement[1].Sid must contain only letters A-Z, a-z and digits 0-9, got "Read-2""#
        );
        assert_eq!(
            errs[1].message,
            r#"Statement[2].Sid "Read1" is not unique: Statement[0] has the same Sid"#
        );
    }

    #[test]
    fn bucket_policy_sid_free_text_is_only_a_warning() {
        let doc = json!({"Version": "2012-10-17", "Statement": [{
            "Sid": "Allow get requests from example.com",
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"
        }]});
        assert_eq!(errors(&doc, PolicyKind::Resource), vec![]);
        assert_eq!(
            pointers(&warnings(&doc, PolicyKind::Resource)),
            ["/Statement/0/Sid"]
        );
    }

    #[test]
    fn condition_structure() {
        let doc = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {
                "StringEquals": {"aws:PrincipalTag/team": ["a", "b"], "s3:prefix": 3, "aws:SecureTransport": true},
                "Bool": "aws:SecureTransport",
                "IpAddress": {"aws:SourceIp": {"cidr": "10.0.0.0/8"}},
                "StringLike": {"aws:userid": [null, "x"]},
                "NumericEquals": {"s3:max-keys": []},
                "DateLessThan": {}
            }}),
        );
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            [
                "/Statement/0/Condition/Bool",
                "/Statement/0/Condition/IpAddress/aws:SourceIp",
                "/Statement/0/Condition/StringLike/aws:userid/0"
            ]
        );
        assert_eq!(
            errs[0].message,
            r#"Statement[0].Condition.Bool must be an object mapping condition keys to values, got "aws:SecureTransport""#
        );
        assert_eq!(
            pointers(&warnings(&doc, PolicyKind::Identity)),
            [
                "/Statement/0/Condition/NumericEquals/s3:max-keys",
                "/Statement/0/Condition/DateLessThan"
            ]
        );

        let not_object = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": []}),
        );
        assert_eq!(
            pointers(&errors(&not_object, PolicyKind::Identity)),
            ["/Statement/0/Condition"]
        );
    }

    #[test]
    fn condition_operators_must_be_known() {
        let doc = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {
                "StringEqualsIfExists": {"aws:RequestTag/env": "prod"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]},
                "ForAnyValue:ArnLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"},
                "stringEquals": {"aws:username": "a"},
                "NullIfExists": {"aws:username": "true"},
                "StringMatches": {"aws:username": "a"}
            }}),
        );
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            [
                "/Statement/0/Condition/stringEquals",
                "/Statement/0/Condition/NullIfExists",
                "/Statement/0/Condition/StringMatches"
            ]
        );
        assert_eq!(
            errs[0].message,
            r#"Statement[0].Condition has unknown condition operator "stringEquals" (did you mean "StringEquals"?)"#
        );
        assert!(errs[1].message.contains("Null does not take IfExists"));
    }

    #[test]
    fn condition_keys_must_be_prefixed() {
        let doc = identity(
            json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {
                "StringEquals": {
                    "SourceVpc": "vpc-1",
                    "aws:RequestTag/Cost Center": "1",
                    "aws:PrincipalTag/": "x"
                }
            }}),
        );
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            [
                "/Statement/0/Condition/StringEquals/SourceVpc",
                "/Statement/0/Condition/StringEquals/aws:PrincipalTag~1"
            ]
        );
        assert!(errs[0]
            .message
            .starts_with(r#"Statement[0].Condition.StringEquals: condition key "SourceVpc""#));
    }

    #[test]
    fn collects_every_issue() {
        let doc = json!({
            "Version": "1",
            "Extra": true,
            "Statement": [
                {"Sid": "a b", "Effect": "Permit", "Action": "s3", "Resource": "bucket", "Principal": "*"},
                {"Effect": "Allow"}
            ]
        });
        let errs = errors(&doc, PolicyKind::Identity);
        assert_eq!(
            pointers(&errs),
            [
                "/Extra",
                "/Version",
                "/Statement/0/Sid",
                "/Statement/0/Effect",
                "/Statement/0/Action",
                "/Statement/0/Principal",
                "/Statement/0/Resource",
                "/Statement/1",
                "/Statement/1"
            ]
        );
    }

    #[test]
    fn issue_display_and_serialization() {
        let issue = Issue {
            pointer: "/Statement/0/Effect".into(),
            severity: Severity::Error,
            message: "Statement[0].Effect must be \"Allow\" or \"Deny\", got \"x\"".into(),
        };
        assert_eq!(
            issue.to_string(),
            "error: Statement[0].Effect must be \"Allow\" or \"Deny\", got \"x\""
        );
        let json = serde_json::to_value(&issue).unwrap();
        assert_eq!(json["severity"], "error");
        assert_eq!(json["pointer"], "/Statement/0/Effect");
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let doc = identity(json!({"Effect": long, "Action": "s3:*", "Resource": "*"}));
        let errs = errors(&doc, PolicyKind::Identity);
        assert!(errs[0].message.len() < 200);
        assert!(errs[0].message.ends_with("..."));
    }
}
