//! `KmsKey`: a customer managed KMS key, found by its alias.
//!
//! A KMS key has no name of its own: its id is chosen by KMS at creation. The manifest's
//! `metadata.name` is the key's alias without the `alias/` prefix: `metadata.name: mlspace-data`
//! is the key `alias/mlspace-data`, which mlspace-gitops creates with the key and always keeps.
//! `aliases` adds more.
//!
//! Besides the ownership tag, a key mlspace-gitops creates carries two tags of its own:
//! - [`NAME_TAG`] (`mlspace-gitops:name`), its manifest name. Creating a key takes two requests
//!   (CreateKey, then CreateAlias); the create step first looks for an owned key with this tag
//!   and takes it instead of creating another, so a crash between the two requests does not
//!   leave a second key behind, and a key that was scheduled for deletion comes back (with the
//!   data it encrypts) when its manifest does within the pending window;
//! - [`WINDOW_TAG`] (`mlspace-gitops:deletion-window-days`), its `deletionWindowInDays`: the key
//!   is deleted when its manifest is gone, so the window has to be kept on the key.
//!
//! Manifests cannot set either tag. Settings left out (`description`, `policy`,
//! `enableKeyRotation`, `enabled`) are not managed; `keySpec`, `keyUsage` and `multiRegion`
//! are fixed at creation, a change to them is a plan error. Pruning never deletes a key at once:
//! it schedules the deletion with the pending window and removes the key's aliases.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{check_policy, check_tags, Tags, OWNERSHIP_TAG};
use super::core::{DocKind, PlanCx};
use super::environment::EnvironmentView;
use super::Kind;
use crate::syntax::diag::DocCx;

/// Tag holding the manifest name of a key mlspace-gitops created (see the module docs).
pub const NAME_TAG: &str = "mlspace-gitops:name";
/// Tag holding the key's `deletionWindowInDays` (see the module docs).
pub const WINDOW_TAG: &str = "mlspace-gitops:deletion-window-days";

/// KMS's limits on the pending deletion window, in days.
pub const DELETION_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
/// The pending window when the manifest (or the key's [`WINDOW_TAG`]) does not say: the longest.
pub const DEFAULT_DELETION_WINDOW_DAYS: u32 = 30;
/// KMS's limits on the automatic rotation period, in days.
pub const ROTATION_PERIOD_DAYS: std::ops::RangeInclusive<u32> = 90..=2560;
/// KMS quota: key policy size in bytes (as sent: compact JSON).
pub const MAX_KEY_POLICY_BYTES: usize = 32_768;
/// KMS quota: description length.
pub const MAX_DESCRIPTION_LEN: usize = 8192;
/// Alias names are at most 256 characters with the `alias/` prefix.
pub const MAX_ALIAS_NAME_LEN: usize = 256 - "alias/".len();

/// Spec of the `KmsKey` kind. `metadata.name` is the key's alias without `alias/`. Optional
/// settings left out are not managed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KmsKeySpec {
    /// Description of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The key policy, inline as YAML or JSON. At most one of `policy` and `policyFile`; with
    /// neither, the policy is not managed (a new key gets KMS's default key policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    /// Path of a JSON file with the key policy, relative to this manifest file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<String>,
    /// Key type, `SYMMETRIC_DEFAULT` by default. Cannot change after creation.
    #[serde(default, skip_serializing_if = "KeySpec::is_default")]
    pub key_spec: KeySpec,
    /// What the key is used for, `ENCRYPT_DECRYPT` by default. Cannot change after creation.
    #[serde(default, skip_serializing_if = "KeyUsage::is_default")]
    pub key_usage: KeyUsage,
    /// Whether the key is a multi-Region primary key, `false` by default. Cannot change after creation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multi_region: bool,
    /// Automatic rotation of the key material on or off (symmetric keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_key_rotation: Option<bool>,
    /// Days between automatic rotations, 90 to 2560 (KMS's default is 365); only with
    /// `enableKeyRotation: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u32>,
    /// More aliases of the key, written without `alias/`. Aliases of the key not listed here
    /// (other than `metadata.name`) are removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Days between pruning and the key's deletion, 7 to 30 (default 30): prune schedules the
    /// deletion, never deletes at once.
    #[serde(
        default = "default_deletion_window",
        skip_serializing_if = "is_default_deletion_window"
    )]
    pub deletion_window_in_days: u32,
    /// Whether the key is enabled (usable) or disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Tags of this key (added to the Environment's tags).
    #[serde(default)]
    pub tags: Tags,
}

fn default_deletion_window() -> u32 {
    DEFAULT_DELETION_WINDOW_DAYS
}

fn is_default_deletion_window(d: &u32) -> bool {
    *d == DEFAULT_DELETION_WINDOW_DAYS
}

