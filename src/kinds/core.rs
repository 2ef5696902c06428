//! What a kind is to the pipeline, without AWS: the traits each kind implements in its
//! folder, and the vocabulary they speak (field changes, plan errors, resource ids and the
//! planning context).
//!
//! - [`DocKind`]: every document kind (resources and documents such as `EcrAccess` that
//!   only feed others): its spec, validation, references, and how it is resolved.
//! - [`KindPlan`]: the pure half of a resource kind: observed state, steps, and the diff
//!   between what a manifest wants and what AWS has.
//!
//! The registry (`src/kinds/mod.rs`) lists the kinds once and generates the glue
//! ([`Registered`], [`ResourceKind`]) and every enumeration from that list.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Tags, OWNERSHIP_TAG, OWNERSHIP_VALUE};
use super::environment::{EnvironmentView, IgnoreRule};
use super::{Kind, Observed, ResourceSpec, Step};
use crate::syntax::diag::DocCx;
use crate::syntax::yaml::Loc;

/// Identity of a resource: its kind and AWS name.
pub type ResourceId = (Kind, String);

/// One field that differs: `old` is what AWS has, `new` what the manifest wants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field path in the manifest's terms, e.g. `spec.versioning` or `spec.tags.team`.
    pub field: String,
    /// Value in AWS (absent: not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// Desired value (absent: to be removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl FieldChange {
    /// A field changing from `old` to `new`.
    pub fn new(field: impl Into<String>, old: Option<Value>, new: Option<Value>) -> FieldChange {
        FieldChange {
            field: field.into(),
            old,
            new,
        }
    }
}

/// A change the planner refuses to make (e.g. a table key change AWS cannot do in place).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanError {
    /// Kind of the resource.
    pub kind: Kind,
    /// Name of the resource.
    pub name: String,
    /// Field that cannot change.
    pub field: String,
    /// Why.
    pub message: String,
}

impl PlanError {
    /// A refusal to change `field` of `kind` `name`.
    pub fn new(kind: Kind, name: &str, field: &str, message: impl Into<String>) -> PlanError {
        PlanError {
            kind,
            name: name.to_string(),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

/// An AWS object as CloudTrail events name it, besides by ARN: what an event about a
/// resource carries in its request parameters. Kinds say which of these name their
/// resources ([`KindPlan::event_objects`]); the daemon maps events to resources through them
/// (`crate::events`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum AwsObject {
    /// An IAM role, by name (`roleName`).
    IamRole(String),
    /// A customer managed IAM policy, by name (the last part of `policyArn`, or
    /// `policyName` of CreatePolicy).
    IamPolicy(String),
    /// An IAM instance profile, by name (`instanceProfileName`).
    IamInstanceProfile(String),
    /// The service-linked role of a service, by the service principal (`awsServiceName`).
    IamServiceLinkedRole(String),
    /// An S3 bucket, by name (`bucketName`).
    Bucket(String),
    /// A DynamoDB table, by name (`tableName`).
    Table(String),
    /// A KMS key, by key id (`keyId` given as an id; its ARN is looked up as an ARN).
    KmsKey(String),
    /// A KMS alias, by name without `alias/` (`aliasName`, or `keyId` given as an alias).
    KmsAlias(String),
}

/// Field changes and steps for one resource.
pub type Diff<Op> = (Vec<FieldChange>, Vec<Op>);

/// Where a kind's names must be unique across Environments that share an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// One name per account (IAM, and S3 whose names are even global).
    Account,
    /// One name per account and region (DynamoDB tables).
    Region,
}

/// The partition, account and region a name is resolved in (for ARNs).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// AWS partition.
    pub partition: &'a str,
    /// Account id.
    pub account: &'a str,
    /// Region.
    pub region: &'a str,
}

/// A reference from one document to another by name, which must exist in the manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where the name is written, as a JSON pointer into the document.
    pub pointer: String,
    /// Kind of the document named.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Said after "no KIND named `NAME` in the manifests", e.g. how to name something
    /// managed elsewhere.
    pub hint: Option<&'static str>,
}

/// Policy statements one document adds to another resource (an `EcrAccess` grant to a
/// ManagedPolicy); the receiving kind decides how they merge.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Where the target is named in the contributing document.
    pub pointer: String,
    /// The resource that receives the statements.
    pub target: ResourceId,
    /// The statements.
    pub statements: Vec<Value>,
}

/// A contribution as its receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The contributing document.
    pub from: ResourceId,
    /// Where it names the receiver (for warnings about the grant): the position and the
    /// JSON pointer in the contributing document.
    pub origin: Option<Loc>,
    /// The JSON pointer of [`Received::origin`].
    pub pointer: String,
    /// The statements.
    pub statements: Vec<Value>,
}

