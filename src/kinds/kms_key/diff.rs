//! KmsKey: the pure half. Compares a [`KmsKeySpec`] with what KMS reports and plans the steps
//! that close the gap: CancelKeyDeletion, EnableKey/DisableKey, TagResource/UntagResource,
//! UpdateKeyDescription, PutKeyPolicy, EnableKeyRotation/DisableKeyRotation,
//! CreateAlias/DeleteAlias.
//!
//! - Settings the manifest leaves out are not managed. Aliases and tags are always managed:
//!   an alias or tag the manifest does not list is removed (`aws:` tags excepted).
//! - The key policy is compared as IAM evaluates it, and a change shows the statements
//!   removed and added, as for IAM policies.
//! - `keySpec`, `keyUsage` and `multiRegion` are fixed when a key is created: a change is a
//!   [`PlanError`] naming the field, never a new key (that would lose what the old key
//!   encrypts).
//! - A rotation period KMS does not report is unknown, not drift.
//! - A key pending deletion whose manifest is there is cancelled first, then enabled (unless
//!   the manifest says `enabled: false`): every other step needs a key that is not pending
//!   deletion. Disabling comes last, after the steps a disabled key would refuse.
//! - Steps name the key by its id. The steps that follow a create name no key: they run on
//!   the key the manifest's alias names by then.
//!
//! Pruning (`delete`) schedules the deletion with the key's pending window (its
//! [`WINDOW_TAG`], else [`DEFAULT_DELETION_WINDOW_DAYS`]) and removes its aliases; `release`
//! (the `retain` policy) removes the tags mlspace-gitops put on it and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    alias_name, KeySpec, KeyUsage, KmsKeySpec, DEFAULT_DELETION_WINDOW_DAYS, DELETION_WINDOW_DAYS,
    NAME_TAG, OWN_TAGS, WINDOW_TAG,
};
use crate::kinds::common::{settable_tags, Tags};
use crate::kinds::core::{
    has_ownership_tag, Diff, HeldAs, HeldDocument, Holdings, KindPlan, Place, PlanCx, PlanError,
    ResourceId, Scope,
};
use crate::kinds::iam::{document_change, tag_changes, tag_fields};
use crate::kinds::{FieldChange, Kind};

/// The KmsKey kind.
pub struct KmsKey;

/// The key id a reference to a key not created yet stands for while documents naming it are
/// checked (`{ref:KmsKey/NAME.id}`, and in the key's `arn`): shaped like a real one.
pub const STAND_IN_KEY_ID: &str = "00000000-0000-0000-0000-000000000000";

/// `KeyState` values the plan tells apart.
pub mod state {
    /// Usable.
    pub const ENABLED: &str = "Enabled";
    /// Not usable until enabled.
    pub const DISABLED: &str = "Disabled";
    /// Scheduled for deletion; cancelling leaves it disabled.
    pub const PENDING_DELETION: &str = "PendingDeletion";
}

/// A key as KMS reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsKeyObserved {
    /// Key id (`1234abcd-...`, `mrk-...` for multi-Region keys).
    pub key_id: String,
    /// Key ARN.
    pub arn: String,
    /// `KeyState`: `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub key_state: String,
    /// When a key pending deletion will be deleted (RFC 3339), as KMS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
    /// Description (empty when never set).
    pub description: String,
    /// The key policy (`default`), decoded; `None` when not read. A policy that does not
    /// parse is kept as its text.
    pub policy: Option<Value>,
    /// `KeySpec` as KMS spells it.
    pub key_spec: String,
    /// `KeyUsage` as KMS spells it.
    pub key_usage: String,
    /// Whether it is a multi-Region key.
    pub multi_region: bool,
    /// Automatic rotation; `None` when not read.
    pub rotation: Option<RotationObserved>,
    /// Every alias of the key, without `alias/`.
    pub aliases: BTreeSet<String>,
    /// Tags.
    pub tags: Tags,
}

/// Automatic rotation as GetKeyRotationStatus reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationObserved {
    /// Whether automatic rotation is on.
    pub enabled: bool,
    /// Days between rotations; `None` when not reported (unknown, not drift).
    pub period_in_days: Option<u32>,
}

/// What CreateKey sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Key policy (KMS's default policy when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    /// Key spec.
    pub key_spec: KeySpec,
    /// Key usage.
    pub key_usage: KeyUsage,
    /// Multi-Region primary key.
    pub multi_region: bool,
    /// Every tag, the ownership, name and window tags included.
    pub tags: Tags,
    /// The manifest's other aliases (without `alias/`): a key found by its name tag is
    /// taken only when it has no alias outside these and the manifest name.
    pub aliases: Vec<String>,
    /// Whether a key found pending deletion is enabled once cancelled.
    pub enable: bool,
}