/// Key types (`KeySpec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KeySpec {
    /// A symmetric AES-256 encryption key.
    #[default]
    #[serde(rename = "SYMMETRIC_DEFAULT")]
    SymmetricDefault,
    /// RSA, 2048 bits.
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[serde(rename = "RSA_3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[serde(rename = "RSA_4096")]
    Rsa4096,
    /// Elliptic curve NIST P-256.
    #[serde(rename = "ECC_NIST_P256")]
    EccNistP256,
    /// Elliptic curve NIST P-384.
    #[serde(rename = "ECC_NIST_P384")]
    EccNistP384,
    /// Elliptic curve NIST P-521.
    #[serde(rename = "ECC_NIST_P521")]
    EccNistP521,
    /// Elliptic curve secp256k1.
    #[serde(rename = "ECC_SECG_P256K1")]
    EccSecgP256k1,
    /// HMAC with SHA-224.
    #[serde(rename = "HMAC_224")]
    Hmac224,
    /// HMAC with SHA-256.
    #[serde(rename = "HMAC_256")]
    Hmac256,
    /// HMAC with SHA-384.
    #[serde(rename = "HMAC_384")]
    Hmac384,
    /// HMAC with SHA-512.
    #[serde(rename = "HMAC_512")]
    Hmac512,
    /// SM2 (China Regions only).
    #[serde(rename = "SM2")]
    Sm2,
}

impl KeySpec {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SymmetricDefault => "SYMMETRIC_DEFAULT",
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::EccNistP256 => "ECC_NIST_P256",
            Self::EccNistP384 => "ECC_NIST_P384",
            Self::EccNistP521 => "ECC_NIST_P521",
            Self::EccSecgP256k1 => "ECC_SECG_P256K1",
            Self::Hmac224 => "HMAC_224",
            Self::Hmac256 => "HMAC_256",
            Self::Hmac384 => "HMAC_384",
            Self::Hmac512 => "HMAC_512",
            Self::Sm2 => "SM2",
        }
    }

    /// The spec KMS spells `s`.
    pub fn parse(s: &str) -> Option<KeySpec> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Every key spec.
    pub const ALL: [KeySpec; 13] = [
        Self::SymmetricDefault,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EccNistP256,
        Self::EccNistP384,
        Self::EccNistP521,
        Self::EccSecgP256k1,
        Self::Hmac224,
        Self::Hmac256,
        Self::Hmac384,
        Self::Hmac512,
        Self::Sm2,
    ];

    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The usages KMS allows for this key spec.
    pub fn usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            Self::SymmetricDefault => &[EncryptDecrypt],
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &[EncryptDecrypt, SignVerify],
            Self::EccNistP256 | Self::EccNistP384 | Self::EccNistP521 => {
                &[SignVerify, KeyAgreement]
            }
            Self::EccSecgP256k1 => &[SignVerify],
            Self::Hmac224 | Self::Hmac256 | Self::Hmac384 | Self::Hmac512 => &[GenerateVerifyMac],
            Self::Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
        }
    }
}

/// Key usages (`KeyUsage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyUsage {
    /// Encrypt and decrypt.
    #[default]
    EncryptDecrypt,
    /// Sign and verify.
    SignVerify,
    /// Generate and verify MACs (HMAC keys).
    GenerateVerifyMac,
    /// Derive shared secrets (elliptic curve and SM2 keys).
    KeyAgreement,
}