/// Every resource the manifests declare, with its ARN when its kind has one.
pub type Declared = BTreeMap<ResourceId, Option<String>>;

/// What a kind's `resolve` may see and say: its own document's diagnostics, the
/// Environment, every declared resource and the contributions addressed to it.
pub struct ResolveCx<'a> {
    /// Diagnostics at this document's positions.
    pub doc: DocCx<'a>,
    /// The Environment.
    pub env: &'a EnvironmentView,
    /// Every resource of the manifests.
    pub declared: &'a Declared,
    /// Contributions to this resource, in the contributors' name order.
    pub received: &'a [Received],
    /// This document's `metadata.ignoreFields`.
    pub ignore_fields: &'a [String],
}

impl ResolveCx<'_> {
    /// The ARN of a declared resource.
    pub fn arn_of(&self, kind: Kind, name: &str) -> Option<&str> {
        self.declared
            .get(&(kind, name.to_string()))
            .and_then(|a| a.as_deref())
    }

    /// A warning at another document's position (a contribution's origin).
    pub fn warn_at(&mut self, loc: Option<Loc>, message: String) {
        self.doc
            .diags
            .push(crate::syntax::diag::Severity::Warning, loc, message);
    }
}

/// Every document kind: its spec and how it is validated and resolved. The defaults fit a
/// kind that names nothing else and receives nothing.
pub trait DocKind: Sized + 'static {
    /// The kind.
    const KIND: Kind;
    /// The manifest spec.
    type Spec: Clone
        + Debug
        + PartialEq
        + Serialize
        + DeserializeOwned
        + schemars::JsonSchema
        + Send
        + Sync
        + 'static;

    /// Fields that name a file (relative to the manifest) whose parsed content becomes
    /// another field: `(file field, content field)`, e.g. `("documentFile", "document")`.
    const FILE_FIELDS: &'static [(&'static str, &'static str)] = &[];

    /// The kind whose names this kind's names share (roles and service-linked roles live in
    /// one IAM name space).
    const NAME_SPACE: Kind = Self::KIND;

    /// Check one document; `pointer`s are relative to the document root. Rules between
    /// documents are [`DocKind::references`] and [`DocKind::resolve`].
    fn validate(name: &str, spec: &Self::Spec, cx: &mut DocCx, env: &EnvironmentView);

    /// Other documents this one names, which must exist.
    fn references(_spec: &Self::Spec) -> Vec<Reference> {
        Vec::new()
    }

    /// Statements this document adds to other resources.
    fn contributions(_name: &str, _spec: &Self::Spec, _env: &EnvironmentView) -> Vec<Contribution> {
        Vec::new()
    }

    /// Finish the spec once every document is known: names of other resources to ARNs,
    /// contributions merged in, set-wide quotas. The Environment's tags are merged by the
    /// caller through [`DocKind::tags_mut`].
    fn resolve(_name: &str, _spec: &mut Self::Spec, _cx: &mut ResolveCx) {}

    /// The spec's own tags, when the kind is tagged (the Environment's tags are merged in).
    fn tags_mut(_spec: &mut Self::Spec) -> Option<&mut Tags> {
        None
    }
}

/// How a document a resource holds takes part in access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldAs {
    /// What the holder (a role) may do: an inline policy.
    Identity,
    /// Who may assume the holder: a role's trust policy.
    Trust,
    /// Who may use the holder: a bucket or key policy.
    Resource,
    /// A managed policy's document: what the principals it is attached to may do, or the
    /// most they may do when it is their permissions boundary.
    Managed,
}

/// One policy document a resource holds.
#[derive(Debug, Clone)]
pub struct HeldDocument<'a> {
    /// What it is to a reviewer: `trust policy`, `inline policy NAME`, `bucket policy`.
    pub label: String,
    /// JSON pointer to it in the manifest document, e.g. `/spec/inlinePolicies/NAME`.
    pub pointer: String,
    /// How it takes part in access.
    pub held_as: HeldAs,
    /// The kind of policy document it is, for lint.
    pub policy_kind: mlspace_policy::PolicyKind,
    /// The document.
    pub document: &'a Value,
}