/// One step. Each is idempotent: run twice, it leaves the same state. `key_id: None` names
/// the key that the manifest's alias (`alias/NAME`) names when the step runs: the key a
/// create step of the same change made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Find the owned key tagged with the manifest name (a crash between CreateKey and
    /// CreateAlias, or a pruned key whose manifest is back: cancelled and enabled), else
    /// CreateKey; then CreateAlias `alias/NAME`. An alias already naming an owned key is
    /// taken as an earlier attempt; one naming another key is a conflict.
    Create {
        /// The key.
        key: Box<NewKey>,
    },
    /// CancelKeyDeletion (the key is then disabled).
    CancelDeletion {
        /// Key id.
        key_id: String,
    },
    /// EnableKey.
    Enable {
        /// Key id.
        key_id: Option<String>,
    },
    /// DisableKey.
    Disable {
        /// Key id.
        key_id: Option<String>,
    },
    /// UpdateKeyDescription.
    UpdateDescription {
        /// Key id.
        key_id: String,
        /// The description.
        description: String,
    },
    /// PutKeyPolicy (`default`).
    PutPolicy {
        /// Key id.
        key_id: String,
        /// The key policy.
        policy: Value,
    },
    /// EnableKeyRotation, with the period when the manifest gives one.
    EnableRotation {
        /// Key id.
        key_id: Option<String>,
        /// Days between rotations.
        period_in_days: Option<u32>,
    },
    /// DisableKeyRotation.
    DisableRotation {
        /// Key id.
        key_id: String,
    },
    /// CreateAlias (an alias already naming this key is done; another key's is a conflict).
    CreateAlias {
        /// Key id.
        key_id: Option<String>,
        /// Alias, without `alias/`.
        alias: String,
    },
    /// DeleteAlias, when the alias still names this key (one moved to another key since is
    /// left to it).
    DeleteAlias {
        /// Key id.
        key_id: String,
        /// Alias, without `alias/`.
        alias: String,
    },
    /// TagResource.
    Tag {
        /// Key id.
        key_id: String,
        /// Tags to set.
        tags: Tags,
    },
    /// UntagResource.
    Untag {
        /// Key id.
        key_id: String,
        /// Keys to remove.
        keys: Vec<String>,
    },
    /// ScheduleKeyDeletion with the pending window (nothing when already pending).
    ScheduleDeletion {
        /// Key id.
        key_id: String,
        /// Days until KMS deletes the key.
        window_in_days: u32,
    },
}

impl KmsKeyObserved {
    /// Whether KMS has scheduled the key's deletion.
    pub fn pending_deletion(&self) -> bool {
        self.key_state == state::PENDING_DELETION
    }

    /// The pending window its [`WINDOW_TAG`] names, else the default (the longest).
    pub fn deletion_window(&self) -> u32 {
        self.tags
            .get(WINDOW_TAG)
            .and_then(|v| v.parse().ok())
            .filter(|d| DELETION_WINDOW_DAYS.contains(d))
            .unwrap_or(DEFAULT_DELETION_WINDOW_DAYS)
    }
}

impl KindPlan for KmsKey {
    type Observed = KmsKeyObserved;
    type Op = Op;

    // Aliases are per account and region.
    const SCOPE: Scope = Scope::Region;

