//! ARNs as policies write them and as the catalogue describes them, split into the six
//! colon-separated parts so that each part can be compared on its own (which is how a
//! "region in the ARN of a global service" or a "missing account" is told apart from a
//! plain mismatch).

use crate::glob::Pattern;

/// The parts of an ARN after `arn:`; the resource part keeps any further colons.
#[derive(Debug, Clone)]
struct Parts<'a> {
    partition: &'a str,
    service: &'a str,
    region: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// Splits `arn:partition:service:region:account:resource`; `None` when there are fewer
/// than six parts. Colons inside `${...}` policy variables do not split.
fn split(text: &str) -> Option<Parts<'_>> {
    let rest = text.strip_prefix("arn:")?;
    let mut cuts = [0usize; 4];
    let mut found = 0;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() && found < 4 {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => match rest[i..].find('}') {
                Some(len) => i += len,
                None => i += 1,
            },
            b':' => {
                cuts[found] = i;
                found += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if found < 4 {
        return None;
    }
    Some(Parts {
        partition: &rest[..cuts[0]],
        service: &rest[cuts[0] + 1..cuts[1]],
        region: &rest[cuts[1] + 1..cuts[2]],
        account: &rest[cuts[2] + 1..cuts[3]],
        resource: &rest[cuts[3] + 1..],
    })
}

/// A resource ARN as written in a policy (wildcards and policy variables allowed).
#[derive(Debug, Clone)]
pub(crate) struct PolicyArn {
    /// The service part as written (may hold wildcards).
    pub(crate) service: String,
    pub(crate) region: String,
    pub(crate) account: String,
    partition_pat: Pattern,
    service_pat: Pattern,
    region_pat: Pattern,
    account_pat: Pattern,
    resource_pat: Pattern,
}

impl PolicyArn {
    /// Parses a policy resource; `None` for `*`, non-ARNs and ARNs with too few parts.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let p = split(text)?;
        Some(Self {
            service: p.service.to_owned(),
            region: p.region.to_owned(),
            account: p.account.to_owned(),
            partition_pat: Pattern::policy(p.partition),
            service_pat: Pattern::policy(p.service),
            region_pat: Pattern::policy(p.region),
            account_pat: Pattern::policy(p.account),
            resource_pat: Pattern::policy(p.resource),
        })
    }

    /// Whether the service part is a fixed name (no wildcard or variable).
    pub(crate) fn has_literal_service(&self) -> bool {
        self.service_pat.is_literal()
    }

    /// Whether the region part can be empty (it is empty, or a wildcard).
    pub(crate) fn region_can_be_empty(&self) -> bool {
        self.region_pat.can_be_empty()
    }

    /// Whether the region part can be non-empty.
    pub(crate) fn region_can_be_set(&self) -> bool {
        !self.region.is_empty()
    }

    /// Whether the account part can be empty.
    pub(crate) fn account_can_be_empty(&self) -> bool {
        self.account_pat.can_be_empty()
    }

    /// Whether the account part can be non-empty.
    pub(crate) fn account_can_be_set(&self) -> bool {
        !self.account.is_empty()
    }

    /// Whether the resource part (after the account) matches every text `part` matches,
    /// e.g. `role/*` for "every role".
    pub(crate) fn resource_covers(&self, part: &str) -> bool {
        self.resource_pat.covers(&Pattern::policy(part))
    }

    /// Whether some ARN matched by this policy resource is of the resource type `t`.
    pub(crate) fn could_be(&self, t: &ArnTemplate) -> bool {
        // Cheapest and most selective first.
        self.service_pat.intersects(&t.service)
            && self.resource_pat.intersects(&t.resource)
            && self.region_pat.intersects(&t.region)
            && self.account_pat.intersects(&t.account)
            && self.partition_pat.intersects(&t.partition)
    }

    /// Whether the parts other than region and account fit `t`: the ARN would be of this
    /// type but for its region or account part.
    pub(crate) fn could_be_but_for_location(&self, t: &ArnTemplate) -> bool {
        self.service_pat.intersects(&t.service)
            && self.resource_pat.intersects(&t.resource)
            && self.partition_pat.intersects(&t.partition)
    }
}