/// The policy documents a resource holds and the managed policies it names: what the
/// access analysis (escalation paths across a role's documents, the plan's access delta)
/// reads, the same way for a spec and for what AWS has.
#[derive(Debug, Clone, Default)]
pub struct Holdings<'a> {
    /// Documents held in place.
    pub documents: Vec<HeldDocument<'a>>,
    /// ARNs of the managed policies attached (a role's), with the pointer of each in the
    /// manifest document (empty for what AWS has).
    pub attached: Vec<(&'a str, String)>,
    /// ARN of the permissions boundary, with its pointer.
    pub boundary: Option<(&'a str, String)>,
}

/// The pure half of a resource kind: no IO, deterministic.
pub trait KindPlan: DocKind {
    /// What AWS has.
    type Observed: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// One executable step.
    type Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Top-level spec fields (as written in manifests) that `metadata.ignoreFields` may name.
    const IGNORABLE_FIELDS: &'static [&'static str] = &[];

    /// Where names must be unique between Environments of one account.
    const SCOPE: Scope = Scope::Account;

    /// Whether a create leaves the resource without its ownership tag for a moment (S3
    /// creates and tags a bucket in two requests): such creates are recorded in the
    /// inventory first, so a crash between the two cannot make the resource look foreign.
    const RECORD_BEFORE_CREATE: bool = false;

    /// Kinds whose deletes finish before this kind's deletes start (a policy is deleted after
    /// the roles that let go of it).
    const DELETE_AFTER: &'static [Kind] = &[];

    /// Whether observing needs the manifest's spec to find the resource (IAM, not the
    /// manifest, names a service-linked role; it is found by its service).
    const OBSERVE_BY_SPEC: bool = false;

    /// The ARN the resource has (or will have), when its kind has ARNs.
    fn arn(name: &str, spec: &Self::Spec, at: Place) -> Option<String>;

    /// The ARN of an observed resource.
    fn observed_arn(_observed: &Self::Observed) -> Option<String> {
        None
    }

    /// How CloudTrail events name the resource besides its ARN (its name as the service's
    /// API takes it): an event naming one of these is about this resource. None by
    /// default: such a kind is found by ARN only (its declared or observed ARN).
    fn event_objects(_name: &str, _spec: &Self::Spec) -> Vec<AwsObject> {
        Vec::new()
    }

    /// The attributes a reference (`{ref:KIND/NAME.ATTRIBUTE}`) may name.
    const ATTRIBUTES: &'static [&'static str] = &["arn", "name"];

    /// A value shaped like `attribute` of resource `name`, used only to check documents that
    /// reference it (a policy whose `Resource` is a key's ARN) before AWS has assigned it.
    /// `None` leaves the reference as written.
    fn stand_in(name: &str, attribute: &str, _at: Place) -> Option<String> {
        (attribute == "name").then(|| name.to_string())
    }

    /// The value of `attribute` of an observed resource.
    fn observed_attribute(
        name: &str,
        observed: &Self::Observed,
        attribute: &str,
    ) -> Option<String> {
        match attribute {
            "arn" => Self::observed_arn(observed),
            "name" => Some(name.to_string()),
            _ => None,
        }
    }

    /// The tags of an observed resource, when its kind has tags (ignore rules match them).
    fn observed_tags(_observed: &Self::Observed) -> Option<&Tags> {
        None
    }

    /// The policy documents a spec holds and the managed policies it names (none for
    /// kinds without policies).
    fn holdings(_spec: &Self::Spec) -> Holdings<'_> {
        Holdings::default()
    }

    /// The same for what AWS has; a setting not read is not held.
    fn observed_holdings(_observed: &Self::Observed) -> Holdings<'_> {
        Holdings::default()
    }

    /// Whether the manifest allows deleting the resource with its contents (a bucket's
    /// `forceDestroy`).
    fn force_destroy(_spec: &Self::Spec) -> bool {
        false
    }

    /// Overwrite `field` (one of [`Self::IGNORABLE_FIELDS`]) of a copy of the spec with what
    /// AWS has, so that [`Self::update`] sees no difference in it. The planner calls this for
    /// each ignored field before `update`; creation still uses the manifest's value.
    fn keep_observed(_spec: &mut Self::Spec, _observed: &Self::Observed, _field: &str) {}

    /// Resources that must exist before this one is created or changed.
    fn depends_on(_name: &str, _spec: &Self::Spec, _cx: &PlanCx) -> Vec<ResourceId> {
        Vec::new()
    }
    /// Whether the observed resource carries the ownership tag (or cannot be tagged and is
    /// therefore judged by other means).
    fn is_owned(observed: &Self::Observed) -> bool;
    /// Fields worth showing and steps to create the resource.
    fn create(name: &str, spec: &Self::Spec, cx: &PlanCx) -> Diff<Self::Op>;
    /// Differences and steps to make `observed` match `spec`; empty when in sync.
    /// Errors name fields that cannot change in place.
    fn update(
        name: &str,
        spec: &Self::Spec,
        observed: &Self::Observed,
        cx: &PlanCx,
    ) -> Result<Diff<Self::Op>, Vec<PlanError>>;
    /// Steps to delete the resource, dependents first (detach, empty, then delete).
    fn delete(name: &str, observed: &Self::Observed) -> Vec<Self::Op>;
    /// Steps to delete the resource with its contents, where the manifest allowed it
    /// (a bucket's `forceDestroy`). Most kinds have no contents.
    fn force_delete(name: &str, observed: &Self::Observed) -> Vec<Self::Op> {
        Self::delete(name, observed)
    }
    /// Steps that hand the resource back: remove the ownership tag, change nothing else
    /// (the `retain` deletion policy).
    fn release(name: &str, observed: &Self::Observed) -> Vec<Self::Op>;
}