    const IGNORABLE_FIELDS: &'static [&'static str] = &[
        "description",
        "policy",
        "enableKeyRotation",
        "aliases",
        "enabled",
        "tags",
    ];

    fn keep_observed(spec: &mut KmsKeySpec, o: &KmsKeyObserved, field: &str) {
        match field {
            "description" => spec.description = Some(o.description.clone()),
            // Not read (no policy to compare with) is not managed either.
            "policy" => spec.policy = o.policy.clone(),
            "enableKeyRotation" => {
                spec.enable_key_rotation = None;
                spec.rotation_period_in_days = None;
            }
            "aliases" => spec.aliases = o.aliases.iter().cloned().collect(),
            "enabled" => spec.enabled = None,
            "tags" => spec.tags = settable_tags(&o.tags),
            _ => {}
        }
    }

    /// Unknown until KMS creates the key (its id is KMS's choice).
    fn arn(_: &str, _: &KmsKeySpec, _: Place) -> Option<String> {
        None
    }

    fn observed_arn(o: &KmsKeyObserved) -> Option<String> {
        Some(o.arn.clone())
    }

    /// Events name a key by its aliases (its name and `aliases`); by key id or ARN only
    /// once AWS has given it one (the observed ARN).
    fn event_objects(name: &str, spec: &KmsKeySpec) -> Vec<crate::kinds::AwsObject> {
        std::iter::once(name)
            .chain(spec.aliases.iter().map(String::as_str))
            .map(|a| crate::kinds::AwsObject::KmsAlias(a.to_string()))
            .collect()
    }

    // `id`: the key id KMS assigned, which is what most services take.
    const ATTRIBUTES: &'static [&'static str] = &["arn", "name", "id"];

    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!(
                "arn:{}:kms:{}:{}:key/{STAND_IN_KEY_ID}",
                at.partition, at.region, at.account
            )),
            "id" => Some(STAND_IN_KEY_ID.to_string()),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn observed_attribute(name: &str, o: &KmsKeyObserved, attribute: &str) -> Option<String> {
        match attribute {
            "arn" => Some(o.arn.clone()),
            "id" => Some(o.key_id.clone()),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn observed_tags(o: &KmsKeyObserved) -> Option<&Tags> {
        Some(&o.tags)
    }

    fn holdings(spec: &KmsKeySpec) -> Holdings<'_> {
        key_holdings(spec.policy.as_ref())
    }

    /// A policy that did not parse (kept as its text) holds no statement to read.
    fn observed_holdings(o: &KmsKeyObserved) -> Holdings<'_> {
        key_holdings(o.policy.as_ref().filter(|p| p.is_object()))
    }

    /// Roles of the manifests that the key policy names as principals: KMS refuses a policy
    /// naming a principal that does not exist.
    fn depends_on(_: &str, spec: &KmsKeySpec, cx: &PlanCx) -> Vec<ResourceId> {
        let mut arns = Vec::new();
        if let Some(p) = &spec.policy {
            principal_arns(p, &mut arns);
        }
        let deps: BTreeSet<ResourceId> = arns
            .iter()
            .filter_map(|a| cx.named_by_arn(Kind::Role, a))
            .map(|n| (Kind::Role, n.to_string()))
            .collect();
        deps.into_iter().collect()
    }

    fn is_owned(o: &KmsKeyObserved) -> bool {
        has_ownership_tag(&o.tags)
    }

    fn create(name: &str, spec: &KmsKeySpec, cx: &PlanCx) -> Diff<Op> {
        let mut fields = Vec::new();
        let mut add = |f: &str, v: Value| fields.push(FieldChange::new(f, None, Some(v)));
        add("metadata.name", json!(alias_name(name)));
        if let Some(d) = &spec.description {
            add("spec.description", json!(d));
        }
        if let Some(p) = &spec.policy {
            add("spec.policy", p.clone());
        }
        add("spec.keySpec", json!(spec.key_spec.as_str()));
        add("spec.keyUsage", json!(spec.key_usage.as_str()));
        if spec.multi_region {
            add("spec.multiRegion", json!(true));
        }
        if let Some(r) = spec.enable_key_rotation {
            add("spec.enableKeyRotation", json!(r));
        }
        if let Some(p) = spec.rotation_period_in_days {
            add("spec.rotationPeriodInDays", json!(p));
        }
        if !spec.aliases.is_empty() {
            add("spec.aliases", json!(spec.aliases));
        }
        add(
            "spec.deletionWindowInDays",
            json!(spec.deletion_window_in_days),
        );
        if let Some(e) = spec.enabled {
            add("spec.enabled", json!(e));
        }
        fields.extend(tag_fields(&spec.tags));

        let mut ops = vec![Op::Create {
            key: Box::new(NewKey {
                description: spec.description.clone(),
                policy: spec.policy.clone(),
                key_spec: spec.key_spec,
                key_usage: spec.key_usage,
                multi_region: spec.multi_region,
                tags: spec.desired_tags(name, cx),
                aliases: spec.aliases.clone(),
                enable: spec.enabled != Some(false),
            }),
        }];
        ops.extend(spec.aliases.iter().map(|a| Op::CreateAlias {
            key_id: None,
            alias: a.clone(),
        }));
        // A new key has rotation off.
        if spec.enable_key_rotation == Some(true) {
            ops.push(Op::EnableRotation {
                key_id: None,
                period_in_days: spec.rotation_period_in_days,
            });
        }
        if spec.enabled == Some(false) {
            ops.push(Op::Disable { key_id: None });
        }
        (fields, ops)
    }

    fn update(
        name: &str,
        spec: &KmsKeySpec,
        o: &KmsKeyObserved,
        cx: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        let errors = fixed_at_creation(name, spec, o);
        if !errors.is_empty() {
            return Err(errors);
        }
        let id = || o.key_id.clone();
        let mut fields = Vec::new();
        let mut ops = Vec::new();

        // Back in the manifests while pending deletion: cancel first, every other step needs it.
        let mut state = o.key_state.as_str();
        if o.pending_deletion() {
            let want = if spec.enabled == Some(false) {
                state::DISABLED
            } else {
                state::ENABLED
            };
            let mut old = json!(state::PENDING_DELETION);
            if let Some(d) = &o.deletion_date {
                old = json!(format!("{} (deletion on {d})", state::PENDING_DELETION));
            }
            fields.push(FieldChange::new("keyState", Some(old), Some(json!(want))));
            ops.push(Op::CancelDeletion { key_id: id() });
            state = state::DISABLED;
            if want == state::ENABLED {
                ops.push(Op::Enable { key_id: Some(id()) });
                state = state::ENABLED;
            }
        } else if spec.enabled == Some(true) && state == state::DISABLED {
            fields.push(FieldChange::new(
                "spec.enabled",
                Some(json!(false)),
                Some(json!(true)),
            ));
            ops.push(Op::Enable { key_id: Some(id()) });
        }

        // Tags next: an adopted key is marked as ours before anything else changes. The
        // window tag is shown as the field it keeps.
        let (tag_fields, set, remove) = {
            let want = spec.desired_tags(name, cx);
            let have = cx.managed_tags(&o.tags, &want);
            tag_changes(&want, &have)
        };
        for f in tag_fields {
            if f.field == format!("spec.tags.{WINDOW_TAG}") {
                let days = |v: Option<Value>| -> Option<Value> {
                    v.map(|v| match v.as_str().and_then(|s| s.parse::<u64>().ok()) {
                        Some(n) => json!(n),
                        None => v,
                    })
                };
                fields.push(FieldChange::new(
                    "spec.deletionWindowInDays",
                    days(f.old),
                    days(f.new),
                ));
            } else {
                fields.push(f);
            }
        }
        if !set.is_empty() {
            ops.push(Op::Tag {
                key_id: id(),
                tags: set,
            });
        }
        if !remove.is_empty() {
            ops.push(Op::Untag {
                key_id: id(),
                keys: remove,
            });
        }

        if let Some(d) = &spec.description {
            if *d != o.description {
                fields.push(FieldChange::new(
                    "spec.description",
                    Some(json!(o.description)),
                    Some(json!(d)),
                ));
                ops.push(Op::UpdateDescription {
                    key_id: id(),
                    description: d.clone(),
                });
            }
        }
        if let (Some(want), Some(have)) = (&spec.policy, &o.policy) {
            if let Some(f) = document_change("spec.policy", want, have) {
                fields.push(f);
                ops.push(Op::PutPolicy {
                    key_id: id(),
                    policy: want.clone(),
                });
            }
        }

        if let (Some(want), Some(have)) = (spec.enable_key_rotation, &o.rotation) {
            if want != have.enabled {
                fields.push(FieldChange::new(
                    "spec.enableKeyRotation",
                    Some(json!(have.enabled)),
                    Some(json!(want)),
                ));
            }
            // A period KMS does not report is unknown: not drift.
            let period_differs = want
                && matches!(
                    (spec.rotation_period_in_days, have.period_in_days),
                    (Some(w), Some(h)) if w != h
                );
            if period_differs {
                fields.push(FieldChange::new(
                    "spec.rotationPeriodInDays",
                    have.period_in_days.map(|p| json!(p)),
                    spec.rotation_period_in_days.map(|p| json!(p)),
                ));
            }
            if want && (!have.enabled || period_differs) {
                ops.push(Op::EnableRotation {
                    key_id: Some(id()),
                    period_in_days: spec.rotation_period_in_days,
                });
            } else if !want && have.enabled {
                ops.push(Op::DisableRotation { key_id: id() });
            }
        }

        // Aliases: `metadata.name` is how the key was found, so it is there (and an ignored
        // `aliases` field copies it in with the others).
        let want: BTreeSet<&str> = spec
            .aliases
            .iter()
            .map(String::as_str)
            .filter(|a| *a != name)
            .collect();
        let have: BTreeSet<&str> = o
            .aliases
            .iter()
            .map(String::as_str)
            .filter(|a| *a != name)
            .collect();
        if want != have {
            fields.push(FieldChange::new(
                "spec.aliases",
                Some(json!(have)),
                Some(json!(want)),
            ));
            for a in want.difference(&have) {
                ops.push(Op::CreateAlias {
                    key_id: Some(id()),
                    alias: a.to_string(),
                });
            }
            for a in have.difference(&want) {
                ops.push(Op::DeleteAlias {
                    key_id: id(),
                    alias: a.to_string(),
                });
            }
        }

        if spec.enabled == Some(false) && state == state::ENABLED {
            fields.push(FieldChange::new(
                "spec.enabled",
                Some(json!(true)),
                Some(json!(false)),
            ));
            ops.push(Op::Disable { key_id: Some(id()) });
        }
        Ok((fields, ops))
    }

    fn delete(_: &str, o: &KmsKeyObserved) -> Vec<Op> {
        let mut ops = vec![Op::ScheduleDeletion {
            key_id: o.key_id.clone(),
            window_in_days: o.deletion_window(),
        }];
        // After the schedule: a key whose aliases are gone is no longer found, so a crash
        // in between must leave it scheduled rather than lost.
        ops.extend(o.aliases.iter().map(|a| Op::DeleteAlias {
            key_id: o.key_id.clone(),
            alias: a.clone(),
        }));
        ops
    }

    fn release(_: &str, o: &KmsKeyObserved) -> Vec<Op> {
        let keys: Vec<String> = OWN_TAGS
            .iter()
            .filter(|k| o.tags.contains_key(**k))
            .map(|k| k.to_string())
            .collect();
        if keys.is_empty() {
            return Vec::new();
        }
        vec![Op::Untag {
            key_id: o.key_id.clone(),
            keys,
        }]
    }
}