impl KeyUsage {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
            Self::SignVerify => "SIGN_VERIFY",
            Self::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            Self::KeyAgreement => "KEY_AGREEMENT",
        }
    }

    /// The usage KMS spells `s`.
    pub fn parse(s: &str) -> Option<KeyUsage> {
        [
            Self::EncryptDecrypt,
            Self::SignVerify,
            Self::GenerateVerifyMac,
            Self::KeyAgreement,
        ]
        .into_iter()
        .find(|u| u.as_str() == s)
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `alias/NAME` for an alias written without the prefix.
pub fn alias_name(name: &str) -> String {
    format!("alias/{name}")
}

/// Check an alias as written in a manifest (without `alias/`).
fn check_alias(cx: &mut DocCx, pointer: &str, alias: &str) {
    if let Some(rest) = alias.strip_prefix("alias/") {
        cx.error(
            pointer,
            format_args!("write the alias without `alias/` (`{rest}`); mlspace-gitops adds it"),
        );
        return;
    }
    if alias.is_empty() || alias.len() > MAX_ALIAS_NAME_LEN {
        cx.error(
            pointer,
            format_args!(
                "alias must be 1 to {MAX_ALIAS_NAME_LEN} characters, got {}",
                alias.len()
            ),
        );
    }
    if let Some(c) = alias
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_-".contains(*c)))
    {
        cx.error(
            pointer,
            format_args!(
                "alias `{alias}` has the character `{c}`; KMS allows letters, digits and /_-"
            ),
        );
    }
    if alias.to_ascii_lowercase().starts_with("aws/") {
        cx.error(
            pointer,
            format_args!("alias `{alias}`: the prefix `aws/` is reserved for AWS managed keys"),
        );
    }
}

impl KmsKeySpec {
    /// Check the alias names, the key type, rotation, the deletion window, the policy and tags.
    pub fn validate(&self, name: &str, cx: &mut DocCx, env_tags: &Tags) {
        check_alias(cx, "/metadata/name", name);
        let mut seen = std::collections::BTreeSet::from([name]);
        for (i, a) in self.aliases.iter().enumerate() {
            let p = format!("/spec/aliases/{i}");
            check_alias(cx, &p, a);
            if !seen.insert(a.as_str()) {
                let why = if a == name {
                    "is metadata.name, which is always an alias of the key"
                } else {
                    "is listed twice"
                };
                cx.error(&p, format_args!("alias `{a}` {why}"));
            }
        }
        if !self.key_spec.usages().contains(&self.key_usage) {
            let allowed: Vec<&str> = self.key_spec.usages().iter().map(|u| u.as_str()).collect();
            cx.error(
                "/spec/keyUsage",
                format_args!(
                    "keySpec {} cannot be used for {}; KMS allows {}",
                    self.key_spec.as_str(),
                    self.key_usage.as_str(),
                    allowed.join(" or ")
                ),
            );
        }
        if self.enable_key_rotation == Some(true) && self.key_spec != KeySpec::SymmetricDefault {
            cx.error(
                "/spec/enableKeyRotation",
                format_args!(
                    "KMS rotates only SYMMETRIC_DEFAULT keys automatically, not {}",
                    self.key_spec.as_str()
                ),
            );
        }
        if let Some(days) = self.rotation_period_in_days {
            if self.enable_key_rotation != Some(true) {
                cx.error(
                    "/spec/rotationPeriodInDays",
                    "only allowed with enableKeyRotation: true",
                );
            }
            if !ROTATION_PERIOD_DAYS.contains(&days) {
                cx.error(
                    "/spec/rotationPeriodInDays",
                    format_args!(
                        "must be {} to {} days, got {days}",
                        ROTATION_PERIOD_DAYS.start(),
                        ROTATION_PERIOD_DAYS.end()
                    ),
                );
            }
        }
        if !DELETION_WINDOW_DAYS.contains(&self.deletion_window_in_days) {
            cx.error(
                "/spec/deletionWindowInDays",
                format_args!(
                    "must be {} to {} days, got {}",
                    DELETION_WINDOW_DAYS.start(),
                    DELETION_WINDOW_DAYS.end(),
                    self.deletion_window_in_days
                ),
            );
        }
        if let Some(d) = &self.description {
            if d.chars().count() > MAX_DESCRIPTION_LEN {
                cx.error(
                    "/spec/description",
                    format_args!("description must be at most {MAX_DESCRIPTION_LEN} characters"),
                );
            }
        }
        if let Some(doc) = &self.policy {
            check_policy(
                cx,
                "/spec/policy",
                doc,
                mlspace_policy::PolicyKind::KeyPolicy,
            );
            let len = serde_json::to_string(doc).map_or(0, |s| s.len());
            if len > MAX_KEY_POLICY_BYTES {
                cx.error(
                    "/spec/policy",
                    format_args!(
                        "key policy is {len} bytes without white space; KMS allows {MAX_KEY_POLICY_BYTES}"
                    ),
                );
            }
        }
        for k in [NAME_TAG, WINDOW_TAG] {
            if self.tags.contains_key(k) {
                let p = format!("/spec/tags/{}", crate::syntax::yaml::escape_segment(k));
                cx.key_error(
                    &p,
                    format_args!("tag key `{k}` is reserved for mlspace-gitops"),
                );
            }
        }
        // The two tags of our own count towards KMS's 50 like the ownership tag does.
        let mut counted = env_tags.clone();
        for k in [NAME_TAG, WINDOW_TAG] {
            counted.insert(k.to_string(), String::new());
        }
        check_tags(cx, "/spec/tags", &self.tags, &counted);
    }

    /// Every tag the key should carry: its own (the Environment's merged in), the ownership
    /// tag, its name and its deletion window.
    pub fn desired_tags(&self, name: &str, cx: &PlanCx) -> Tags {
        let mut t = cx.desired_tags(&self.tags);
        t.insert(NAME_TAG.into(), name.into());
        t.insert(WINDOW_TAG.into(), self.deletion_window_in_days.to_string());
        t
    }

    /// The aliases the key should have, `metadata.name` first, each with `alias/`.
    pub fn alias_names(&self, name: &str) -> Vec<String> {
        std::iter::once(name)
            .chain(self.aliases.iter().map(String::as_str))
            .map(alias_name)
            .collect()
    }
}

/// The tags mlspace-gitops itself puts on a key, which a manifest neither writes nor imports.
pub const OWN_TAGS: [&str; 3] = [OWNERSHIP_TAG, NAME_TAG, WINDOW_TAG];

impl DocKind for KmsKey {
    const KIND: Kind = Kind::KmsKey;
    type Spec = KmsKeySpec;
    const FILE_FIELDS: &'static [(&'static str, &'static str)] = &[("policyFile", "policy")];

    fn validate(name: &str, spec: &KmsKeySpec, cx: &mut DocCx, env: &EnvironmentView) {
        spec.validate(name, cx, &env.tags);
    }

    fn tags_mut(spec: &mut KmsKeySpec) -> Option<&mut Tags> {
        Some(&mut spec.tags)
    }
}

#[cfg(feature = "runtime")]
pub mod aws;
pub mod diff;
pub mod import;
pub use diff::{KmsKey, KmsKeyObserved, Op};