/// The `import` half of a resource kind (its folder's `import.rs`): the manifest spec
/// that describes a resource AWS has.
pub trait Import: KindPlan {
    /// The manifest spec that describes `observed` as it is (the `import` command): the
    /// ownership tag, AWS defaults and what the Environment ignores are left out, and a
    /// setting the manifest cannot express exactly is left out too (unmanaged), so that
    /// adopting the resource changes nothing but its ownership tag.
    fn import(name: &str, observed: &Self::Observed, cx: &PlanCx) -> Self::Spec;
}

/// Glue between a document kind and the registry's enums; generated, never written by hand.
pub trait Registered: DocKind {
    /// Wrap a spec into the registry's enum.
    fn wrap(spec: Self::Spec) -> ResourceSpec;
    /// This kind's spec, if `s` is one.
    fn spec(s: &ResourceSpec) -> Option<&Self::Spec>;
    /// This kind's spec, mutably.
    fn spec_mut(s: &mut ResourceSpec) -> Option<&mut Self::Spec>;
}

/// Glue between a resource kind and the registry's enums; generated, never written by hand.
pub trait ResourceKind: KindPlan + Import + Registered {
    /// Wrap a step for the plan.
    fn step(op: Self::Op) -> Step;
    /// This kind's observed resources.
    fn observed(o: &Observed) -> &BTreeMap<String, Self::Observed>;
    /// This kind's observed resources, mutably.
    fn observed_mut(o: &mut Observed) -> &mut BTreeMap<String, Self::Observed>;
}

/// Something done once per resource kind, with its types ([`super::visit_resource_kinds`]).
pub trait ResourceVisitor {
    /// Called for each resource kind, in registry order.
    fn visit<K: ResourceKind>(&mut self);
}

/// Something done for one kind chosen at run time ([`super::with_kind`]).
pub trait KindFn<R> {
    /// For a document kind that is not a resource.
    fn document<K: Registered>(self) -> R;
    /// For a resource kind (by default as for any document kind).
    fn resource<K: ResourceKind>(self) -> R
    where
        Self: Sized,
    {
        self.document::<K>()
    }
}

/// What the registry knows of a kind as plain values, for code that does not need its
/// types (validation of headers, the inventory, the executor's ordering).
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// Whether it is an AWS resource of its own (planned, applied, imported).
    pub resource: bool,
    /// See [`DocKind::NAME_SPACE`].
    pub name_space: Kind,
    /// See [`DocKind::FILE_FIELDS`].
    pub file_fields: &'static [(&'static str, &'static str)],
    /// See [`KindPlan::IGNORABLE_FIELDS`] (none for documents).
    pub ignorable_fields: &'static [&'static str],
    /// See [`KindPlan::SCOPE`].
    pub scope: Scope,
    /// See [`KindPlan::RECORD_BEFORE_CREATE`].
    pub record_before_create: bool,
    /// See [`KindPlan::DELETE_AFTER`].
    pub delete_after: &'static [Kind],
    /// See [`KindPlan::ATTRIBUTES`] (none for documents).
    pub attributes: &'static [&'static str],
}

impl KindInfo {
    /// The Environment document.
    pub const ENVIRONMENT: KindInfo = KindInfo {
        kind: Kind::Environment,
        resource: false,
        name_space: Kind::Environment,
        file_fields: &[],
        ignorable_fields: &[],
        scope: Scope::Account,
        record_before_create: false,
        delete_after: &[],
        attributes: &[],
    };