/// The key policy, as access analysis reads it: who may use the key.
fn key_holdings(policy: Option<&Value>) -> Holdings<'_> {
    Holdings {
        documents: policy
            .map(|document| HeldDocument {
                label: "key policy".into(),
                pointer: "/spec/policy".into(),
                held_as: HeldAs::Resource,
                policy_kind: mlspace_policy::PolicyKind::KeyPolicy,
                document,
            })
            .into_iter()
            .collect(),
        ..Holdings::default()
    }
}

/// Key spec, usage and multi-Region: what KMS fixes when it creates a key.
fn fixed_at_creation(name: &str, spec: &KmsKeySpec, o: &KmsKeyObserved) -> Vec<PlanError> {
    let mut errors = Vec::new();
    let mut fixed = |field: &str, what: &str, have: &str, want: &str| {
        if have != want {
            errors.push(PlanError::new(
                Kind::KmsKey,
                name,
                field,
                format!(
                    "KMS cannot change a key's {what} (AWS has {have}, the manifest wants \
                     {want}); create a new key under another name and move to it"
                ),
            ));
        }
    };
    fixed(
        "spec.keySpec",
        "key spec",
        &o.key_spec,
        spec.key_spec.as_str(),
    );
    fixed(
        "spec.keyUsage",
        "key usage",
        &o.key_usage,
        spec.key_usage.as_str(),
    );
    let mr = |b: bool| if b { "true" } else { "false" };
    fixed(
        "spec.multiRegion",
        "multi-Region setting",
        mr(o.multi_region),
        mr(spec.multi_region),
    );
    errors
}

