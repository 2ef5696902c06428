//! Bucket: the pure diff between a manifest's `Bucket` and what S3 has.
//!
//! A setting the manifest leaves out is not managed: it is not compared and, when the
//! observer knows the spec ([`Wanted`]), not even read. Managed settings are compared in
//! the manifest's terms after normalizing what S3 reports differently from what was
//! written (policy formatting, list order, "never enabled" versioning, the ids S3 gives
//! notifications that have none), so a bucket just created reads back as in sync. Tags are
//! the exception: they decide ownership, so they are always read and an extra tag is drift.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    BucketEncryption, BucketLogging, BucketNotifications, BucketSpec, BucketWebsite, CorsRule,
    LifecycleRule, NotificationDestination, ObjectOwnership, PublicAccessBlock,
    PublicAccessBlockSetting,
};
use crate::kinds::common::Tags;
use crate::kinds::core::{
    has_ownership_tag, Diff, HeldAs, HeldDocument, Holdings, KindPlan, Place, PlanCx, PlanError,
};
use crate::kinds::{FieldChange, Kind, ResourceId};

/// The Bucket kind.
pub struct Bucket;

/// One setting as read from S3.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting<T> {
    /// Not read, because the manifest does not manage it.
    #[default]
    NotRead,
    /// Read: S3 has no configuration (e.g. `NoSuchBucketPolicy`).
    Unset,
    /// Read: S3 has this.
    Set(T),
}

impl<T> Setting<T> {
    /// `Set` for `Some`, `Unset` for `None`.
    pub fn from_option(v: Option<T>) -> Self {
        v.map_or(Setting::Unset, Setting::Set)
    }

    /// Whether the setting was not read (left out of observed-state fixtures).
    pub fn is_not_read(&self) -> bool {
        matches!(self, Setting::NotRead)
    }

    /// What S3 has: `None` when unset or not read.
    pub fn value(&self) -> Option<&T> {
        match self {
            Setting::Set(v) => Some(v),
            _ => None,
        }
    }
}

/// Versioning state S3 reports (a bucket that never had versioning reports none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Versioning is on.
    Enabled,
    /// Versioning was on and is now suspended.
    Suspended,
}

/// Default encryption as S3 reports it (the algorithm may be one the manifest cannot name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedEncryption {
    /// `AES256`, `aws:kms`, `aws:kms:dsse`, ...
    pub sse_algorithm: String,
    /// KMS key as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Whether an S3 Bucket Key is used (absent in S3's answer: false).
    #[serde(default)]
    pub bucket_key_enabled: bool,
}

/// A lifecycle rule as S3 has it: the manifest's shape plus whatever the manifest cannot
/// express (tag or size filters, dates, noncurrent transitions, ...). A rule with
/// unmanaged parts never equals a desired rule, so the manifest's rules replace it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedLifecycleRule {
    /// The part the manifest can express.
    #[serde(flatten)]
    pub rule: LifecycleRule,
    /// Parts the manifest cannot express, by S3 element name.
    #[serde(flatten)]
    pub unmanaged: BTreeMap<String, Value>,
}

impl From<LifecycleRule> for ObservedLifecycleRule {
    fn from(rule: LifecycleRule) -> Self {
        ObservedLifecycleRule {
            rule,
            unmanaged: BTreeMap::new(),
        }
    }
}

/// A website configuration as S3 has it: the manifest's shape plus what the manifest cannot
/// express (a status code that is not a number, a routing rule without a redirect). One
/// with unmanaged parts never equals a desired website, so the manifest's replaces it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedWebsite {
    /// The part the manifest can express.
    #[serde(flatten)]
    pub website: BucketWebsite,
    /// Parts the manifest cannot express, by S3 element name.
    #[serde(flatten)]
    pub unmanaged: BTreeMap<String, Value>,
}

impl From<BucketWebsite> for ObservedWebsite {
    fn from(website: BucketWebsite) -> Self {
        ObservedWebsite {
            website,
            unmanaged: BTreeMap::new(),
        }
    }
}

/// A notification configuration as S3 has it: every destination with the id S3 keeps (it
/// assigns one to a destination given none), plus what the manifest cannot express (a key
/// filter rule other than one prefix and one suffix). One with unmanaged parts never equals
/// a desired configuration, so the manifest's replaces it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedNotifications {
    /// The part the manifest can express.
    #[serde(flatten)]
    pub notifications: BucketNotifications,
    /// Parts the manifest cannot express, by destination and S3 element name.
    #[serde(flatten)]
    pub unmanaged: BTreeMap<String, Value>,
}

impl From<BucketNotifications> for ObservedNotifications {
    fn from(notifications: BucketNotifications) -> Self {
        ObservedNotifications {
            notifications,
            unmanaged: BTreeMap::new(),
        }
    }
}

/// What S3 has for one bucket. Settings not read are left out of its JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketObserved {
    /// Tags (always read: they decide ownership).
    #[serde(default)]
    pub tags: Tags,
    /// Default encryption.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub encryption: Setting<ObservedEncryption>,
    /// Versioning state.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub versioning: Setting<Versioning>,
    /// Public access block flags.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub public_access_block: Setting<PublicAccessBlock>,
    /// Server access logging.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub logging: Setting<BucketLogging>,
    /// Bucket policy (parsed; a document S3 returns that is not JSON is kept as a string).
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub policy: Setting<Value>,
    /// CORS rules, in S3's order.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub cors: Setting<Vec<CorsRule>>,
    /// Lifecycle rules.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub lifecycle_rules: Setting<Vec<ObservedLifecycleRule>>,
    /// Object ownership (S3's spelling).
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub ownership: Setting<String>,
    /// Static website hosting.
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub website: Setting<ObservedWebsite>,
    /// Event notifications (an empty configuration reads as unset).
    #[serde(default, skip_serializing_if = "Setting::is_not_read")]
    pub notifications: Setting<ObservedNotifications>,
}

/// Which settings to read for a bucket (tags are always read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Default encryption.
    pub encryption: bool,
    /// Versioning.
    pub versioning: bool,
    /// Public access block.
    pub public_access_block: bool,
    /// Server access logging.
    pub logging: bool,
    /// Bucket policy.
    pub policy: bool,
    /// CORS.
    pub cors: bool,
    /// Lifecycle rules.
    pub lifecycle_rules: bool,
    /// Object ownership.
    pub ownership: bool,
    /// Static website hosting.
    pub website: bool,
    /// Event notifications.
    pub notifications: bool,
}

impl Wanted {
    /// Every setting (when the desired spec is not known).
    pub const ALL: Wanted = Wanted {
        encryption: true,
        versioning: true,
        public_access_block: true,
        logging: true,
        policy: true,
        cors: true,
        lifecycle_rules: true,
        ownership: true,
        website: true,
        notifications: true,
    };
    /// Tags only (enough to decide ownership, e.g. before a delete).
    pub const NONE: Wanted = Wanted {
        encryption: false,
        versioning: false,
        public_access_block: false,
        logging: false,
        policy: false,
        cors: false,
        lifecycle_rules: false,
        ownership: false,
        website: false,
        notifications: false,
    };

    /// The settings `spec` manages.
    pub fn of(spec: &BucketSpec) -> Wanted {
        Wanted {
            encryption: spec.encryption.is_some(),
            versioning: spec.versioning.is_some(),
            public_access_block: spec.public_access_block.is_some(),
            logging: spec.logging.is_some(),
            policy: spec.policy.is_some(),
            cors: spec.cors.is_some(),
            lifecycle_rules: spec.lifecycle_rules.is_some(),
            ownership: spec.ownership.is_some(),
            website: spec.website.is_some(),
            notifications: spec.notifications.is_some(),
        }
    }
}

