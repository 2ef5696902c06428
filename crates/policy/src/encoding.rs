//! Policy documents as text: decoding what IAM returns, and the length IAM counts.
//!
//! IAM's Get* APIs return documents URL-encoded (RFC 3986), while S3's GetBucketPolicy
//! and documents read from git are raw JSON; [`decode_iam_document`] accepts both.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::PolicyError;

/// IAM quota: characters in one customer managed policy (whitespace not counted).
pub const MANAGED_POLICY_MAX_LEN: usize = 6_144;
/// IAM quota: characters of all inline policies of one role together.
pub const ROLE_INLINE_POLICIES_MAX_LEN: usize = 10_240;
/// IAM quota: characters in a role trust policy, by default (raisable to 4,096 per account).
pub const TRUST_POLICY_DEFAULT_MAX_LEN: usize = 2_048;
/// S3 quota: size of a bucket policy (20 KB).
pub const BUCKET_POLICY_MAX_LEN: usize = 20_480;

/// The length IAM counts against its size quotas: the document without whitespace.
///
/// Computed as the number of characters of the minified serialization
/// (`serde_json::to_string`): whitespace between tokens is dropped, whitespace inside
/// strings is kept, since it is part of the value. Characters, not bytes, because IAM
/// states its quotas in characters. The count is independent of key order and of how
/// the source text was formatted, so a document from git and the same document read
/// back from IAM get the same length.
pub fn quota_len(doc: &Value) -> usize {
    // Serializing a Value cannot fail: its map keys are always strings.
    serde_json::to_string(doc)
        .map(|text| text.chars().count())
        .unwrap_or(0)
}

/// Parses a policy document as IAM returns it.
///
/// After trimming surrounding whitespace, text starting with `{` is taken as raw JSON;
/// anything else is percent-decoded first (IAM encodes per RFC 3986, so `+` stays a
/// literal plus and is not read as a space).
pub fn decode_iam_document(text: &str) -> Result<Value, PolicyError> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|source| PolicyError::InvalidJson {
            url_decoded: false,
            source,
        });
    }
    let decoded = percent_decode_str(trimmed)
        .decode_utf8()
        .map_err(|source| PolicyError::InvalidUtf8 { source })?;
    serde_json::from_str(&decoded).map_err(|source| PolicyError::InvalidJson {
        url_decoded: true,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A trust policy as GetRole returns it: pretty-printed by its author, then
    /// URL-encoded by IAM (spaces as %20, newlines as %0A).
    const ENCODED_TRUST: &str = "%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22%2C%0A%20%20\
        %22Statement%22%3A%20%5B%0A%20%20%20%20%7B%0A%20%20%20%20%20%20%22Effect%22%3A%20\
        %22Allow%22%2C%0A%20%20%20%20%20%20%22Principal%22%3A%20%7B%0A%20%20%20%20%20%20%20%20\
        %22Service%22%3A%20%22sagemaker.amazonaws.com%22%0A%20%20%20%20%20%20%7D%2C%0A%20%20\
        %20%20%20%20%22Action%22%3A%20%22sts%3AAssumeRole%22%0A%20%20%20%20%7D%0A%20%20%5D%0A%7D";

    #[test]
    fn decodes_url_encoded_document() {
        let doc = decode_iam_document(ENCODED_TRUST).unwrap();
        assert_eq!(
            doc,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole"
                }]
            })
        );
    }

    #[test]
    fn decodes_compact_url_encoded_document() {
        let text = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22\
            %3A%22Allow%22%2C%22Action%22%3A%22s3%3AGetObject%22%2C%22Resource%22%3A\
            %22arn%3Aaws%3As3%3A%3A%3Amlspace-data%2F%24%7Baws%3Ausername%7D%2F%2A%22%7D%5D%7D";
        let doc = decode_iam_document(text).unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"],
            "arn:aws:s3:::mlspace-data/${aws:username}/*"
        );
    }

    #[test]
    fn raw_json_is_not_url_decoded() {
        // "%41" would become "A" if the raw text were wrongly percent-decoded.
        let text = "  \n{\"Version\":\"2012-10-17\",\"Id\":\"100%41+x\",\"Statement\":[]}\n";
        let doc = decode_iam_document(text).unwrap();
        assert_eq!(doc["Id"], "100%41+x");
    }

    #[test]
    fn plus_is_literal_in_url_encoded_text() {
        let doc = decode_iam_document("%7B%22Id%22%3A%22a+b%22%7D").unwrap();
        assert_eq!(doc["Id"], "a+b");
    }

    #[test]
    fn reports_invalid_json_and_invalid_utf8() {
        let err = decode_iam_document("{\"Version\":").unwrap_err();
        assert!(matches!(
            err,
            PolicyError::InvalidJson {
                url_decoded: false,
                ..
            }
        ));
        let err = decode_iam_document("%7B%22Version%22").unwrap_err();
        assert!(matches!(
            err,
            PolicyError::InvalidJson {
                url_decoded: true,
                ..
            }
        ));
        assert!(err.to_string().contains("after URL-decoding"));
        let err = decode_iam_document("%7B%FF%7D").unwrap_err();
        assert!(matches!(err, PolicyError::InvalidUtf8 { .. }));
        assert!(decode_iam_document("").is_err());
    }

    #[test]
    fn quota_len_ignores_formatting_but_counts_string_content() {
        let pretty = decode_iam_document(ENCODED_TRUST).unwrap();
        let compact = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert_eq!(quota_len(&pretty), compact.len());

        // Spaces inside a string value are part of the value and are counted.
        assert_eq!(quota_len(&json!({"Id": "a b"})), r#"{"Id":"a b"}"#.len());
    }

    #[test]
    fn quota_len_counts_characters_not_bytes() {
        assert_eq!(
            quota_len(&json!({"Id": "é"})),
            r#"{"Id":"é"}"#.chars().count()
        );
    }
}