/// The ARNs among the `AWS` principals of a policy's statements.
fn principal_arns(policy: &Value, out: &mut Vec<String>) {
    let stmts = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one) => vec![one],
        None => vec![],
    };
    for s in stmts {
        for key in ["Principal", "NotPrincipal"] {
            match s.get(key).and_then(|p| p.get("AWS")) {
                Some(Value::String(a)) => out.push(a.clone()),
                Some(Value::Array(a)) => {
                    out.extend(a.iter().filter_map(Value::as_str).map(str::to_string))
                }
                _ => {}
            }
        }
    }
}

/// Tags as a manifest writes them: without the tags mlspace-gitops puts on a key.
pub fn manifest_tags(tags: &Tags) -> Tags {
    tags.iter()
        .filter(|(k, _)| !OWN_TAGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Keys tagged with the manifest name `name` among `tags` of several keys (for the create
/// step's search): the ids of the owned ones.
pub fn owned_keys_named<'a>(
    name: &str,
    tags: impl IntoIterator<Item = (&'a String, &'a Tags)>,
) -> Vec<String> {
    let mut found: Vec<String> = tags
        .into_iter()
        .filter(|(_, t)| has_ownership_tag(t) && t.get(NAME_TAG).map(String::as_str) == Some(name))
        .map(|(id, _)| id.clone())
        .collect();
    found.sort();
    found
}

/// Whether a key with the aliases `has` (without `alias/`) may be the key of the manifest
/// `name` with the other aliases `wanted`: it has no alias the manifest does not list.
pub fn aliases_fit(name: &str, wanted: &[String], has: &BTreeSet<String>) -> bool {
    has.iter().all(|a| a == name || wanted.contains(a))
}

/// Aliases grouped by the key they name (for observing): key id → aliases without `alias/`.
pub fn aliases_by_key<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (alias, key) in entries {
        if let Some(a) = alias.strip_prefix("alias/") {
            by_key
                .entry(key.to_string())
                .or_default()
                .insert(a.to_string());
        }
    }
    by_key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};

    fn cx() -> PlanCx {
        let mut cx = PlanCx {
            partition: "aws".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            ..PlanCx::default()
        };
        cx.declare(
            Kind::Role,
            "mlspace-app-role",
            Some("arn:aws:iam::123456789012:role/mlspace-app-role".into()),
        );
        cx
    }

    fn policy(principal: &str) -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": [principal]},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"}
        ]})
    }

    /// Every optional setting given.
    fn spec() -> KmsKeySpec {
        KmsKeySpec {
            description: Some("MLSpace data".into()),
            policy: Some(policy("arn:aws:iam::123456789012:role/mlspace-app-role")),
            policy_file: None,
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            multi_region: false,
            enable_key_rotation: Some(true),
            rotation_period_in_days: Some(180),
            aliases: vec!["mlspace-extra".into()],
            deletion_window_in_days: 7,
            enabled: Some(true),
            tags: [("team".to_string(), "ml".to_string())].into(),
        }
    }

    /// What KMS reports after the create steps ran.
    fn as_created(spec: &KmsKeySpec) -> KmsKeyObserved {
        KmsKeyObserved {
            key_id: "k1".into(),
            arn: "arn:aws:kms:us-east-1:123456789012:key/k1".into(),
            key_state: state::ENABLED.into(),
            deletion_date: None,
            description: spec.description.clone().unwrap_or_default(),
            policy: spec.policy.clone(),
            key_spec: spec.key_spec.as_str().into(),
            key_usage: spec.key_usage.as_str().into(),
            multi_region: spec.multi_region,
            rotation: Some(RotationObserved {
                enabled: spec.enable_key_rotation == Some(true),
                period_in_days: spec.rotation_period_in_days,
            }),
            aliases: std::iter::once("k".to_string())
                .chain(spec.aliases.iter().cloned())
                .collect(),
            tags: spec.desired_tags("k", &cx()),
        }
    }

    fn fields(d: &Diff<Op>) -> Vec<&str> {
        d.0.iter().map(|f| f.field.as_str()).collect()
    }

    fn id() -> Option<String> {
        Some("k1".into())
    }

    #[test]
    fn create_makes_the_key_then_what_a_new_key_lacks() {
        let s = spec();
        let (f, ops) = KmsKey::create("k", &s, &cx());
        let names: Vec<&str> = f.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "metadata.name",
                "spec.description",
                "spec.policy",
                "spec.keySpec",
                "spec.keyUsage",
                "spec.enableKeyRotation",
                "spec.rotationPeriodInDays",
                "spec.aliases",
                "spec.deletionWindowInDays",
                "spec.enabled",
                "spec.tags.team"
            ]
        );
        assert_eq!(f[0].new, Some(json!("alias/k")));
        let Op::Create { key } = &ops[0] else {
            panic!("{ops:?}")
        };
        assert_eq!(key.tags[OWNERSHIP_TAG], OWNERSHIP_VALUE);
        assert_eq!(key.tags[NAME_TAG], "k");
        assert_eq!(key.tags[WINDOW_TAG], "7");
        assert_eq!(key.tags["team"], "ml");
        assert!(key.enable);
        assert_eq!(
            ops[1..],
            [
                Op::CreateAlias {
                    key_id: None,
                    alias: "mlspace-extra".into()
                },
                Op::EnableRotation {
                    key_id: None,
                    period_in_days: Some(180)
                }
            ]
        );
        // Observed back, nothing is left to do.
        assert_eq!(
            KmsKey::update("k", &s, &as_created(&s), &cx()).unwrap(),
            (vec![], vec![])
        );

        // A disabled key is disabled last; settings left out add no step.
        let mut d = KmsKeySpec {
            enabled: Some(false),
            ..minimal()
        };
        let (_, ops) = KmsKey::create("k", &d, &cx());
        assert!(matches!(
            &ops[..],
            [Op::Create { key }, Op::Disable { key_id: None }] if !key.enable
        ));
        d.enabled = None;
        assert_eq!(KmsKey::create("k", &d, &cx()).1.len(), 1);
    }

    fn minimal() -> KmsKeySpec {
        KmsKeySpec {
            description: None,
            policy: None,
            policy_file: None,
            key_spec: KeySpec::default(),
            key_usage: KeyUsage::default(),
            multi_region: false,
            enable_key_rotation: None,
            rotation_period_in_days: None,
            aliases: vec![],
            deletion_window_in_days: DEFAULT_DELETION_WINDOW_DAYS,
            enabled: None,
            tags: Tags::new(),
        }
    }

    #[test]
    fn settings_left_out_are_not_drift() {
        let m = minimal();
        let mut o = as_created(&spec());
        o.aliases = ["k".to_string()].into();
        o.tags = m.desired_tags("k", &cx());
        o.key_state = state::DISABLED.into();
        o.description = "by hand".into();
        assert_eq!(
            KmsKey::update("k", &m, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Settings not read are not compared.
        let s = spec();
        let mut o = as_created(&s);
        o.policy = None;
        o.rotation = None;
        assert_eq!(
            KmsKey::update("k", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn every_updatable_field_is_repaired() {
        let s = spec();
        let mut o = as_created(&s);
        o.description = "old".into();
        o.policy = Some(policy("arn:aws:iam::123456789012:role/other"));
        o.rotation = Some(RotationObserved {
            enabled: true,
            period_in_days: Some(365),
        });
        o.aliases = ["k".to_string(), "stale".to_string()].into();
        o.key_state = state::DISABLED.into();
        o.tags.insert("team".into(), "other".into());
        o.tags.insert("intruder".into(), "x".into());
        o.tags.insert(WINDOW_TAG.into(), "30".into());
        let d = KmsKey::update("k", &s, &o, &cx()).unwrap();
        assert_eq!(
            fields(&d),
            [
                "spec.enabled",
                "spec.tags.intruder",
                "spec.deletionWindowInDays",
                "spec.tags.team",
                "spec.description",
                "spec.policy",
                "spec.rotationPeriodInDays",
                "spec.aliases"
            ]
        );
        let window = &d.0[2];
        assert_eq!(
            (window.old.clone(), window.new.clone()),
            (Some(json!(30)), Some(json!(7)))
        );
        // The policy change shows statements, as for IAM policies.
        let p = &d.0[5];
        assert_eq!(p.old.as_ref().unwrap().as_array().unwrap().len(), 1);
        assert_eq!(
            d.1,
            [
                Op::Enable { key_id: id() },
                Op::Tag {
                    key_id: "k1".into(),
                    tags: [
                        ("team".to_string(), "ml".to_string()),
                        (WINDOW_TAG.to_string(), "7".to_string())
                    ]
                    .into()
                },
                Op::Untag {
                    key_id: "k1".into(),
                    keys: vec!["intruder".into()]
                },
                Op::UpdateDescription {
                    key_id: "k1".into(),
                    description: "MLSpace data".into()
                },
                Op::PutPolicy {
                    key_id: "k1".into(),
                    policy: s.policy.clone().unwrap()
                },
                Op::EnableRotation {
                    key_id: id(),
                    period_in_days: Some(180)
                },
                Op::CreateAlias {
                    key_id: id(),
                    alias: "mlspace-extra".into()
                },
                Op::DeleteAlias {
                    key_id: "k1".into(),
                    alias: "stale".into()
                },
            ]
        );
        // A policy written differently but evaluated the same is no change.
        let mut o = as_created(&s);
        let mut reordered = s.policy.clone().unwrap();
        reordered["Statement"][1]["Action"] = json!(["kms:GenerateDataKey", "kms:Decrypt"]);
        reordered["Statement"][1]["Principal"]["AWS"] =
            json!("arn:aws:iam::123456789012:role/mlspace-app-role");
        o.policy = Some(reordered);
        assert_eq!(
            KmsKey::update("k", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn rotation_on_and_off_and_an_unreported_period() {
        let s = spec();
        let mut o = as_created(&s);
        o.rotation = Some(RotationObserved {
            enabled: false,
            period_in_days: None,
        });
        let d = KmsKey::update("k", &s, &o, &cx()).unwrap();
        assert_eq!(fields(&d), ["spec.enableKeyRotation"]);
        assert_eq!(
            d.1,
            [Op::EnableRotation {
                key_id: id(),
                period_in_days: Some(180)
            }]
        );
        // On, period not reported (the emulator never reports it): unknown, not drift.
        o.rotation = Some(RotationObserved {
            enabled: true,
            period_in_days: None,
        });
        assert_eq!(
            KmsKey::update("k", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Off in the manifest.
        let mut off = spec();
        off.enable_key_rotation = Some(false);
        off.rotation_period_in_days = None;
        let d = KmsKey::update("k", &off, &o, &cx()).unwrap();
        assert_eq!(fields(&d), ["spec.enableKeyRotation"]);
        assert_eq!(
            d.1,
            [Op::DisableRotation {
                key_id: "k1".into()
            }]
        );
        // On without a period: KMS's period is kept.
        let mut any = spec();
        any.rotation_period_in_days = None;
        o.rotation = Some(RotationObserved {
            enabled: true,
            period_in_days: Some(365),
        });
        assert!(KmsKey::update("k", &any, &o, &cx()).unwrap().1.is_empty());
    }

    #[test]
    fn key_spec_usage_and_multi_region_changes_are_plan_errors() {
        let s = spec();
        let o = as_created(&s);
        let mut w = spec();
        w.key_spec = KeySpec::Rsa2048;
        w.key_usage = KeyUsage::SignVerify;
        w.multi_region = true;
        let errs = KmsKey::update("k", &w, &o, &cx()).unwrap_err();
        let got: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(got, ["spec.keySpec", "spec.keyUsage", "spec.multiRegion"]);
        assert!(errs.iter().all(|e| e.kind == Kind::KmsKey && e.name == "k"));
        assert!(errs[0].message.contains("RSA_2048"), "{}", errs[0].message);
    }

    #[test]
    fn a_key_pending_deletion_is_cancelled_and_enabled() {
        let s = spec();
        let mut o = as_created(&s);
        o.key_state = state::PENDING_DELETION.into();
        o.deletion_date = Some("2030-01-01T00:00:00Z".into());
        let d = KmsKey::update("k", &s, &o, &cx()).unwrap();
        assert_eq!(fields(&d), ["keyState"]);
        assert_eq!(
            d.0[0].old,
            Some(json!("PendingDeletion (deletion on 2030-01-01T00:00:00Z)"))
        );
        assert_eq!(d.0[0].new, Some(json!("Enabled")));
        assert_eq!(
            d.1,
            [
                Op::CancelDeletion {
                    key_id: "k1".into()
                },
                Op::Enable { key_id: id() }
            ]
        );
        // Unless the manifest wants it disabled: cancelling leaves it so.
        let mut off = spec();
        off.enabled = Some(false);
        let d = KmsKey::update("k", &off, &o, &cx()).unwrap();
        assert_eq!(d.0[0].new, Some(json!("Disabled")));
        assert_eq!(
            d.1,
            [Op::CancelDeletion {
                key_id: "k1".into()
            }]
        );
        // With `enabled` unmanaged it comes back enabled too.
        let mut any = spec();
        any.enabled = None;
        let d = KmsKey::update("k", &any, &o, &cx()).unwrap();
        assert_eq!(d.1.len(), 2);
    }

    #[test]
    fn disabling_comes_last() {
        let mut s = spec();
        s.enabled = Some(false);
        let mut o = as_created(&spec());
        o.rotation = Some(RotationObserved::default());
        let d = KmsKey::update("k", &s, &o, &cx()).unwrap();
        assert_eq!(fields(&d), ["spec.enableKeyRotation", "spec.enabled"]);
        assert!(matches!(
            &d.1[..],
            [Op::EnableRotation { .. }, Op::Disable { key_id: Some(_) }]
        ));
    }

    #[test]
    fn delete_schedules_with_the_window_then_removes_aliases() {
        let s = spec();
        let o = as_created(&s);
        assert_eq!(
            KmsKey::delete("k", &o),
            [
                Op::ScheduleDeletion {
                    key_id: "k1".into(),
                    window_in_days: 7
                },
                Op::DeleteAlias {
                    key_id: "k1".into(),
                    alias: "k".into()
                },
                Op::DeleteAlias {
                    key_id: "k1".into(),
                    alias: "mlspace-extra".into()
                }
            ]
        );
        // No window tag (an adopted key), or a wrong one: the longest window.
        let mut o2 = o.clone();
        o2.tags.remove(WINDOW_TAG);
        assert!(matches!(
            KmsKey::delete("k", &o2)[0],
            Op::ScheduleDeletion {
                window_in_days: 30,
                ..
            }
        ));
        o2.tags.insert(WINDOW_TAG.into(), "1".into());
        assert_eq!(o2.deletion_window(), 30);
        // Nothing deletes at once: the only deleting step is the schedule.
        assert_eq!(KmsKey::force_delete("k", &o), KmsKey::delete("k", &o));
    }

    #[test]
    fn release_removes_only_the_tags_of_mlspace_gitops() {
        let o = as_created(&spec());
        assert_eq!(
            KmsKey::release("k", &o),
            [Op::Untag {
                key_id: "k1".into(),
                keys: vec![OWNERSHIP_TAG.into(), NAME_TAG.into(), WINDOW_TAG.into()]
            }]
        );
        let mut bare = o.clone();
        bare.tags = manifest_tags(&o.tags);
        assert!(KmsKey::release("k", &bare).is_empty());
    }

    #[test]
    fn ownership_adoption_and_arns() {
        let s = spec();
        let mut o = as_created(&s);
        assert!(KmsKey::is_owned(&o));
        o.tags.remove(OWNERSHIP_TAG);
        o.tags.remove(NAME_TAG);
        assert!(!KmsKey::is_owned(&o));
        // Adopted: the tags of mlspace-gitops come first.
        let d = KmsKey::update("k", &s, &o, &cx()).unwrap();
        assert!(matches!(&d.1[..], [Op::Tag { tags, .. }] if tags.len() == 2));
        assert_eq!(KmsKey::arn("k", &s, cx().place()), None);
        assert_eq!(KmsKey::observed_arn(&o).unwrap(), o.arn);
        // References: the ARN and id once KMS has them, shaped stand-ins before.
        assert_eq!(
            KmsKey::observed_attribute("k", &o, "arn"),
            Some(o.arn.clone())
        );
        assert_eq!(
            KmsKey::observed_attribute("k", &o, "id").as_deref(),
            Some("k1")
        );
        assert_eq!(
            KmsKey::stand_in("k", "arn", cx().place()).unwrap(),
            format!("arn:aws:kms:us-east-1:123456789012:key/{STAND_IN_KEY_ID}")
        );
        for a in KmsKey::ATTRIBUTES {
            assert!(KmsKey::stand_in("k", a, cx().place()).is_some(), "{a}");
            assert!(KmsKey::observed_attribute("k", &o, a).is_some(), "{a}");
        }
        assert_eq!(KmsKey::observed_tags(&o), Some(&o.tags));
        // The key policy is held as a resource policy, on both sides.
        let h = KmsKey::holdings(&s);
        assert_eq!(h.documents.len(), 1);
        assert_eq!(h.documents[0].held_as, HeldAs::Resource);
        assert_eq!(h.documents[0].pointer, "/spec/policy");
        assert_eq!(KmsKey::observed_holdings(&o).documents.len(), 1);
        let mut unread = o.clone();
        unread.policy = None;
        assert!(KmsKey::observed_holdings(&unread).documents.is_empty());
        assert_eq!(
            KmsKey::depends_on("k", &s, &cx()),
            [(Kind::Role, "mlspace-app-role".to_string())]
        );
    }

    #[test]
    fn ignored_fields_take_what_kms_has() {
        let s = spec();
        let mut o = as_created(&s);
        o.description = "theirs".into();
        o.aliases.insert("theirs".into());
        o.key_state = state::DISABLED.into();
        o.rotation = Some(RotationObserved::default());
        o.tags.insert("theirs".into(), "x".into());
        let mut kept = s.clone();
        for f in KmsKey::IGNORABLE_FIELDS {
            KmsKey::keep_observed(&mut kept, &o, f);
        }
        assert_eq!(
            KmsKey::update("k", &kept, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn the_create_search_helpers() {
        let mine: Tags = cx().desired_tags(&Tags::new());
        let mut named = mine.clone();
        named.insert(NAME_TAG.into(), "k".into());
        let mut foreign = named.clone();
        foreign.remove(OWNERSHIP_TAG);
        let keys = [
            ("b".to_string(), named.clone()),
            ("a".to_string(), named),
            ("c".to_string(), foreign),
            ("d".to_string(), mine),
        ];
        assert_eq!(
            owned_keys_named("k", keys.iter().map(|(k, t)| (k, t))),
            ["a", "b"]
        );
        let has: BTreeSet<String> = ["k".to_string(), "x".to_string()].into();
        assert!(aliases_fit("k", &["x".into()], &has));
        assert!(!aliases_fit("k", &[], &has));
        assert!(aliases_fit("k", &[], &BTreeSet::new()));
        let by = aliases_by_key([("alias/a", "1"), ("alias/b", "1"), ("alias/c", "2")]);
        assert_eq!(by["1"].len(), 2);
    }
}
