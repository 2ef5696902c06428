//! Bucket: the manifest spec that describes an existing bucket (the `import` command).
//!
//! A setting is written only when it differs from what S3 gives a new bucket (SSE-S3
//! encryption, all four public access block flags, `BucketOwnerEnforced`, versioning never
//! enabled, no policy, CORS, lifecycle, logging, website or notification), so the manifest
//! holds what was chosen. A setting the manifest cannot express exactly (an encryption
//! algorithm it does not know, lifecycle rules with filters it has no field for, a policy
//! that is not JSON, a website status code that is not a number, a notification key filter
//! with other rules than one prefix and one suffix or an event type validation refuses) is
//! left out: unmanaged, and so never changed by adopting the bucket. Notifications keep the
//! ids S3 has (consumers read them as `configurationId`).

use super::diff::{Bucket, BucketObserved, ObservedEncryption, Setting, Versioning};
use super::{
    BucketEncryption, BucketNotifications, BucketSpec, ObjectOwnership, PublicAccessBlockSetting,
    SseAlgorithm, NOTIFICATION_EVENTS,
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

/// Whether validation accepts every event type of `n`.
fn known_events(n: &BucketNotifications) -> bool {
    n.destinations()
        .iter()
        .flat_map(|(_, list)| list.iter())
        .flat_map(|d| &d.events)
        .all(|e| NOTIFICATION_EVENTS.contains(&e.as_str()))
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
        website: o
            .website
            .value()
            .filter(|w| w.unmanaged.is_empty() && !w.website.is_empty())
            .map(|w| w.website.clone()),
        notifications: o
            .notifications
            .value()
            .filter(|n| {
                n.unmanaged.is_empty()
                    && !n.notifications.is_empty()
                    && known_events(&n.notifications)
            })
            .map(|n| n.notifications.clone()),
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
    use crate::kinds::bucket::diff::{ObservedNotifications, ObservedWebsite};
    use crate::kinds::bucket::{
        BucketWebsite, NotificationDestination, NotificationFilter, PublicAccessBlock,
    };
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
            website: Setting::Unset,
            notifications: Setting::Unset,
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
    fn queue(id: &str, events: &[&str]) -> NotificationDestination {
        NotificationDestination {
            id: Some(id.into()),
            arn: "arn:aws:sqs:us-east-1:123456789012:uploads".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            filter: NotificationFilter {
                prefix: Some("uploads/".into()),
                suffix: None,
            },
        }
    }

    #[test]
    fn website_and_notifications_are_written_when_set() {
        let website = BucketWebsite {
            index_document: Some("index.html".into()),
            error_document: Some("index.html".into()),
            ..BucketWebsite::default()
        };
        let notifications = BucketNotifications {
            event_bridge: true,
            queues: vec![queue("MzA0NjFkZWMtYTA0Yi00", &["s3:ObjectCreated:*"])],
            ..BucketNotifications::default()
        };
        let o = BucketObserved {
            website: Setting::Set(website.clone().into()),
            notifications: Setting::Set(notifications.clone().into()),
            ..BucketObserved::default()
        };
        let s = spec(&o);
        assert_eq!(s.website, Some(website));
        assert_eq!(
            s.notifications,
            Some(notifications),
            "the ids S3 has are kept: consumers read them as configurationId"
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap()["notifications"]["queues"][0]["filter"],
            json!({"prefix": "uploads/"})
        );
        let unset = BucketObserved {
            website: Setting::Unset,
            notifications: Setting::Unset,
            ..BucketObserved::default()
        };
        let s = spec(&unset);
        assert_eq!((s.website, s.notifications), (None, None));
    }

    #[test]
    fn website_and_notifications_the_manifest_cannot_express_are_left_out() {
        let mut website: ObservedWebsite = BucketWebsite {
            index_document: Some("index.html".into()),
            ..BucketWebsite::default()
        }
        .into();
        website.unmanaged.insert(
            "RoutingRules[0].Redirect.HttpRedirectCode".into(),
            json!("3o1"),
        );
        let mut filtered: ObservedNotifications = BucketNotifications {
            queues: vec![queue("a", &["s3:ObjectCreated:*"])],
            ..BucketNotifications::default()
        }
        .into();
        filtered.unmanaged.insert(
            "QueueConfigurations[0].Filter.Key.FilterRules".into(),
            json!([{"Name": "Prefix", "Value": "a/"}, {"Name": "Prefix", "Value": "b/"}]),
        );
        let o = BucketObserved {
            website: Setting::Set(website),
            notifications: Setting::Set(filtered),
            ..BucketObserved::default()
        };
        let s = spec(&o);
        assert_eq!((s.website, s.notifications), (None, None));
        // An event type validation would refuse (one the SDK knows but S3 does not document
        // for these destinations).
        let o = BucketObserved {
            notifications: Setting::Set(
                BucketNotifications {
                    queues: vec![queue("a", &["s3:ObjectRetention:Put"])],
                    ..BucketNotifications::default()
                }
                .into(),
            ),
            ..BucketObserved::default()
        };
        assert_eq!(spec(&o).notifications, None);
    }
}
