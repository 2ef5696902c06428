//! Bucket: the manifest spec that describes an existing bucket (the `import` command).
//!
//! A setting is written only when it differs from what S3 gives a new bucket (SSE-S3
//! encryption, all four public access block flags, `BucketOwnerEnforced`, versioning never
//! enabled, no policy, CORS, lifecycle or logging), so the manifest holds what was chosen.
//! A setting the manifest cannot express exactly (an encryption algorithm it does not
//! know, lifecycle rules with filters it has no field for, a policy that is not JSON) is
//! left out: unmanaged, and so never changed by adopting the bucket.

use super::diff::{Bucket, BucketObserved, ObservedEncryption, Setting, Versioning};
use super::{
    BucketEncryption, BucketSpec, ObjectOwnership, PublicAccessBlockSetting, SseAlgorithm,
};
use crate::kinds::core::{own_tags, Import, PlanCx};

fn encryption(e: &ObservedEncryption) -> Option<BucketEncryption> {
    let sse_algorithm = match e.sse_algorithm.as_str() {
        "AES256" => SseAlgorithm::Aes256,
        "aws:kms" => SseAlgorithm::Kms,
        "aws:kms:dsse" => SseAlgorithm::KmsDsse,
        _ => return None,
    };
    if sse_algorithm == SseAlgorithm::Aes256 && e.kms_key_id.is_none() && !e.bucket_key_enabled {
        return None;
    }
    Some(BucketEncryption {
        sse_algorithm,
        kms_key_id: e.kms_key_id.clone(),
        bucket_key_enabled: e.bucket_key_enabled.then_some(true),
    })
}

fn ownership(s: &str) -> Option<ObjectOwnership> {
    match s {
        "BucketOwnerPreferred" => Some(ObjectOwnership::BucketOwnerPreferred),
        "ObjectWriter" => Some(ObjectOwnership::ObjectWriter),
        // BucketOwnerEnforced is the default; anything else cannot be written.
        _ => None,
    }
}

/// The spec of `o` (observed with every setting read).
pub fn spec(o: &BucketObserved) -> BucketSpec {
    let public_access_block = match &o.public_access_block {
        Setting::Set(f) if *f == PublicAccessBlockSetting::All(true).flags() => None,
        Setting::Set(f) if *f == PublicAccessBlockSetting::All(false).flags() => {
            Some(PublicAccessBlockSetting::All(false))
        }
        Setting::Set(f) => Some(PublicAccessBlockSetting::Flags(*f)),
        Setting::Unset => Some(PublicAccessBlockSetting::All(false)),
        Setting::NotRead => None,
    };
    let lifecycle_rules = o
        .lifecycle_rules
        .value()
        .filter(|rules| !rules.is_empty() && rules.iter().all(|r| r.unmanaged.is_empty()))
        .map(|rules| rules.iter().map(|r| r.rule.clone()).collect());
    BucketSpec {
        encryption: o.encryption.value().and_then(encryption),
        versioning: o.versioning.value().map(|v| *v == Versioning::Enabled),
        public_access_block,
        logging: o.logging.value().cloned(),
        policy: o.policy.value().filter(|p| p.is_object()).cloned(),
        cors: o.cors.value().filter(|c| !c.is_empty()).cloned(),
        lifecycle_rules,
        ownership: o.ownership.value().and_then(|s| ownership(s)),
        tags: own_tags(&o.tags),
        force_destroy: false,
    }
}

impl Import for Bucket {
    fn import(_: &str, o: &BucketObserved, _: &PlanCx) -> BucketSpec {
        spec(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::bucket::PublicAccessBlock;
    use serde_json::json;

    #[test]
    fn defaults_are_left_out_and_choices_kept() {
        let fresh = BucketObserved {
            encryption: Setting::Set(ObservedEncryption {
                sse_algorithm: "AES256".into(),
                kms_key_id: None,
                bucket_key_enabled: false,
            }),
            versioning: Setting::Unset,
            public_access_block: Setting::Set(PublicAccessBlockSetting::All(true).flags()),
            logging: Setting::Unset,
            policy: Setting::Unset,
            cors: Setting::Unset,
            lifecycle_rules: Setting::Unset,
            ownership: Setting::Set("BucketOwnerEnforced".into()),
            tags: Default::default(),
        };
        let s = spec(&fresh);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"tags": {}}),
            "{s:?}"
        );

        let chosen = BucketObserved {
            versioning: Setting::Set(Versioning::Suspended),
            public_access_block: Setting::Set(PublicAccessBlock {
                block_public_acls: true,
                ..PublicAccessBlockSetting::All(false).flags()
            }),
            policy: Setting::Set(json!({"Version": "2012-10-17", "Statement": []})),
            ..fresh
        };
        let s = spec(&chosen);
        assert_eq!(s.versioning, Some(false));
        assert!(matches!(
            s.public_access_block,
            Some(PublicAccessBlockSetting::Flags(_))
        ));
        assert!(s.policy.is_some());
    }
}