/// One step on a bucket. Plain data; every step is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum Op {
    /// CreateBucket (converging when the bucket is already ours), then tag it.
    Create {
        /// LocationConstraint (absent in us-east-1, which takes none).
        #[serde(skip_serializing_if = "Option::is_none")]
        location_constraint: Option<String>,
        /// ObjectOwnership set at creation.
        #[serde(skip_serializing_if = "Option::is_none")]
        object_ownership: Option<ObjectOwnership>,
        /// Full tag set, ownership tag included.
        tags: Tags,
    },
    /// Enable (`true`) or suspend (`false`) versioning.
    PutVersioning {
        /// Desired state.
        enabled: bool,
    },
    /// Set default encryption.
    PutEncryption(BucketEncryption),
    /// Set the four public access block flags.
    PutPublicAccessBlock(PublicAccessBlock),
    /// Set server access logging.
    PutLogging(BucketLogging),
    /// Replace the bucket policy.
    PutPolicy(Value),
    /// Remove the bucket policy.
    DeletePolicy,
    /// Replace the CORS rules.
    PutCors(Vec<CorsRule>),
    /// Remove the CORS configuration.
    DeleteCors,
    /// Replace the lifecycle rules.
    PutLifecycle(Vec<LifecycleRule>),
    /// Remove the lifecycle configuration.
    DeleteLifecycle,
    /// Set object ownership.
    PutOwnership(ObjectOwnership),
    /// Replace the website configuration.
    PutWebsite(BucketWebsite),
    /// Remove the website configuration.
    DeleteWebsite,
    /// Replace the whole notification configuration; an empty one removes every
    /// notification (S3 has no call that deletes it).
    PutNotifications(BucketNotifications),
    /// Replace the whole tag set (S3 has no partial tagging), ownership tag included.
    PutTags(Tags),
    /// Delete every object version and delete marker (only for `forceDestroy`).
    Empty,
    /// Delete the bucket; refused (a conflict) while it holds objects.
    Delete,
}

fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("plain data serializes")
}

