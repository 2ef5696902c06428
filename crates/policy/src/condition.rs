//! Condition operators and condition keys: what IAM accepts in a `Condition` block.
//!
//! An operator name is a base operator (e.g. `StringLike`), optionally qualified for
//! multivalued keys (`ForAnyValue:` / `ForAllValues:`) and optionally suffixed with
//! `IfExists` (never on `Null`, whose whole point is testing existence).

use serde::Serialize;

/// The base condition operators IAM knows, without qualifier or `IfExists`.
pub(crate) const BASE_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

const IF_EXISTS: &str = "IfExists";

/// Set operator qualifying a condition on a multivalued key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SetQualifier {
    /// `ForAnyValue:`: at least one request value must match.
    ForAnyValue,
    /// `ForAllValues:`: every request value must match (true for no values).
    ForAllValues,
}

/// A parsed condition operator name such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConditionOperator {
    /// `ForAnyValue:` or `ForAllValues:` when present.
    pub qualifier: Option<SetQualifier>,
    /// The base operator, one of the names IAM documents (e.g. `StringEquals`).
    pub base: &'static str,
    /// Whether the `IfExists` suffix is present.
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parses an operator name; `None` when IAM would reject it. Case-sensitive, as IAM is.
    pub fn parse(name: &str) -> Option<Self> {
        let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, name)
        };
        // Try the exact name first: no base operator itself ends in "IfExists".
        let (base_name, if_exists) = match rest.strip_suffix(IF_EXISTS) {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let base = BASE_OPERATORS.iter().copied().find(|b| *b == base_name)?;
        if if_exists && base == "Null" {
            return None;
        }
        Some(Self {
            qualifier,
            base,
            if_exists,
        })
    }
}

/// Why `key` is not shaped like a condition key (`prefix:Name`, optional `/tag` part),
/// or `None` when it is. Only the shape is checked: services add keys all the time.
pub(crate) fn condition_key_problem(key: &str) -> Option<&'static str> {
    let Some((prefix, rest)) = key.split_once(':') else {
        return Some("must look like prefix:Name");
    };
    // Prefixes include OIDC provider URLs such as
    // "oidc.eks.us-east-1.amazonaws.com/id/ABC", hence dots and slashes.
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
    {
        return Some("has an invalid prefix before ':'");
    }
    // Tag keys after '/' are free text (they may hold spaces and colons).
    let (name, tag) = match rest.split_once('/') {
        Some((name, tag)) => (name, Some(tag)),
        None => (rest, None),
    };
    // Names may contain ':' (kms:EncryptionContext:aws:s3:arn) and '-' (s3:x-amz-acl).
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
    {
        return Some("has an invalid name after ':'");
    }
    if tag.is_some_and(str::is_empty) {
        return Some("has an empty tag key after '/'");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_qualified_and_if_exists_operators() {
        let op = ConditionOperator::parse("StringEquals").unwrap();
        assert_eq!(op.qualifier, None);
        assert_eq!(op.base, "StringEquals");
        assert!(!op.if_exists);

        let op = ConditionOperator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.qualifier, Some(SetQualifier::ForAllValues));
        assert_eq!(op.base, "StringLike");
        assert!(op.if_exists);

        let op = ConditionOperator::parse("ForAnyValue:ArnNotLike").unwrap();
        assert_eq!(op.qualifier, Some(SetQualifier::ForAnyValue));
        assert!(ConditionOperator::parse("NumericLessThanEqualsIfExists").is_some());
        assert!(ConditionOperator::parse("Null").is_some());
    }

    #[test]
    fn every_base_operator_parses_with_every_decoration() {
        for base in BASE_OPERATORS {
            for prefix in ["", "ForAnyValue:", "ForAllValues:"] {
                assert!(ConditionOperator::parse(&format!("{prefix}{base}")).is_some());
                let with_suffix = ConditionOperator::parse(&format!("{prefix}{base}IfExists"));
                assert_eq!(
                    with_suffix.is_some(),
                    *base != "Null",
                    "{prefix}{base}IfExists"
                );
            }
        }
    }

    #[test]
    fn rejects_unknown_or_misspelled_operators() {
        for name in [
            "stringequals",
            "StringEqual",
            "NullIfExists",
            "ForAnyValues:StringEquals",
            "ForAnyValue:",
            "IfExists",
            "StringEqualsIfExistsIfExists",
            "",
        ] {
            assert!(ConditionOperator::parse(name).is_none(), "{name}");
        }
    }

    #[test]
    fn condition_key_shapes() {
        for ok in [
            "aws:SourceIp",
            "aws:PrincipalTag/team",
            "aws:RequestTag/Cost Center",
            "aws:ResourceTag/aws:cloudformation:stack-name",
            "s3:x-amz-server-side-encryption",
            "kms:EncryptionContext:aws:s3:arn",
            "token.actions.githubusercontent.com:sub",
            "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE0123:aud",
            "saml:aud",
            "www.amazon.com:app_id",
        ] {
            assert_eq!(condition_key_problem(ok), None, "{ok}");
        }
        for bad in [
            "SourceIp",
            ":SourceIp",
            "aws:",
            "aws:Principal Tag",
            "aws:PrincipalTag/",
            "a ws:x",
        ] {
            assert!(condition_key_problem(bad).is_some(), "{bad}");
        }
    }
}
