//! KmsKey: the manifest spec that describes an existing key (the `import` command).
//!
//! The key policy is always written (it decides who may use the key); other settings only
//! where they differ from a new key's: a description, a key spec, usage or multi-Region
//! setting other than the defaults, rotation when on (with a period other than KMS's 365
//! days), the other aliases, a deletion window other than 30 days (from the key's window
//! tag), `enabled: false` for a disabled key. The tags mlspace-gitops puts on a key are left
//! out. A setting the manifest cannot express (a key spec or usage it has no value for) is
//! left out: the plan then names it as a change the key cannot make, rather than guessing.

use super::diff::{manifest_tags, state, KmsKey, KmsKeyObserved};
use super::{KeySpec, KeyUsage, KmsKeySpec};
use crate::kinds::core::{Import, PlanCx};

/// KMS's rotation period when EnableKeyRotation is given none.
pub const DEFAULT_ROTATION_PERIOD_DAYS: u32 = 365;

/// The spec of `o` (observed with every setting read), whose alias is `alias/NAME`.
pub fn spec(name: &str, o: &KmsKeyObserved) -> KmsKeySpec {
    let rotation = o.rotation.as_ref().filter(|r| r.enabled);
    KmsKeySpec {
        description: Some(o.description.clone()).filter(|d| !d.is_empty()),
        policy: o.policy.clone(),
        policy_file: None,
        key_spec: KeySpec::parse(&o.key_spec).unwrap_or_default(),
        key_usage: KeyUsage::parse(&o.key_usage).unwrap_or_default(),
        multi_region: o.multi_region,
        enable_key_rotation: rotation.map(|_| true),
        rotation_period_in_days: rotation
            .and_then(|r| r.period_in_days)
            .filter(|p| *p != DEFAULT_ROTATION_PERIOD_DAYS),
        aliases: o.aliases.iter().filter(|a| *a != name).cloned().collect(),
        deletion_window_in_days: o.deletion_window(),
        enabled: (o.key_state == state::DISABLED).then_some(false),
        tags: manifest_tags(&o.tags),
    }
}

impl Import for KmsKey {
    fn import(name: &str, o: &KmsKeyObserved, _: &PlanCx) -> KmsKeySpec {
        spec(name, o)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kinds::common::{Tags, OWNERSHIP_TAG, OWNERSHIP_VALUE};
    use crate::kinds::kms_key::diff::RotationObserved;
    use crate::kinds::kms_key::{NAME_TAG, WINDOW_TAG};
    use crate::kinds::KindPlan;

    fn observed() -> KmsKeyObserved {
        KmsKeyObserved {
            key_id: "k1".into(),
            arn: "arn:aws:kms:us-east-1:123456789012:key/k1".into(),
            key_state: "Enabled".into(),
            deletion_date: None,
            description: String::new(),
            policy: Some(json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "kms:*", "Resource": "*"}]})),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            multi_region: false,
            rotation: Some(RotationObserved {
                enabled: false,
                period_in_days: None,
            }),
            aliases: ["k".to_string()].into(),
            tags: Tags::new(),
        }
    }

    #[test]
    fn a_new_key_is_its_alias_and_policy_only() {
        let s = spec("k", &observed());
        let v = serde_json::to_value(&s).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["policy", "tags"]);
        let cx = PlanCx::default();
        let mut o = observed();
        o.tags = s.desired_tags("k", &cx);
        assert_eq!(KmsKey::update("k", &s, &o, &cx).unwrap(), (vec![], vec![]));
    }

    #[test]
    fn every_setting_that_differs_from_a_new_key_is_written() {
        let mut o = observed();
        o.description = "data".into();
        o.key_spec = "RSA_4096".into();
        o.key_usage = "SIGN_VERIFY".into();
        o.multi_region = true;
        o.rotation = Some(RotationObserved {
            enabled: true,
            period_in_days: Some(730),
        });
        o.aliases.insert("other".into());
        o.key_state = "Disabled".into();
        o.tags = [
            ("team".to_string(), "ml".to_string()),
            (OWNERSHIP_TAG.to_string(), OWNERSHIP_VALUE.to_string()),
            (NAME_TAG.to_string(), "k".to_string()),
            (WINDOW_TAG.to_string(), "14".to_string()),
        ]
        .into();
        let s = spec("k", &o);
        assert_eq!(s.description.as_deref(), Some("data"));
        assert_eq!(
            (s.key_spec, s.key_usage),
            (KeySpec::Rsa4096, KeyUsage::SignVerify)
        );
        assert!(s.multi_region);
        assert_eq!(
            (s.enable_key_rotation, s.rotation_period_in_days),
            (Some(true), Some(730))
        );
        assert_eq!(s.aliases, ["other"]);
        assert_eq!(s.deletion_window_in_days, 14);
        assert_eq!(s.enabled, Some(false));
        assert_eq!(s.tags, [("team".to_string(), "ml".to_string())].into());
        // KMS's default period is left to KMS.
        o.rotation = Some(RotationObserved {
            enabled: true,
            period_in_days: Some(365),
        });
        assert_eq!(spec("k", &o).rotation_period_in_days, None);
    }
}