/// An ARN template of the catalogue, e.g. `arn:${Partition}:s3:::${BucketName}`.
#[derive(Debug, Clone)]
pub(crate) struct ArnTemplate {
    /// The service part as written, e.g. `s3` (empty for a template that is no ARN).
    pub(crate) service_name: Box<str>,
    partition: Pattern,
    service: Pattern,
    /// Whether the template has a region part (global services such as IAM and S3
    /// buckets have none).
    pub(crate) has_region: bool,
    /// Whether the template has an account part.
    pub(crate) has_account: bool,
    region: Pattern,
    account: Pattern,
    resource: Pattern,
}

impl ArnTemplate {
    /// Parses a template; a template that is not an ARN matches nothing.
    pub(crate) fn parse(text: &str) -> Self {
        match split(text) {
            Some(p) => Self {
                service_name: p.service.into(),
                partition: Pattern::template(p.partition),
                service: Pattern::template(p.service),
                has_region: !p.region.is_empty(),
                has_account: !p.account.is_empty(),
                region: Pattern::template(p.region),
                account: Pattern::template(p.account),
                resource: Pattern::template(p.resource),
            },
            None => Self {
                service_name: "".into(),
                // "arn" is never a service part: this template matches no policy ARN.
                partition: Pattern::template(""),
                service: Pattern::template("\u{0}"),
                has_region: false,
                has_account: false,
                region: Pattern::template(""),
                account: Pattern::template(""),
                resource: Pattern::template(""),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn could_be(arn: &str, template: &str) -> bool {
        PolicyArn::parse(arn)
            .unwrap()
            .could_be(&ArnTemplate::parse(template))
    }

    const BUCKET: &str = "arn:${Partition}:s3:::${BucketName}";
    const OBJECT: &str = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";
    const ROLE: &str = "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}";
    const FUNCTION: &str = "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}";

    #[test]
    fn splits_six_parts_and_keeps_resource_colons() {
        let p = split("arn:aws:lambda:us-east-1:123456789012:function:f:alias").unwrap();
        assert_eq!(p.service, "lambda");
        assert_eq!(p.resource, "function:f:alias");
        let v = split("arn:${aws:partition}:s3:::b/${aws:username}/*").unwrap();
        assert_eq!(v.partition, "${aws:partition}");
        assert_eq!(v.resource, "b/${aws:username}/*");
        assert!(split("arn:aws:s3").is_none());
        assert!(split("*").is_none());
    }

    #[test]
    fn matches_resource_types() {
        assert!(could_be("arn:aws:s3:::mlspace-data", BUCKET));
        assert!(!could_be("arn:aws:s3:::mlspace-data", OBJECT));
        assert!(could_be("arn:aws:s3:::mlspace-data/*", OBJECT));
        assert!(!could_be("arn:aws:s3:::mlspace-data/*", BUCKET));
        assert!(could_be("arn:aws:s3:::*", BUCKET));
        assert!(could_be("arn:aws:s3:::*", OBJECT));
        assert!(could_be("arn:*:s3:::mlspace-data", BUCKET));
        assert!(!could_be("arn:aws:s3:us-east-1::mlspace-data", BUCKET));
        assert!(could_be("arn:aws:iam::123456789012:role/MLSpace*", ROLE));
        assert!(!could_be("arn:aws:iam:::role/x", ROLE));
        assert!(could_be(
            "arn:aws:lambda:us-east-1:123456789012:function:mls-lambda-*",
            FUNCTION
        ));
        assert!(!could_be(
            "arn:aws:sagemaker:us-east-1:123456789012:*",
            FUNCTION
        ));
    }

    #[test]
    fn location_parts() {
        let a = PolicyArn::parse("arn:aws:s3:us-east-1::b").unwrap();
        assert!(a.region_can_be_set());
        assert!(!a.region_can_be_empty());
        assert!(a.could_be_but_for_location(&ArnTemplate::parse(BUCKET)));
        let t = ArnTemplate::parse(BUCKET);
        assert!(!t.has_region && !t.has_account);
        let star = PolicyArn::parse("arn:aws:s3:*:*:b").unwrap();
        assert!(star.region_can_be_empty() && star.account_can_be_empty());
    }
}