    /// The info of a resource kind.
    pub fn of_resource<K: KindPlan>() -> KindInfo {
        KindInfo {
            kind: K::KIND,
            resource: true,
            name_space: K::NAME_SPACE,
            file_fields: K::FILE_FIELDS,
            ignorable_fields: K::IGNORABLE_FIELDS,
            scope: K::SCOPE,
            record_before_create: K::RECORD_BEFORE_CREATE,
            delete_after: K::DELETE_AFTER,
            attributes: K::ATTRIBUTES,
        }
    }

    /// The info of a document kind that is not a resource.
    pub fn of_document<K: DocKind>() -> KindInfo {
        KindInfo {
            kind: K::KIND,
            resource: false,
            name_space: K::NAME_SPACE,
            file_fields: K::FILE_FIELDS,
            ..KindInfo::ENVIRONMENT
        }
    }
}

/// What every kind's planner may know besides the resource itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanCx {
    /// AWS partition.
    pub partition: String,
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// The Environment's ignore rules.
    pub ignore: Vec<IgnoreRule>,
    /// The Environment's `ignoreTags`: tag key prefixes left to other tools.
    pub ignore_tags: Vec<String>,
    /// Every resource of the manifests, with its ARN when it has one (for dependencies).
    pub declared: Declared,
    /// Declared ARN → resource.
    pub by_arn: BTreeMap<String, ResourceId>,
}

impl PlanCx {
    /// A context for the Environment `env`, with nothing declared yet.
    pub fn for_environment(env: &EnvironmentView) -> PlanCx {
        PlanCx {
            partition: env.partition.clone(),
            account: env.account.clone(),
            region: env.region.clone(),
            ignore: env.ignore.clone(),
            ignore_tags: env.ignore_tags.clone(),
            ..PlanCx::default()
        }
    }

    /// Where names resolve to ARNs.
    pub fn place(&self) -> Place<'_> {
        Place {
            partition: &self.partition,
            account: &self.account,
            region: &self.region,
        }
    }

    /// Declare a resource (and its ARN, when known).
    pub fn declare(&mut self, kind: Kind, name: &str, arn: Option<String>) {
        if let Some(a) = &arn {
            self.by_arn.insert(a.clone(), (kind, name.to_string()));
        }
        self.declared.insert((kind, name.to_string()), arn);
    }

    /// Whether the manifests declare `kind` `name`.
    pub fn is_declared(&self, kind: Kind, name: &str) -> bool {
        self.declared.contains_key(&(kind, name.to_string()))
    }

    /// The ARN of a declared resource.
    pub fn arn_of(&self, kind: Kind, name: &str) -> Option<&str> {
        self.declared
            .get(&(kind, name.to_string()))
            .and_then(|a| a.as_deref())
    }

    /// The declared resource of kind `kind` with this ARN.
    pub fn named_by_arn(&self, kind: Kind, arn: &str) -> Option<&str> {
        self.by_arn
            .get(arn)
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
    }

    /// Whether an object (a policy attached to a role, an inline policy, a resource) is
    /// ignored by the Environment's rules.
    pub fn ignored(&self, name: &str, tags: Option<&Tags>) -> bool {
        self.ignore.iter().any(|r| r.matches(name, tags))
    }

    /// [`Self::ignored`] for a policy ARN (the name is its last path segment).
    pub fn ignored_arn(&self, arn: &str) -> bool {
        self.ignored(arn.rsplit('/').next().unwrap_or(arn), None)
    }

    /// The desired tags of a resource: its own (Environment's merged in) plus ownership.
    pub fn desired_tags(&self, own: &Tags) -> Tags {
        let mut t = own.clone();
        t.insert(OWNERSHIP_TAG.into(), OWNERSHIP_VALUE.into());
        t
    }

    /// Whether the tag `key` is left to other tools (`ignoreTags`).
    pub fn is_ignored_tag(&self, key: &str) -> bool {
        self.ignore_tags.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// Observed tags without those left to other tools (unless `desired` sets them): what
    /// the desired tags are compared with.
    pub fn managed_tags(&self, observed: &Tags, desired: &Tags) -> Tags {
        observed
            .iter()
            .filter(|(k, _)| desired.contains_key(*k) || !self.is_ignored_tag(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Whether tags mark a resource as ours.
pub fn has_ownership_tag(tags: &Tags) -> bool {
    tags.get(OWNERSHIP_TAG).map(String::as_str) == Some(OWNERSHIP_VALUE)
}

/// Tags as a manifest writes them: the ownership tag and the `aws:` tags (which AWS sets
/// and nobody else may) left out.
pub fn own_tags(tags: &Tags) -> Tags {
    tags.iter()
        .filter(|(k, _)| k.as_str() != OWNERSHIP_TAG && !k.to_ascii_lowercase().starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