/// Whether a desired policy document grants nothing (no statements): it means "no policy".
fn is_empty_policy(doc: &Value) -> bool {
    match doc.get("Statement") {
        None => true,
        Some(Value::Array(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// CORS rules with their value lists as sets. Rule order is kept: S3 answers a preflight
/// with the first rule that matches, so reordering rules changes behaviour.
fn normalize_cors(rules: &[CorsRule]) -> Vec<CorsRule> {
    let set = |v: &[String]| {
        v.iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    };
    rules
        .iter()
        .map(|r| CorsRule {
            id: r.id.clone(),
            allowed_methods: set(&r.allowed_methods),
            allowed_origins: set(&r.allowed_origins),
            allowed_headers: set(&r.allowed_headers),
            expose_headers: set(&r.expose_headers),
            max_age_seconds: r.max_age_seconds,
        })
        .collect()
}

/// Lifecycle rules sorted by id (S3 applies all of them; order means nothing), their
/// transitions sorted by day.
fn normalize_lifecycle(rules: &[LifecycleRule]) -> Vec<LifecycleRule> {
    let mut out: Vec<LifecycleRule> = rules.to_vec();
    for r in &mut out {
        r.transitions
            .sort_by(|a, b| (a.days, &a.storage_class).cmp(&(b.days, &b.storage_class)));
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn lifecycle_in_sync(want: &[LifecycleRule], have: &[ObservedLifecycleRule]) -> bool {
    have.iter().all(|r| r.unmanaged.is_empty())
        && normalize_lifecycle(want)
            == normalize_lifecycle(&have.iter().map(|r| r.rule.clone()).collect::<Vec<_>>())
}

/// Whether S3's website is the desired one. Compared as written: rule order matters (the
/// first rule that matches applies).
fn website_in_sync(want: &BucketWebsite, have: &ObservedWebsite) -> bool {
    have.unmanaged.is_empty() && have.website == *want
}

/// What decides a notification's behaviour: its destination, its events as a set and its
/// filter. The id is compared apart.
fn same_destination(a: &NotificationDestination, b: &NotificationDestination) -> bool {
    fn set(v: &[String]) -> BTreeSet<&str> {
        v.iter().map(String::as_str).collect()
    }
    a.arn == b.arn && set(&a.events) == set(&b.events) && a.filter == b.filter
}

/// Whether S3's destinations are the desired ones, in any order. A desired destination with
/// an id matches only S3's destination of that id; one without matches any equal destination
/// whatever id S3 gave it (S3 assigns ids to destinations given none, so asking for the id
/// back would never converge).
fn destinations_in_sync(
    want: &[NotificationDestination],
    have: &[NotificationDestination],
) -> bool {
    if want.len() != have.len() {
        return false;
    }
    let mut left: Vec<&NotificationDestination> = have.iter().collect();
    // Destinations with ids first: they can match one destination only.
    let (with_id, without_id): (Vec<_>, Vec<_>) = want.iter().partition(|d| d.id.is_some());
    for d in with_id.into_iter().chain(without_id) {
        let found = left
            .iter()
            .position(|h| (d.id.is_none() || d.id == h.id) && same_destination(d, h));
        match found {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    true
}

fn notifications_in_sync(want: &BucketNotifications, have: &ObservedNotifications) -> bool {
    let h = &have.notifications;
    have.unmanaged.is_empty()
        && want.event_bridge == h.event_bridge
        && destinations_in_sync(&want.lambda_functions, &h.lambda_functions)
        && destinations_in_sync(&want.queues, &h.queues)
        && destinations_in_sync(&want.topics, &h.topics)
}

fn encryption_in_sync(want: &BucketEncryption, have: &ObservedEncryption) -> bool {
    want.sse_algorithm.as_str() == have.sse_algorithm
        && want.kms_key_id == have.kms_key_id
        && want
            .bucket_key_enabled
            .is_none_or(|b| b == have.bucket_key_enabled)
}

/// Whether a tag key is one AWS sets (`aws:cloudformation:stack-name`, ...): nobody can
/// set or remove it.
fn is_system_tag(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("aws:")
}

/// Field changes for every tag that differs (absent on one side included), except the
/// bucket's `aws:` tags, which are not drift.
fn tag_changes(want: &Tags, have: &Tags) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    keys.into_iter()
        .filter(|k| want.contains_key(*k) || !is_system_tag(k))
        .filter(|k| want.get(*k) != have.get(*k))
        .map(|k| {
            FieldChange::new(
                format!("spec.tags.{k}"),
                have.get(k).map(|v| json!(v)),
                want.get(k).map(|v| json!(v)),
            )
        })
        .collect()
}

/// A bucket's policy, as the access analysis sees it.
fn bucket_holdings(policy: Option<&Value>) -> Holdings<'_> {
    Holdings {
        documents: policy
            .map(|document| HeldDocument {
                label: "bucket policy".into(),
                pointer: "/spec/policy".into(),
                held_as: HeldAs::Resource,
                policy_kind: mlspace_policy::PolicyKind::Resource,
                document,
            })
            .into_iter()
            .collect(),
        ..Holdings::default()
    }
}

impl KindPlan for Bucket {
    type Observed = BucketObserved;
    type Op = Op;

    // S3 creates a bucket and tags it in two requests.
    const RECORD_BEFORE_CREATE: bool = true;

    // Every optional setting left out is unmanaged, so ignoring one is leaving it out.
    const IGNORABLE_FIELDS: &'static [&'static str] = &[
        "encryption",
        "versioning",
        "publicAccessBlock",
        "logging",
        "policy",
        "cors",
        "lifecycleRules",
        "ownership",
        "website",
        "notifications",
        "tags",
    ];

    fn holdings(spec: &BucketSpec) -> Holdings<'_> {
        bucket_holdings(spec.policy.as_ref().filter(|p| !is_empty_policy(p)))
    }

    fn observed_holdings(o: &BucketObserved) -> Holdings<'_> {
        bucket_holdings(o.policy.value())
    }

    fn keep_observed(spec: &mut BucketSpec, o: &BucketObserved, field: &str) {
        match field {
            "encryption" => spec.encryption = None,
            "versioning" => spec.versioning = None,
            "publicAccessBlock" => spec.public_access_block = None,
            "logging" => spec.logging = None,
            "policy" => spec.policy = None,
            "cors" => spec.cors = None,
            "lifecycleRules" => spec.lifecycle_rules = None,
            "ownership" => spec.ownership = None,
            "website" => spec.website = None,
            "notifications" => spec.notifications = None,
            "tags" => spec.tags = o.tags.clone(),
            _ => {}
        }
    }

    /// A bucket that logs to another bucket of the manifests needs that bucket first:
    /// PutBucketLogging fails while the target does not exist.
    fn stand_in(name: &str, attribute: &str, at: Place) -> Option<String> {
        match attribute {
            "arn" => Some(format!("arn:{}:s3:::{name}", at.partition)),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    fn arn(name: &str, _: &BucketSpec, at: Place) -> Option<String> {
        Some(format!("arn:{}:s3:::{name}", at.partition))
    }

    fn event_objects(name: &str, _: &BucketSpec) -> Vec<crate::kinds::AwsObject> {
        vec![crate::kinds::AwsObject::Bucket(name.to_string())]
    }

    fn force_destroy(spec: &BucketSpec) -> bool {
        spec.force_destroy
    }

    fn depends_on(name: &str, spec: &BucketSpec, cx: &PlanCx) -> Vec<ResourceId> {
        match &spec.logging {
            Some(l)
                if l.target_bucket != name && cx.is_declared(Kind::Bucket, &l.target_bucket) =>
            {
                vec![(Kind::Bucket, l.target_bucket.clone())]
            }
            _ => vec![],
        }
    }

    fn observed_tags(o: &BucketObserved) -> Option<&Tags> {
        Some(&o.tags)
    }

    fn is_owned(o: &BucketObserved) -> bool {
        has_ownership_tag(&o.tags)
    }

    fn create(_: &str, spec: &BucketSpec, cx: &PlanCx) -> Diff<Op> {
        let tags = cx.desired_tags(&spec.tags);
        let mut fields = Vec::new();
        // us-east-1 is the default location and rejects an explicit constraint.
        let location_constraint =
            (!cx.region.is_empty() && cx.region != "us-east-1").then(|| cx.region.clone());
        let mut ops = vec![Op::Create {
            location_constraint,
            object_ownership: spec.ownership,
            tags: tags.clone(),
        }];
        if let Some(o) = spec.ownership {
            fields.push(FieldChange::new(
                "spec.ownership",
                None,
                Some(json!(o.as_str())),
            ));
        }
        // New buckets get all four flags on by default, so any desired value is written.
        if let Some(p) = &spec.public_access_block {
            fields.push(FieldChange::new(
                "spec.publicAccessBlock",
                None,
                Some(to_json(&p.flags())),
            ));
            ops.push(Op::PutPublicAccessBlock(p.flags()));
        }
        if let Some(v) = spec.versioning {
            fields.push(FieldChange::new("spec.versioning", None, Some(json!(v))));
            // A new bucket is unversioned, which `false` accepts.
            if v {
                ops.push(Op::PutVersioning { enabled: true });
            }
        }
        if let Some(e) = &spec.encryption {
            fields.push(FieldChange::new("spec.encryption", None, Some(to_json(e))));
            ops.push(Op::PutEncryption(e.clone()));
        }
        if let Some(p) = spec.policy.as_ref().filter(|p| !is_empty_policy(p)) {
            fields.push(FieldChange::new("spec.policy", None, Some(p.clone())));
            ops.push(Op::PutPolicy(p.clone()));
        }
        if let Some(c) = spec.cors.as_ref().filter(|c| !c.is_empty()) {
            fields.push(FieldChange::new("spec.cors", None, Some(to_json(c))));
            ops.push(Op::PutCors(c.clone()));
        }
        if let Some(l) = spec.lifecycle_rules.as_ref().filter(|l| !l.is_empty()) {
            fields.push(FieldChange::new(
                "spec.lifecycleRules",
                None,
                Some(to_json(l)),
            ));
            ops.push(Op::PutLifecycle(l.clone()));
        }
        if let Some(w) = spec.website.as_ref().filter(|w| !w.is_empty()) {
            fields.push(FieldChange::new("spec.website", None, Some(to_json(w))));
            ops.push(Op::PutWebsite(w.clone()));
        }
        if let Some(n) = spec.notifications.as_ref().filter(|n| !n.is_empty()) {
            fields.push(FieldChange::new(
                "spec.notifications",
                None,
                Some(to_json(n)),
            ));
            ops.push(Op::PutNotifications(n.clone()));
        }
        if let Some(l) = &spec.logging {
            fields.push(FieldChange::new("spec.logging", None, Some(to_json(l))));
            ops.push(Op::PutLogging(l.clone()));
        }
        fields.extend(tag_changes(&tags, &Tags::new()));
        (fields, ops)
    }

    /// A setting S3 did not report (`NotRead`) while the manifest manages it is written:
    /// unknown is treated as different, never as in sync.
    fn update(
        _: &str,
        spec: &BucketSpec,
        o: &BucketObserved,
        cx: &PlanCx,
    ) -> Result<Diff<Op>, Vec<PlanError>> {
        let mut fields = Vec::new();
        let mut ops = Vec::new();

        // Tags first: an adopted bucket is marked ours before anything else changes.
        let tags = cx.desired_tags(&spec.tags);
        let tag_fields = tag_changes(&tags, &cx.managed_tags(&o.tags, &tags));
        if !tag_fields.is_empty() {
            // PutBucketTagging replaces the whole set, and S3 refuses a set that leaves out
            // the bucket's `aws:` tags ("System Tags cannot be removed by requester"); the
            // tags other tools own (`ignoreTags`) are put back as they are.
            let mut put = tags;
            for (k, v) in o
                .tags
                .iter()
                .filter(|(k, _)| is_system_tag(k) || cx.is_ignored_tag(k))
            {
                put.entry(k.clone()).or_insert_with(|| v.clone());
            }
            ops.push(Op::PutTags(put));
        }

        if let Some(want) = spec.ownership {
            let have = o.ownership.value();
            if have.map(String::as_str) != Some(want.as_str()) {
                fields.push(FieldChange::new(
                    "spec.ownership",
                    have.map(|h| json!(h)),
                    Some(json!(want.as_str())),
                ));
                ops.push(Op::PutOwnership(want));
            }
        }

        if let Some(p) = &spec.public_access_block {
            let want = p.flags();
            // No configuration blocks nothing: the same as four `false` flags.
            let have = match &o.public_access_block {
                Setting::Set(f) => Some(*f),
                Setting::Unset => Some(PublicAccessBlockSetting::All(false).flags()),
                Setting::NotRead => None,
            };
            if have != Some(want) {
                fields.push(FieldChange::new(
                    "spec.publicAccessBlock",
                    o.public_access_block.value().map(to_json),
                    Some(to_json(&want)),
                ));
                ops.push(Op::PutPublicAccessBlock(want));
            }
        }

        if let Some(want) = spec.versioning {
            // S3 cannot return a bucket to "never versioned"; `false` accepts both states.
            let in_sync = match &o.versioning {
                Setting::Set(Versioning::Enabled) => want,
                Setting::Set(Versioning::Suspended) | Setting::Unset => !want,
                Setting::NotRead => false,
            };
            if !in_sync {
                fields.push(FieldChange::new(
                    "spec.versioning",
                    o.versioning
                        .value()
                        .map(|v| json!(*v == Versioning::Enabled)),
                    Some(json!(want)),
                ));
                ops.push(Op::PutVersioning { enabled: want });
            }
        }

        if let Some(want) = &spec.encryption {
            if !o
                .encryption
                .value()
                .is_some_and(|h| encryption_in_sync(want, h))
            {
                fields.push(FieldChange::new(
                    "spec.encryption",
                    o.encryption.value().map(to_json),
                    Some(to_json(want)),
                ));
                ops.push(Op::PutEncryption(want.clone()));
            }
        }

        if let Some(want) = &spec.policy {
            let have = o.policy.value();
            if is_empty_policy(want) {
                if !matches!(o.policy, Setting::Unset) {
                    fields.push(FieldChange::new("spec.policy", have.cloned(), None));
                    ops.push(Op::DeletePolicy);
                }
            } else if !have.is_some_and(|h| mlspace_policy::semantically_equal(want, h)) {
                fields.push(FieldChange::new(
                    "spec.policy",
                    have.cloned(),
                    Some(want.clone()),
                ));
                ops.push(Op::PutPolicy(want.clone()));
            }
        }

        if let Some(want) = &spec.cors {
            let have = o.cors.value();
            if want.is_empty() {
                if !matches!(o.cors, Setting::Unset) {
                    fields.push(FieldChange::new("spec.cors", have.map(to_json), None));
                    ops.push(Op::DeleteCors);
                }
            } else if !have.is_some_and(|h| normalize_cors(want) == normalize_cors(h)) {
                fields.push(FieldChange::new(
                    "spec.cors",
                    have.map(to_json),
                    Some(to_json(want)),
                ));
                ops.push(Op::PutCors(want.clone()));
            }
        }

        if let Some(want) = &spec.lifecycle_rules {
            let have = o.lifecycle_rules.value();
            if want.is_empty() {
                if !matches!(o.lifecycle_rules, Setting::Unset) {
                    fields.push(FieldChange::new(
                        "spec.lifecycleRules",
                        have.map(to_json),
                        None,
                    ));
                    ops.push(Op::DeleteLifecycle);
                }
            } else if !have.is_some_and(|h| lifecycle_in_sync(want, h)) {
                fields.push(FieldChange::new(
                    "spec.lifecycleRules",
                    have.map(to_json),
                    Some(to_json(want)),
                ));
                ops.push(Op::PutLifecycle(want.clone()));
            }
        }

        if let Some(want) = &spec.website {
            let have = o.website.value();
            if want.is_empty() {
                if !matches!(o.website, Setting::Unset) {
                    fields.push(FieldChange::new("spec.website", have.map(to_json), None));
                    ops.push(Op::DeleteWebsite);
                }
            } else if !have.is_some_and(|h| website_in_sync(want, h)) {
                fields.push(FieldChange::new(
                    "spec.website",
                    have.map(to_json),
                    Some(to_json(want)),
                ));
                ops.push(Op::PutWebsite(want.clone()));
            }
        }

        if let Some(want) = &spec.notifications {
            // No configuration and an empty one are the same to S3.
            let in_sync = match &o.notifications {
                Setting::Set(h) => notifications_in_sync(want, h),
                Setting::Unset => want.is_empty(),
                Setting::NotRead => false,
            };
            if !in_sync {
                fields.push(FieldChange::new(
                    "spec.notifications",
                    o.notifications.value().map(to_json),
                    (!want.is_empty()).then(|| to_json(want)),
                ));
                ops.push(Op::PutNotifications(want.clone()));
            }
        }

        if let Some(want) = &spec.logging {
            let have = o.logging.value();
            if have != Some(want) {
                fields.push(FieldChange::new(
                    "spec.logging",
                    have.map(to_json),
                    Some(to_json(want)),
                ));
                ops.push(Op::PutLogging(want.clone()));
            }
        }

        fields.extend(tag_fields);
        Ok((fields, ops))
    }

    /// Only the bucket itself: its settings go with it. A bucket that still holds objects
    /// is not emptied; the delete is refused as a conflict.
    fn delete(_: &str, _: &BucketObserved) -> Vec<Op> {
        vec![Op::Delete]
    }

    fn force_delete(_: &str, _: &BucketObserved) -> Vec<Op> {
        vec![Op::Empty, Op::Delete]
    }

    fn release(_: &str, o: &BucketObserved) -> Vec<Op> {
        let mut tags = o.tags.clone();
        tags.remove(crate::kinds::common::OWNERSHIP_TAG);
        vec![Op::PutTags(tags)]
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        NotificationFilter, Redirect, RedirectAllRequestsTo, RedirectProtocol, RoutingCondition,
        RoutingRule, SseAlgorithm, Transition,
    };
    use super::*;
    use crate::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};

    fn cx() -> PlanCx {
        PlanCx {
            partition: "aws".into(),
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            ..PlanCx::default()
        }
    }

    fn empty_spec() -> BucketSpec {
        BucketSpec {
            encryption: None,
            versioning: None,
            public_access_block: None,
            logging: None,
            policy: None,
            cors: None,
            lifecycle_rules: None,
            ownership: None,
            website: None,
            notifications: None,
            tags: Tags::new(),
            force_destroy: false,
        }
    }

    fn full_spec() -> BucketSpec {
        BucketSpec {
            encryption: Some(BucketEncryption {
                sse_algorithm: SseAlgorithm::Kms,
                kms_key_id: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
                bucket_key_enabled: Some(true),
            }),
            versioning: Some(true),
            public_access_block: Some(PublicAccessBlockSetting::All(true)),
            logging: Some(BucketLogging {
                target_bucket: "logs".into(),
                target_prefix: "b/".into(),
            }),
            policy: Some(json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["123456789012"]}, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}]
            })),
            cors: Some(vec![CorsRule {
                id: Some("web".into()),
                allowed_methods: vec!["PUT".into(), "GET".into()],
                allowed_origins: vec!["*".into()],
                allowed_headers: vec!["*".into()],
                expose_headers: vec!["ETag".into()],
                max_age_seconds: Some(300),
            }]),
            lifecycle_rules: Some(vec![
                LifecycleRule {
                    id: "z-tmp".into(),
                    enabled: true,
                    prefix: "tmp/".into(),
                    expiration_days: Some(7),
                    noncurrent_version_expiration_days: None,
                    abort_incomplete_multipart_upload_days: Some(1),
                    transitions: vec![],
                },
                LifecycleRule {
                    id: "a-archive".into(),
                    enabled: false,
                    prefix: String::new(),
                    expiration_days: None,
                    noncurrent_version_expiration_days: Some(30),
                    abort_incomplete_multipart_upload_days: None,
                    transitions: vec![
                        Transition {
                            days: 90,
                            storage_class: "GLACIER".into(),
                        },
                        Transition {
                            days: 30,
                            storage_class: "STANDARD_IA".into(),
                        },
                    ],
                },
            ]),
            ownership: Some(ObjectOwnership::BucketOwnerEnforced),
            website: Some(website()),
            notifications: Some(notifications()),
            tags: [("team".to_string(), "ml".to_string())].into(),
            force_destroy: false,
        }
    }

    fn website() -> BucketWebsite {
        BucketWebsite {
            index_document: Some("index.html".into()),
            error_document: Some("error.html".into()),
            routing_rules: vec![
                RoutingRule {
                    condition: Some(RoutingCondition {
                        key_prefix_equals: Some("docs/".into()),
                        http_error_code_returned_equals: None,
                    }),
                    redirect: Redirect {
                        host_name: None,
                        http_redirect_code: Some(301),
                        protocol: None,
                        replace_key_prefix_with: Some("documents/".into()),
                        replace_key_with: None,
                    },
                },
                RoutingRule {
                    condition: None,
                    redirect: Redirect {
                        host_name: Some("example.com".into()),
                        http_redirect_code: None,
                        protocol: Some(RedirectProtocol::Https),
                        replace_key_prefix_with: None,
                        replace_key_with: None,
                    },
                },
            ],
            redirect_all_requests_to: None,
        }
    }

    fn destination(
        id: Option<&str>,
        arn: &str,
        events: &[&str],
        prefix: Option<&str>,
    ) -> NotificationDestination {
        NotificationDestination {
            id: id.map(str::to_string),
            arn: arn.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            filter: NotificationFilter {
                prefix: prefix.map(str::to_string),
                suffix: None,
            },
        }
    }

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:123456789012:uploads";
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:removals";
    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:123456789012:function:index";

    fn notifications() -> BucketNotifications {
        BucketNotifications {
            event_bridge: true,
            lambda_functions: vec![destination(
                Some("index"),
                FUNCTION,
                &["s3:ObjectCreated:Put", "s3:ObjectCreated:Copy"],
                Some("data/"),
            )],
            queues: vec![
                destination(None, QUEUE, &["s3:ObjectCreated:*"], Some("uploads/")),
                destination(None, QUEUE, &["s3:ObjectCreated:*"], Some("incoming/")),
            ],
            topics: vec![destination(None, TOPIC, &["s3:ObjectRemoved:*"], None)],
        }
    }

    /// A stand-in for S3: applies ops and reports back the way S3 does (policy with
    /// one-element lists as strings and account ids as root ARNs, list orders shuffled,
    /// a bucket key reported even when false).
    fn s3_after(ops: &[Op]) -> BucketObserved {
        let mut o = BucketObserved {
            encryption: Setting::Unset,
            versioning: Setting::Unset,
            public_access_block: Setting::Unset,
            logging: Setting::Unset,
            policy: Setting::Unset,
            cors: Setting::Unset,
            lifecycle_rules: Setting::Unset,
            ownership: Setting::Set("BucketOwnerEnforced".into()),
            website: Setting::Unset,
            notifications: Setting::Unset,
            ..BucketObserved::default()
        };
        for op in ops {
            match op.clone() {
                Op::Create {
                    object_ownership,
                    tags,
                    ..
                } => {
                    o.tags = tags;
                    if let Some(x) = object_ownership {
                        o.ownership = Setting::Set(x.as_str().into());
                    }
                }
                Op::PutVersioning { enabled } => {
                    o.versioning = Setting::Set(if enabled {
                        Versioning::Enabled
                    } else {
                        Versioning::Suspended
                    })
                }
                Op::PutEncryption(e) => {
                    o.encryption = Setting::Set(ObservedEncryption {
                        sse_algorithm: e.sse_algorithm.as_str().into(),
                        kms_key_id: e.kms_key_id,
                        bucket_key_enabled: e.bucket_key_enabled.unwrap_or(false),
                    })
                }
                Op::PutPublicAccessBlock(f) => o.public_access_block = Setting::Set(f),
                Op::PutLogging(l) => o.logging = Setting::Set(l),
                Op::PutPolicy(p) => {
                    let text = serde_json::to_string(&p)
                        .unwrap()
                        .replace("[\"s3:GetObject\"]", "\"s3:GetObject\"")
                        .replace("[\"123456789012\"]", "\"arn:aws:iam::123456789012:root\"");
                    o.policy = Setting::Set(serde_json::from_str(&text).unwrap());
                }
                Op::DeletePolicy => o.policy = Setting::Unset,
                Op::PutCors(mut c) => {
                    c.iter_mut().for_each(|r| r.allowed_methods.reverse());
                    o.cors = Setting::Set(c);
                }
                Op::DeleteCors => o.cors = Setting::Unset,
                Op::PutLifecycle(mut l) => {
                    l.reverse();
                    o.lifecycle_rules = Setting::Set(l.into_iter().map(Into::into).collect());
                }
                Op::DeleteLifecycle => o.lifecycle_rules = Setting::Unset,
                Op::PutOwnership(x) => o.ownership = Setting::Set(x.as_str().into()),
                Op::PutWebsite(w) => o.website = Setting::Set(w.into()),
                Op::DeleteWebsite => o.website = Setting::Unset,
                Op::PutNotifications(n) if n.is_empty() => o.notifications = Setting::Unset,
                Op::PutNotifications(n) => o.notifications = Setting::Set(s3_notifications(n)),
                Op::PutTags(t) => o.tags = t,
                Op::Delete | Op::Empty => unreachable!(),
            }
        }
        o
    }

    /// What S3 keeps of a notification configuration: an id for every destination (a random
    /// one when none was given), the lists and the events in its own order.
    fn s3_notifications(mut n: BucketNotifications) -> ObservedNotifications {
        let mut serial = 0;
        for list in [&mut n.lambda_functions, &mut n.queues, &mut n.topics] {
            list.reverse();
            for d in list.iter_mut() {
                d.events.reverse();
                serial += 1;
                d.id.get_or_insert_with(|| format!("NjQ2{serial}assigned-by-s3"));
            }
        }
        n.into()
    }

    fn field_names(d: &Diff<Op>) -> Vec<&str> {
        d.0.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn created_bucket_reads_back_in_sync() {
        let (fields, ops) = Bucket::create("b", &full_spec(), &cx());
        assert!(
            matches!(&ops[0], Op::Create { location_constraint: Some(r), object_ownership: Some(ObjectOwnership::BucketOwnerEnforced), tags } if r == "eu-west-1" && has_ownership_tag(tags) && tags["team"] == "ml")
        );
        assert_eq!(
            ops.len(),
            10,
            "create, then one step per setting but ownership (set at create): {ops:?}"
        );
        assert!(fields
            .iter()
            .any(|f| f.field == format!("spec.tags.{OWNERSHIP_TAG}")));
        let observed = s3_after(&ops);
        let d = Bucket::update("b", &full_spec(), &observed, &cx()).unwrap();
        assert_eq!(d, (vec![], vec![]));
    }

    #[test]
    fn tags_other_tools_own_are_kept_and_never_drift() {
        let mut cx = cx();
        cx.ignore_tags = vec!["aws-cdk:".into()];
        let (_, ops) = Bucket::create("b", &full_spec(), &cx);
        let mut observed = s3_after(&ops);
        observed
            .tags
            .insert("aws-cdk:cr-owned:abc".into(), "true".into());
        // Not drift.
        let d = Bucket::update("b", &full_spec(), &observed, &cx).unwrap();
        assert_eq!(d, (vec![], vec![]));
        // Without the prefix, the same tag is drift and removed.
        let plain = Bucket::update("b", &full_spec(), &observed, &super::tests::cx()).unwrap();
        assert_eq!(fields_of(&plain.0), ["spec.tags.aws-cdk:cr-owned:abc"]);
        // A tag change puts the whole set back: the tag other tools own goes with it.
        observed.tags.insert("team".into(), "other".into());
        let (fields, ops) = Bucket::update("b", &full_spec(), &observed, &cx).unwrap();
        assert_eq!(fields_of(&fields), ["spec.tags.team"]);
        assert!(
            matches!(&ops[0], Op::PutTags(t) if t.get("aws-cdk:cr-owned:abc").map(String::as_str) == Some("true") && t["team"] == "ml"),
            "{ops:?}"
        );
    }

    fn fields_of(fields: &[FieldChange]) -> Vec<&str> {
        fields.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn each_setting_alone_reads_back_in_sync() {
        let full = full_spec();
        let mut alone = vec![];
        let mut s = empty_spec();
        s.encryption = full.encryption.clone();
        alone.push(s);
        for v in [true, false] {
            let mut s = empty_spec();
            s.versioning = Some(v);
            alone.push(s);
        }
        for p in [
            PublicAccessBlockSetting::All(false),
            PublicAccessBlockSetting::Flags(PublicAccessBlock {
                block_public_acls: true,
                ignore_public_acls: false,
                block_public_policy: true,
                restrict_public_buckets: false,
            }),
        ] {
            let mut s = empty_spec();
            s.public_access_block = Some(p);
            alone.push(s);
        }
        let mut s = empty_spec();
        s.logging = full.logging.clone();
        alone.push(s);
        let mut s = empty_spec();
        s.policy = full.policy.clone();
        alone.push(s);
        let mut s = empty_spec();
        s.cors = full.cors.clone();
        alone.push(s);
        let mut s = empty_spec();
        s.lifecycle_rules = full.lifecycle_rules.clone();
        alone.push(s);
        for o in [
            ObjectOwnership::BucketOwnerPreferred,
            ObjectOwnership::ObjectWriter,
        ] {
            let mut s = empty_spec();
            s.ownership = Some(o);
            alone.push(s);
        }
        let mut s = empty_spec();
        s.encryption = Some(BucketEncryption {
            sse_algorithm: SseAlgorithm::Aes256,
            kms_key_id: None,
            bucket_key_enabled: None,
        });
        s.cors = Some(vec![]);
        s.lifecycle_rules = Some(vec![]);
        s.website = Some(BucketWebsite::default());
        s.notifications = Some(BucketNotifications::default());
        alone.push(s);
        let mut s = empty_spec();
        s.website = full.website.clone();
        alone.push(s);
        let mut s = empty_spec();
        s.website = Some(BucketWebsite {
            redirect_all_requests_to: Some(RedirectAllRequestsTo {
                host_name: "example.com".into(),
                protocol: None,
            }),
            ..BucketWebsite::default()
        });
        alone.push(s);
        let mut s = empty_spec();
        s.notifications = full.notifications.clone();
        alone.push(s);
        let mut s = empty_spec();
        s.notifications = Some(BucketNotifications {
            event_bridge: true,
            ..BucketNotifications::default()
        });
        alone.push(s);
        for spec in alone {
            let (_, ops) = Bucket::create("b", &spec, &cx());
            let d = Bucket::update("b", &spec, &s3_after(&ops), &cx()).unwrap();
            assert_eq!(d, (vec![], vec![]), "{spec:?}");
        }
    }

    #[test]
    fn us_east_1_takes_no_location_constraint() {
        let cx = PlanCx {
            region: "us-east-1".into(),
            ..cx()
        };
        let (_, ops) = Bucket::create("b", &empty_spec(), &cx);
        assert_eq!(
            ops,
            vec![Op::Create {
                location_constraint: None,
                object_ownership: None,
                tags: cx.desired_tags(&Tags::new())
            }]
        );
    }

    #[test]
    fn settings_left_out_are_not_drift() {
        let mut spec = empty_spec();
        spec.tags = [("team".to_string(), "ml".to_string())].into();
        let (_, ops) = Bucket::create("b", &full_spec(), &cx());
        // A bucket with every setting, against a manifest that manages none of them.
        let d = Bucket::update("b", &spec, &s3_after(&ops), &cx()).unwrap();
        assert_eq!(d, (vec![], vec![]));
        // Nor does a manifest setting differ from a setting that was not read.
        let tags_only = BucketObserved {
            tags: cx().desired_tags(&spec.tags),
            ..BucketObserved::default()
        };
        assert_eq!(
            Bucket::update("b", &spec, &tags_only, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn extra_and_changed_tags_are_drift_and_the_full_set_is_written() {
        let spec = full_spec();
        let (_, ops) = Bucket::create("b", &spec, &cx());
        let mut o = s3_after(&ops);
        o.tags.insert("extra".into(), "x".into());
        o.tags.insert("team".into(), "other".into());
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), ["spec.tags.extra", "spec.tags.team"]);
        assert_eq!(
            d.0[0],
            FieldChange::new("spec.tags.extra", Some(json!("x")), None)
        );
        let want: Tags = [
            ("team".to_string(), "ml".to_string()),
            (OWNERSHIP_TAG.to_string(), OWNERSHIP_VALUE.to_string()),
        ]
        .into();
        assert_eq!(d.1, vec![Op::PutTags(want)]);
    }

    /// Regression: a bucket CloudFormation created (MLSpace's, adopted) carries
    /// `aws:cloudformation:*` tags; every plan showed them as drift, and the PutTags written
    /// without them fails in S3 ("System Tags cannot be removed by requester").
    #[test]
    fn aws_system_tags_are_neither_drift_nor_left_out_of_put_tags() {
        let spec = full_spec();
        let (_, ops) = Bucket::create("b", &spec, &cx());
        let mut o = s3_after(&ops);
        o.tags
            .insert("aws:cloudformation:stack-name".into(), "mlspace".into());
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );

        o.tags.remove(OWNERSHIP_TAG);
        o.tags.insert("extra".into(), "x".into());
        let (fields, ops) = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            field_names(&(fields, ops.clone())),
            ["spec.tags.extra", &format!("spec.tags.{OWNERSHIP_TAG}")]
        );
        let want: Tags = [
            ("aws:cloudformation:stack-name", "mlspace"),
            ("team", "ml"),
            (OWNERSHIP_TAG, OWNERSHIP_VALUE),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
        assert_eq!(ops, vec![Op::PutTags(want)]);
    }

    #[test]
    fn adopting_an_untagged_bucket_adds_the_ownership_tag() {
        let mut spec = empty_spec();
        spec.versioning = Some(true);
        let o = BucketObserved {
            versioning: Setting::Set(Versioning::Enabled),
            ..BucketObserved::default()
        };
        assert!(!Bucket::is_owned(&o));
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), [format!("spec.tags.{OWNERSHIP_TAG}")]);
        assert!(matches!(&d.1[..], [Op::PutTags(t)] if has_ownership_tag(t)));
    }

    #[test]
    fn versioning_false_accepts_never_enabled_and_suspends_enabled() {
        let mut spec = empty_spec();
        spec.versioning = Some(false);
        let mut o = BucketObserved {
            tags: cx().desired_tags(&Tags::new()),
            versioning: Setting::Unset,
            ..BucketObserved::default()
        };
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        o.versioning = Setting::Set(Versioning::Enabled);
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0,
            vec![FieldChange::new(
                "spec.versioning",
                Some(json!(true)),
                Some(json!(false))
            )]
        );
        assert_eq!(d.1, vec![Op::PutVersioning { enabled: false }]);
        spec.versioning = Some(true);
        o.versioning = Setting::Unset;
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0,
            vec![FieldChange::new("spec.versioning", None, Some(json!(true)))]
        );
    }

    #[test]
    fn encryption_compares_algorithm_key_and_bucket_key_when_given() {
        let mut spec = empty_spec();
        spec.encryption = Some(BucketEncryption {
            sse_algorithm: SseAlgorithm::Kms,
            kms_key_id: Some("k".into()),
            bucket_key_enabled: None,
        });
        let mut o = BucketObserved {
            tags: cx().desired_tags(&Tags::new()),
            ..BucketObserved::default()
        };
        o.encryption = Setting::Set(ObservedEncryption {
            sse_algorithm: "aws:kms".into(),
            kms_key_id: Some("k".into()),
            bucket_key_enabled: true,
        });
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![]),
            "bucketKeyEnabled left out is not compared"
        );
        spec.encryption.as_mut().unwrap().bucket_key_enabled = Some(false);
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.encryption"]
        );
        o.encryption = Setting::Set(ObservedEncryption {
            sse_algorithm: "aws:kms".into(),
            kms_key_id: Some("other".into()),
            bucket_key_enabled: false,
        });
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.encryption"]
        );
        o.encryption = Setting::Set(ObservedEncryption {
            sse_algorithm: "AES256".into(),
            kms_key_id: None,
            bucket_key_enabled: false,
        });
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0[0].old,
            Some(json!({"sseAlgorithm": "AES256", "bucketKeyEnabled": false}))
        );
        assert!(matches!(&d.1[..], [Op::PutEncryption(_)]));
    }

    #[test]
    fn public_access_block_absent_equals_all_false() {
        let mut spec = empty_spec();
        spec.public_access_block = Some(PublicAccessBlockSetting::All(false));
        let mut o = BucketObserved {
            tags: cx().desired_tags(&Tags::new()),
            public_access_block: Setting::Unset,
            ..BucketObserved::default()
        };
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        spec.public_access_block = Some(PublicAccessBlockSetting::All(true));
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.1,
            vec![Op::PutPublicAccessBlock(
                PublicAccessBlockSetting::All(true).flags()
            )]
        );
        o.public_access_block = Setting::Set(PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: false,
            restrict_public_buckets: true,
        });
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0[0].old.as_ref().unwrap()["blockPublicPolicy"],
            json!(false)
        );
    }

    #[test]
    fn policy_is_compared_semantically() {
        let spec = full_spec();
        let (_, ops) = Bucket::create("b", &spec, &cx());
        let mut o = s3_after(&ops);
        o.policy = Setting::Set(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:getobject", "Resource": "arn:aws:s3:::b/*"}}),
        );
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        o.policy = Setting::Set(
            json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}}),
        );
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(d.1, vec![Op::PutPolicy(spec.policy.clone().unwrap())]);
        // A document without statements means "no policy".
        let mut s = BucketSpec {
            tags: spec.tags.clone(),
            ..empty_spec()
        };
        s.policy = Some(json!({"Version": "2012-10-17", "Statement": []}));
        assert_eq!(
            Bucket::update("b", &s, &o, &cx()).unwrap().1,
            vec![Op::DeletePolicy]
        );
        o.policy = Setting::Unset;
        assert_eq!(
            Bucket::update("b", &s, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn cors_keeps_rule_order_and_ignores_value_order() {
        let two = |a: &str, b: &str| {
            let rule = |id: &str| CorsRule {
                id: Some(id.into()),
                allowed_methods: vec!["GET".into(), "PUT".into()],
                allowed_origins: vec!["*".into()],
                allowed_headers: vec![],
                expose_headers: vec![],
                max_age_seconds: None,
            };
            vec![rule(a), rule(b)]
        };
        let mut spec = empty_spec();
        spec.cors = Some(two("a", "b"));
        let mut observed = two("a", "b");
        observed[0].allowed_methods.reverse();
        let mut o = BucketObserved {
            tags: cx().desired_tags(&Tags::new()),
            cors: Setting::Set(observed),
            ..BucketObserved::default()
        };
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        o.cors = Setting::Set(two("b", "a"));
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap().1,
            vec![Op::PutCors(two("a", "b"))]
        );
        spec.cors = Some(vec![]);
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap().1,
            vec![Op::DeleteCors]
        );
    }

    #[test]
    fn lifecycle_rules_with_unmanaged_parts_are_drift() {
        let spec = full_spec();
        let (_, ops) = Bucket::create("b", &spec, &cx());
        let mut o = s3_after(&ops);
        let Setting::Set(rules) = &mut o.lifecycle_rules else {
            panic!()
        };
        rules[0].unmanaged.insert("filterTag".into(), json!("k=v"));
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), ["spec.lifecycleRules"]);
        assert_eq!(d.0[0].old.as_ref().unwrap()[0]["filterTag"], json!("k=v"));
        let mut s = BucketSpec {
            tags: spec.tags.clone(),
            ..empty_spec()
        };
        s.lifecycle_rules = Some(vec![]);
        assert_eq!(
            Bucket::update("b", &s, &o, &cx()).unwrap().1,
            vec![Op::DeleteLifecycle]
        );
    }

    #[test]
    fn ownership_and_logging_drift() {
        let spec = full_spec();
        let (_, ops) = Bucket::create("b", &spec, &cx());
        let mut o = s3_after(&ops);
        o.ownership = Setting::Set("ObjectWriter".into());
        o.logging = Setting::Unset;
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), ["spec.ownership", "spec.logging"]);
        assert_eq!(
            d.1,
            vec![
                Op::PutOwnership(ObjectOwnership::BucketOwnerEnforced),
                Op::PutLogging(spec.logging.clone().unwrap())
            ]
        );
    }

    #[test]
    fn logging_to_a_manifest_bucket_is_a_dependency() {
        let mut cx = cx();
        cx.declare(Kind::Bucket, "logs", None);
        cx.declare(Kind::Bucket, "b", None);
        let spec = full_spec();
        assert_eq!(
            Bucket::depends_on("b", &spec, &cx),
            vec![(Kind::Bucket, "logs".to_string())]
        );
        assert_eq!(
            Bucket::depends_on("logs", &spec, &cx),
            vec![],
            "logging to itself"
        );
        cx.declared.remove(&(Kind::Bucket, "logs".to_string()));
        assert_eq!(
            Bucket::depends_on("b", &spec, &cx),
            vec![],
            "a target outside the manifests"
        );
        assert_eq!(Bucket::depends_on("b", &empty_spec(), &cx), vec![]);
    }

    #[test]
    fn wanted_follows_the_spec() {
        assert_eq!(Wanted::of(&empty_spec()), Wanted::NONE);
        assert_eq!(Wanted::of(&full_spec()), Wanted::ALL);
    }

    #[test]
    fn ops_serialize_as_plain_data() {
        let v = serde_json::to_value(crate::plan::Step::Bucket(Op::PutVersioning {
            enabled: true,
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"kind": "Bucket", "op": {"PutVersioning": {"enabled": true}}})
        );
        assert_eq!(serde_json::to_value(Op::Delete).unwrap(), json!("Delete"));
        let create = Op::Create {
            location_constraint: Some("eu-west-1".into()),
            object_ownership: None,
            tags: Tags::new(),
        };
        assert_eq!(
            serde_json::to_value(create).unwrap(),
            json!({"Create": {"locationConstraint": "eu-west-1", "tags": {}}})
        );
    }
    fn observed(o: BucketObserved) -> BucketObserved {
        BucketObserved {
            tags: cx().desired_tags(&Tags::new()),
            ..o
        }
    }

    #[test]
    fn website_is_set_changed_and_removed() {
        let mut spec = empty_spec();
        spec.website = Some(website());
        let mut o = observed(BucketObserved {
            website: Setting::Unset,
            ..BucketObserved::default()
        });
        // Unset → set.
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0,
            vec![FieldChange::new(
                "spec.website",
                None,
                Some(to_json(&website()))
            )]
        );
        assert_eq!(d.1, vec![Op::PutWebsite(website())]);
        o.website = Setting::Set(website().into());
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Another error document, routing rules in another order: both are changes.
        let mut changed = website();
        changed.error_document = Some("404.html".into());
        spec.website = Some(changed.clone());
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), ["spec.website"]);
        assert_eq!(
            d.0[0].old.as_ref().unwrap()["errorDocument"],
            json!("error.html")
        );
        assert_eq!(d.1, vec![Op::PutWebsite(changed)]);
        let mut reordered = website();
        reordered.routing_rules.reverse();
        spec.website = Some(reordered);
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.website"],
            "the first routing rule that matches applies: order is behaviour"
        );
        // A part the manifest cannot express is drift.
        spec.website = Some(website());
        let mut with_unmanaged: ObservedWebsite = website().into();
        with_unmanaged.unmanaged.insert(
            "RoutingRules[0].Redirect.HttpRedirectCode".into(),
            json!("3o1"),
        );
        o.website = Setting::Set(with_unmanaged);
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap().1,
            vec![Op::PutWebsite(website())]
        );
        // `{}` removes it, and then asks nothing more.
        spec.website = Some(BucketWebsite::default());
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(d.1, vec![Op::DeleteWebsite]);
        assert_eq!(d.0[0].new, None);
        o.website = Setting::Unset;
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Not read while managed: written, never taken as in sync.
        spec.website = Some(website());
        o.website = Setting::NotRead;
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap().1,
            vec![Op::PutWebsite(website())]
        );
    }

    #[test]
    fn notification_ids_assigned_by_s3_are_not_drift_and_order_does_not_matter() {
        let mut spec = empty_spec();
        spec.notifications = Some(notifications());
        let (_, ops) = Bucket::create("b", &spec, &cx());
        assert_eq!(ops.last(), Some(&Op::PutNotifications(notifications())));
        let o = s3_after(&ops);
        let have = o.notifications.value().unwrap();
        assert!(
            have.notifications.queues.iter().all(|d| d.id.is_some()),
            "S3 gave every destination an id: {have:?}"
        );
        assert_ne!(have.notifications.queues, notifications().queues);
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Applying again (new ids) converges too.
        let o = s3_after(&[ops[0].clone(), Op::PutNotifications(notifications())]);
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
    }

    #[test]
    fn a_notification_id_in_the_manifest_is_compared() {
        let mut spec = empty_spec();
        spec.notifications = Some(notifications());
        let mut o = observed(BucketObserved {
            notifications: Setting::Set(s3_notifications(notifications())),
            ..BucketObserved::default()
        });
        let Setting::Set(h) = &mut o.notifications else {
            panic!()
        };
        h.notifications.lambda_functions[0].id = Some("renamed".into());
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(field_names(&d), ["spec.notifications"]);
        assert_eq!(d.1, vec![Op::PutNotifications(notifications())]);
        // An id given to a destination S3 holds under another id does not match it either.
        let mut want = notifications();
        want.queues[0].id = Some("uploads".into());
        spec.notifications = Some(want);
        let o = observed(BucketObserved {
            notifications: Setting::Set(s3_notifications(notifications())),
            ..BucketObserved::default()
        });
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.notifications"]
        );
    }

    #[test]
    fn notifications_are_set_changed_and_cleared() {
        let mut spec = empty_spec();
        spec.notifications = Some(notifications());
        let mut o = observed(BucketObserved {
            notifications: Setting::Unset,
            ..BucketObserved::default()
        });
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(
            d.0,
            vec![FieldChange::new(
                "spec.notifications",
                None,
                Some(to_json(&notifications()))
            )]
        );
        o.notifications = Setting::Set(s3_notifications(notifications()));
        // Each part is compared: EventBridge, an ARN, the events, a filter, one destination more.
        let changes: Vec<fn(&mut BucketNotifications)> = vec![
            |n| n.event_bridge = false,
            |n| n.topics[0].arn = "arn:aws:sns:eu-west-1:123456789012:other".into(),
            |n| {
                n.lambda_functions[0]
                    .events
                    .push("s3:ObjectRemoved:*".into())
            },
            |n| n.queues[1].filter.suffix = Some(".csv".into()),
            |n| n.queues.push(n.queues[0].clone()),
            |n| {
                let q = n.queues.remove(0);
                n.topics.push(q);
            },
        ];
        for change in changes {
            let mut want = notifications();
            change(&mut want);
            spec.notifications = Some(want.clone());
            let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
            assert_eq!(d.1, vec![Op::PutNotifications(want)]);
        }
        // A filter rule the manifest cannot express is drift.
        spec.notifications = Some(notifications());
        let Setting::Set(h) = &mut o.notifications else {
            panic!()
        };
        h.unmanaged.insert(
            "QueueConfigurations[0].Filter.Key.FilterRules".into(),
            json!([]),
        );
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.notifications"]
        );
        // `{}` clears them with an empty configuration, and then asks nothing more.
        spec.notifications = Some(BucketNotifications::default());
        let d = Bucket::update("b", &spec, &o, &cx()).unwrap();
        assert_eq!(d.0[0].new, None);
        assert_eq!(
            d.1,
            vec![Op::PutNotifications(BucketNotifications::default())]
        );
        o.notifications = Setting::Unset;
        assert_eq!(
            Bucket::update("b", &spec, &o, &cx()).unwrap(),
            (vec![], vec![])
        );
        // Not read while managed: written, never taken as in sync.
        o.notifications = Setting::NotRead;
        assert_eq!(
            field_names(&Bucket::update("b", &spec, &o, &cx()).unwrap()),
            ["spec.notifications"]
        );
    }

    #[test]
    fn ignored_website_and_notifications_keep_what_s3_has() {
        for f in ["website", "notifications"] {
            assert!(Bucket::IGNORABLE_FIELDS.contains(&f));
        }
        let mut spec = full_spec();
        let o = BucketObserved::default();
        Bucket::keep_observed(&mut spec, &o, "website");
        Bucket::keep_observed(&mut spec, &o, "notifications");
        assert_eq!((spec.website, spec.notifications), (None, None));
    }

    #[test]
    fn observed_website_and_notifications_round_trip_as_json() {
        let (_, ops) = Bucket::create("b", &full_spec(), &cx());
        let mut o = s3_after(&ops);
        let Setting::Set(w) = &mut o.website else {
            panic!()
        };
        w.unmanaged
            .insert("RoutingRules[1].Redirect.Protocol".into(), json!("ftp"));
        let text = serde_json::to_value(&o).unwrap();
        assert_eq!(text["website"]["set"]["indexDocument"], json!("index.html"));
        assert_eq!(
            text["website"]["set"]["RoutingRules[1].Redirect.Protocol"],
            json!("ftp")
        );
        assert_eq!(text["notifications"]["set"]["eventBridge"], json!(true));
        let back: BucketObserved = serde_json::from_value(text).unwrap();
        assert_eq!(back, o);
        // Not read: left out.
        let tags_only = serde_json::to_value(BucketObserved::default()).unwrap();
        assert_eq!(tags_only, json!({"tags": {}}));
    }
}
