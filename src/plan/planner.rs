//! The planner: desired + observed → plan. Pure and deterministic.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Change, Plan, PlanError, Removal, RemovalKind, ResourceId};
use crate::access::{resource_access, AccessSummary, Side};
use crate::kinds::common::{ReconcileMode, RECONCILE_ANNOTATION};
use crate::kinds::{
    visit_resource_kinds, Kind, Observed, PlanCx, ResourceKind, ResourceSpec, ResourceVisitor,
};
use crate::manifest::DesiredState;
use crate::syntax::refs::{self, Ref};

/// Everything the planner reads.
pub struct PlanInput<'a> {
    /// The manifests' desired state.
    pub desired: &'a DesiredState,
    /// What AWS has.
    pub observed: &'a Observed,
    /// Resources that left the manifests and how they go (chosen by the caller from the
    /// inventory: prune, retain, forceDestroy).
    pub removals: &'a [Removal],
    /// Kinds that could not be observed: their resources are left out of the plan.
    pub skip_kinds: &'a BTreeSet<crate::kinds::Kind>,
    /// Resources an apply began creating (so says their inventory entry): ours even without
    /// the ownership tag, which a kill between CreateBucket and PutBucketTagging keeps off.
    pub creating: &'a BTreeSet<ResourceId>,
}

/// The planning context derived from the desired state: the Environment and every
/// resource the manifests declare, with its ARN.
pub fn plan_cx(desired: &DesiredState) -> PlanCx {
    let mut cx = PlanCx::for_environment(&desired.environment);
    for r in &desired.resources {
        let arn = r.spec.arn(&r.name, cx.place());
        cx.declare(r.kind, &r.name, arn);
    }
    cx
}

/// Compute the plan.
pub fn plan(input: &PlanInput) -> Plan {
    plan_scoped(input, None)
}

/// The resources a targeted reconcile of `only` observes and plans: those of `only` the
/// manifests declare, and what planning them reads, transitively (the resources they depend
/// on, such as a role's managed policies and boundary, and those their references name; then
/// what those depend on and name, such as the key a policy's document names by reference).
/// Each is observed in full, so its plan is the one a whole reconcile would make.
pub fn scope_of(
    desired: &DesiredState,
    cx: &PlanCx,
    only: &BTreeSet<ResourceId>,
) -> BTreeSet<ResourceId> {
    let by_id: BTreeMap<ResourceId, &crate::manifest::Resource> = desired
        .resources
        .iter()
        .filter(|r| r.kind.is_resource())
        .map(|r| ((r.kind, r.name.clone()), r))
        .collect();
    let mut scope = BTreeSet::new();
    let mut next: Vec<ResourceId> = only.iter().cloned().collect();
    while let Some(id) = next.pop() {
        // Only what the manifests declare: a dependency named by ARN is not ours to plan.
        let Some(r) = by_id.get(&id) else {
            continue;
        };
        if !scope.insert(id) {
            continue;
        }
        next.extend(r.spec.depends_on(&r.name, cx));
        next.extend(
            r.refs
                .iter()
                .filter_map(|rf| Some((Kind::parse(&rf.kind)?, rf.name.clone()))),
        );
    }
    scope
}

/// Compute the plan of the resources of `only` alone (all of them when `None`). The
/// observation must hold every resource of `only` ([`scope_of`]); nothing else is planned,
/// so nothing outside it can look absent, and no removal is planned unless the caller
/// passes one.
pub fn plan_scoped(input: &PlanInput, only: Option<&BTreeSet<ResourceId>>) -> Plan {
    struct Each<'a> {
        input: &'a PlanInput<'a>,
        only: Option<&'a BTreeSet<ResourceId>>,
        cx: PlanCx,
        out: Planned,
    }
    impl ResourceVisitor for Each<'_> {
        fn visit<K: ResourceKind>(&mut self) {
            plan_kind::<K>(self.input, self.only, &self.cx, &mut self.out);
        }
    }
    let mut each = Each {
        input,
        only,
        cx: plan_cx(input.desired),
        out: Planned::default(),
    };
    visit_resource_kinds(&mut each);
    let Planned {
        mut changes,
        errors,
        used,
    } = each.out;
    let access = access_of(input, &each.cx, &mut changes, &used);
    let mut plan = Plan::new(order(changes), errors);
    plan.access = access;
    plan
}

/// What planning the kinds produced.
#[derive(Default)]
struct Planned {
    changes: Vec<Change>,
    errors: Vec<PlanError>,
    /// The spec each create or update was planned from (references resolved, ignored
    /// fields as AWS has them): what the access delta compares with AWS.
    used: BTreeMap<ResourceId, ResourceSpec>,
}

/// Fill in each change's access delta; the plan-level summary, when some change touches
/// a resource that holds policies.
fn access_of(
    input: &PlanInput,
    cx: &PlanCx,
    changes: &mut [Change],
    used: &BTreeMap<ResourceId, ResourceSpec>,
) -> Option<AccessSummary> {
    let old = Side::of_observed(input.observed);
    let specs = input.desired.resources.iter().map(|r| {
        let id = (r.kind, r.name.clone());
        (r.kind, r.name.as_str(), used.get(&id).unwrap_or(&r.spec))
    });
    let new = Side::of_specs(specs, cx.place());
    let mut touched = false;
    for c in changes.iter_mut() {
        if !matches!(c.action, Action::Create | Action::Update | Action::Delete) {
            continue;
        }
        let id = (c.kind, c.name.clone());
        if old.resources.contains_key(&id) || new.resources.contains_key(&id) {
            touched = true;
            c.access = resource_access(&id, &old, &new);
        }
    }
    touched.then(|| AccessSummary::of(changes.iter().flat_map(|c| &c.access)))
}

fn plan_kind<K: ResourceKind>(
    input: &PlanInput,
    only: Option<&BTreeSet<ResourceId>>,
    cx: &PlanCx,
    out: &mut Planned,
) {
    let Planned {
        changes,
        errors,
        used,
    } = out;
    if input.skip_kinds.contains(&K::KIND) {
        return;
    }
    let observed = K::observed(input.observed);
    for r in input.desired.resources.iter().filter(|r| r.kind == K::KIND) {
        if only.is_some_and(|o| !o.contains(&(K::KIND, r.name.clone()))) {
            continue;
        }
        let Some(spec) = K::spec(&r.spec) else {
            continue;
        };
        let mode = ReconcileMode::of(&r.annotations);
        if mode == ReconcileMode::Disabled {
            changes.push(Change {
                kind: K::KIND,
                name: r.name.clone(),
                action: Action::Skip,
                fields: vec![],
                reason: Some(format!(
                    "left alone: metadata.annotations {RECONCILE_ANNOTATION}: disabled"
                )),
                access: vec![],
                steps: vec![],
                depends_on: vec![],
            });
            continue;
        }
        // References take the values AWS has (or, for ARNs, the manifests give); the rest
        // stay as written and are filled in by the executor once their targets exist.
        let resolved = with_refs_resolved::<K>(spec, &r.refs, input.observed, cx);
        let spec = resolved.as_ref().unwrap_or(spec);
        let mut depends_on = K::depends_on(&r.name, spec, cx);
        for rf in &r.refs {
            if let Some(kind) = Kind::parse(&rf.kind) {
                let id = (kind, rf.name.clone());
                if !depends_on.contains(&id) {
                    depends_on.push(id);
                }
            }
        }
        let adopt = r
            .annotations
            .get(crate::kinds::common::ADOPT_ANNOTATION)
            .map(String::as_str)
            == Some("true")
            || input.creating.contains(&(K::KIND, r.name.clone()));
        let mut change = Change {
            kind: K::KIND,
            name: r.name.clone(),
            action: Action::NoOp,
            fields: vec![],
            reason: None,
            access: vec![],
            steps: vec![],
            depends_on,
        };
        match observed.get(&r.name) {
            None => {
                let (fields, ops) = K::create(&r.name, spec, cx);
                used.insert((K::KIND, r.name.clone()), K::wrap(spec.clone()));
                change.action = Action::Create;
                change.fields = fields;
                change.steps = ops.into_iter().map(K::step).collect();
            }
            Some(o) if !K::is_owned(o) && !adopt => {
                change.action = Action::Conflict;
                change.reason = Some(format!(
                    "exists without the ownership tag {}={}; left unchanged (set metadata.annotations {}: \"true\" to take it over)",
                    crate::kinds::common::OWNERSHIP_TAG,
                    crate::kinds::common::OWNERSHIP_VALUE,
                    crate::kinds::common::ADOPT_ANNOTATION
                ));
            }
            Some(o) => match K::update(&r.name, &kept_observed::<K>(spec, o, r), o, cx) {
                Ok((fields, ops)) if fields.is_empty() && ops.is_empty() => {}
                Ok((fields, ops)) => {
                    let kept = kept_observed::<K>(spec, o, r).into_owned();
                    used.insert((K::KIND, r.name.clone()), K::wrap(kept));
                    change.action = Action::Update;
                    change.fields = fields;
                    change.steps = ops.into_iter().map(K::step).collect();
                }
                Err(mut e) => {
                    errors.append(&mut e);
                    continue;
                }
            },
        }
        if mode == ReconcileMode::Observe {
            observe_only(&mut change, used);
        }
        changes.push(change);
    }
    for rm in input.removals.iter().filter(|r| r.id.0 == K::KIND) {
        let name = &rm.id.1;
        if input
            .desired
            .resources
            .iter()
            .any(|r| r.kind == K::KIND && &r.name == name)
        {
            continue;
        }
        // Only what is still ours goes: a resource someone else took over is left alone,
        // and so is one the Environment's ignore rules match, by name or by its tags.
        let Some(o) = observed.get(name).filter(|o| K::is_owned(o)) else {
            continue;
        };
        if cx.ignored(name, K::observed_tags(o)) {
            continue;
        }
        let (action, ops) = match rm.how {
            RemovalKind::Delete => (Action::Delete, K::delete(name, o)),
            RemovalKind::ForceDelete => (Action::Delete, K::force_delete(name, o)),
            RemovalKind::Release => (Action::Forget, K::release(name, o)),
        };
        changes.push(Change {
            kind: K::KIND,
            name: name.clone(),
            action,
            fields: vec![],
            reason: None,
            access: vec![],
            steps: ops.into_iter().map(K::step).collect(),
            depends_on: vec![],
        });
    }
}

/// A change of a resource annotated `mlspace-gitops/reconcile: observe`: its drift is
/// reported (action `drift`, the fields as planned) and nothing is written.
fn observe_only(change: &mut Change, used: &mut BTreeMap<ResourceId, ResourceSpec>) {
    let why = match change.action {
        Action::Create => "missing from AWS",
        Action::Update => "differs from the manifests",
        _ => return,
    };
    used.remove(&(change.kind, change.name.clone()));
    change.action = Action::Drift;
    change.steps.clear();
    change.reason = Some(format!(
        "{why}; not written: metadata.annotations {RECONCILE_ANNOTATION}: observe"
    ));
}

/// The value a reference has now: a name, an ARN the manifests give, or an attribute AWS
/// has; `None` while AWS has not assigned it.
pub fn ref_value(rf: &Ref, observed: &Observed, cx: &PlanCx) -> Option<String> {
    let kind = Kind::parse(&rf.kind)?;
    match rf.attribute.as_str() {
        "name" => Some(rf.name.clone()),
        "arn" => cx
            .arn_of(kind, &rf.name)
            .map(str::to_string)
            .or_else(|| observed.attribute(kind, &rf.name, "arn")),
        other => observed.attribute(kind, &rf.name, other),
    }
}

/// `spec` with its references replaced by their values where known, or `None` when it has
/// none to replace.
fn with_refs_resolved<K: ResourceKind>(
    spec: &K::Spec,
    refs: &[Ref],
    observed: &Observed,
    cx: &PlanCx,
) -> Option<K::Spec> {
    if refs.is_empty() {
        return None;
    }
    let mut v = serde_json::to_value(spec).ok()?;
    if !refs::substitute(&mut v, &|rf| ref_value(rf, observed, cx)) {
        return None;
    }
    // Strings replaced by strings: the spec's own type reads it back.
    serde_json::from_value(v).ok()
}

/// The spec to update against: the manifest's, with every field of `metadata.ignoreFields`
/// taken from what AWS has, so ignored fields are neither drift nor a step.
fn kept_observed<'a, K: ResourceKind>(
    spec: &'a K::Spec,
    observed: &K::Observed,
    r: &crate::manifest::Resource,
) -> Cow<'a, K::Spec> {
    if r.ignore_fields.is_empty() {
        return Cow::Borrowed(spec);
    }
    let mut kept = spec.clone();
    for f in &r.ignore_fields {
        K::keep_observed(&mut kept, observed, f);
    }
    Cow::Owned(kept)
}

/// Sort changes into a deterministic apply order: creates and updates by dependency (then
/// kind, then name), deletes after them in reverse kind order.
fn order(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let (deletes, rest): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| matches!(c.action, Action::Delete | Action::Forget));
    let mut out: Vec<Change> = Vec::with_capacity(rest.len() + deletes.len());
    let mut placed: BTreeSet<ResourceId> = BTreeSet::new();
    let ids: BTreeSet<ResourceId> = rest.iter().map(|c| (c.kind, c.name.clone())).collect();
    let mut pending = rest;
    // Kahn's algorithm, one pass per dependency level; a cycle falls back to name order.
    while !pending.is_empty() {
        let (ready, waiting): (Vec<Change>, Vec<Change>) = pending.into_iter().partition(|c| {
            c.depends_on
                .iter()
                .all(|d| placed.contains(d) || !ids.contains(d))
        });
        if ready.is_empty() {
            out.extend(waiting);
            break;
        }
        placed.extend(ready.iter().map(|c| (c.kind, c.name.clone())));
        out.extend(ready);
        pending = waiting;
    }
    let mut deletes = deletes;
    deletes.sort_by(|a, b| {
        (std::cmp::Reverse(a.kind), &a.name).cmp(&(std::cmp::Reverse(b.kind), &b.name))
    });
    out.extend(deletes);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::kinds::common::{OWNERSHIP_TAG, OWNERSHIP_VALUE};
    use crate::kinds::managed_policy::diff::ManagedPolicyObserved;
    use crate::kinds::role::diff::RoleObserved;
    use crate::kinds::Kind;
    use crate::plan::Action;

    const ENV: &str = "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: t}\nspec: {region: us-east-1, account: \"123456789012\"}\n";

    fn desired(resources: &str) -> DesiredState {
        loaded(resources).desired
    }

    fn loaded(resources: &str) -> crate::manifest::Loaded {
        crate::manifest::compile_text(&format!("{ENV}---\n{resources}"))
    }

    fn policy(ignore: &str) -> DesiredState {
        desired(&format!(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: p, ignoreFields: [{ignore}]}}\nspec:\n  document: {{Version: \"2012-10-17\", Statement: [{{Effect: Deny, Action: \"sagemaker:CreateTrainingJob\", Resource: \"*\"}}]}}\n  tags: {{team: ml}}\n"
        ))
    }

    fn owned(tags: &[(&str, &str)]) -> crate::kinds::common::Tags {
        let mut t: crate::kinds::common::Tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        t.insert(OWNERSHIP_TAG.into(), OWNERSHIP_VALUE.into());
        t
    }

    /// What MLSpace leaves after re-versioning an instance-constraint policy.
    fn reversioned() -> Value {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*", "Condition": {"ForAnyValue:StringNotLike": {"sagemaker:InstanceTypes": ["ml.t3.*"]}}}]})
    }

    fn observed_policy(tags: &[(&str, &str)]) -> Observed {
        let mut o = Observed::default();
        o.ManagedPolicy.insert(
            "p".into(),
            ManagedPolicyObserved {
                arn: "arn:aws:iam::123456789012:policy/p".into(),
                path: "/".into(),
                description: None,
                document: reversioned(),
                default_version: "v2".into(),
                versions: vec!["v1".into(), "v2".into()],
                tags: owned(tags),
            },
        );
        o
    }

    fn run(desired: &DesiredState, observed: &Observed) -> crate::plan::Plan {
        plan(&PlanInput {
            desired,
            observed,
            removals: &[],
            skip_kinds: &BTreeSet::new(),
            creating: &BTreeSet::new(),
        })
    }

    /// Regression (bucket created but killed before its ownership tag): what an apply began
    /// creating is ours, so a missing ownership tag is added, not a conflict.
    #[test]
    fn an_untagged_resource_an_apply_began_creating_is_ours() {
        let mut observed = observed_policy(&[("team", "ml")]);
        let p = observed.ManagedPolicy.get_mut("p").unwrap();
        p.tags.remove(OWNERSHIP_TAG);
        let p = run(&policy("document"), &observed);
        assert_eq!(p.changes[0].action, Action::Conflict);

        let creating = BTreeSet::from([(Kind::ManagedPolicy, "p".to_string())]);
        let p = plan(&PlanInput {
            desired: &policy("document"),
            observed: &observed,
            removals: &[],
            skip_kinds: &BTreeSet::new(),
            creating: &creating,
        });
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(
            p.changes[0].fields[0].field,
            format!("spec.tags.{OWNERSHIP_TAG}")
        );
    }

    fn annotated(mode: &str) -> DesiredState {
        desired(&format!(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: p, annotations: {{mlspace-gitops/reconcile: {mode}}}}}\nspec:\n  document: {{Version: \"2012-10-17\", Statement: [{{Effect: Deny, Action: \"sagemaker:CreateTrainingJob\", Resource: \"*\"}}]}}\n  tags: {{team: ml}}\n"
        ))
    }

    #[test]
    fn a_disabled_resource_is_skipped_whatever_aws_has() {
        let d = annotated("disabled");
        for observed in [observed_policy(&[("team", "data")]), Observed::default()] {
            let p = run(&d, &observed);
            assert_eq!(p.changes.len(), 1, "{p}");
            let c = &p.changes[0];
            assert_eq!(c.action, Action::Skip);
            assert!(c.steps.is_empty() && c.fields.is_empty());
            assert!(
                c.reason
                    .as_deref()
                    .unwrap()
                    .contains("mlspace-gitops/reconcile: disabled"),
                "{c:?}"
            );
            assert!(!p.has_changes());
            assert_eq!((p.summary.skip, p.summary.update), (1, 0));
            assert!(p.to_string().contains("1 skipped"), "{p}");
        }
        // Never removed while annotated: it is in the manifests, so a removal the caller
        // passes for it is not planned.
        let removals = [Removal {
            id: (Kind::ManagedPolicy, "p".into()),
            how: RemovalKind::Delete,
        }];
        let p = plan(&PlanInput {
            desired: &d,
            observed: &observed_policy(&[]),
            removals: &removals,
            skip_kinds: &BTreeSet::new(),
            creating: &BTreeSet::new(),
        });
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].action, Action::Skip);
    }

    #[test]
    fn an_observed_resource_reports_its_drift_and_writes_nothing() {
        let d = annotated("observe");
        let p = run(&d, &observed_policy(&[("team", "data")]));
        let c = &p.changes[0];
        assert_eq!(c.action, Action::Drift);
        assert!(c.steps.is_empty(), "observed only: no step");
        let fields: BTreeSet<&str> = c.fields.iter().map(|f| f.field.as_str()).collect();
        assert!(fields.contains("spec.tags.team"), "{fields:?}");
        assert!(c.reason.as_deref().unwrap().contains("differs"), "{c:?}");
        assert!(!p.has_changes());
        assert_eq!(p.actionable().count(), 0);
        assert!(c.access.is_empty());
        // Missing: reported, not created.
        let p = run(&d, &Observed::default());
        assert_eq!(p.changes[0].action, Action::Drift);
        assert!(p.changes[0].steps.is_empty());
        assert!(p.changes[0].reason.as_deref().unwrap().contains("missing"));
        // In sync: a no-op like any other.
        let mut same = observed_policy(&[("team", "ml")]);
        same.ManagedPolicy.get_mut("p").unwrap().document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"}]});
        let p = run(&d, &same);
        assert_eq!(p.changes[0].action, Action::NoOp, "{p}");
        // Someone else's: still a conflict.
        let mut theirs = observed_policy(&[("team", "data")]);
        theirs
            .ManagedPolicy
            .get_mut("p")
            .unwrap()
            .tags
            .remove(OWNERSHIP_TAG);
        assert_eq!(run(&d, &theirs).changes[0].action, Action::Conflict);
    }

    #[test]
    fn the_reconcile_annotation_takes_two_values_on_resources_only() {
        use crate::kinds::common::ReconcileMode;
        let errors = |doc: &str| -> String {
            let file: std::sync::Arc<std::path::Path> = std::path::Path::new("m.yaml").into();
            let (mut docs, mut diags) = (Vec::new(), crate::manifest::diag::Diagnostics::default());
            crate::manifest::parse_file(&file, &format!("{ENV}---\n{doc}"), &mut docs, &mut diags);
            struct NoFiles;
            impl crate::manifest::FileReader for NoFiles {
                fn read(&self, _: &std::path::Path) -> Result<String, crate::manifest::ReadError> {
                    Err(std::io::Error::from(std::io::ErrorKind::NotFound).into())
                }
            }
            match crate::manifest::compile(docs, diags, &NoFiles) {
                Err(crate::manifest::ManifestError::Invalid(d)) => d.to_string(),
                other => panic!("{doc}: not refused: {:?}", other.map(|_| ())),
            }
        };
        for bad in ["paused", "Disabled", "\"\""] {
            let e = errors(&format!(
                "apiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {{name: bkt, annotations: {{mlspace-gitops/reconcile: {bad}}}}}\nspec: {{}}\n"
            ));
            assert!(
                e.contains("m.yaml:8:")
                    && e.contains("metadata.annotations[\"mlspace-gitops/reconcile\"]")
                    && e.contains("must be `disabled` or `observe`"),
                "{bad}: {e}"
            );
        }
        let e = errors("apiVersion: mlspace-gitops/v1\nkind: EcrAccess\nmetadata: {name: e, annotations: {mlspace-gitops/reconcile: disabled}}\nspec: {access: read, repositories: [r1], grantTo: [\"arn:aws:iam::123456789012:role/x\"]}\n");
        assert!(e.contains("applies to resources"), "{e}");
        assert_eq!(
            ReconcileMode::of(&annotated("observe").resources[0].annotations),
            ReconcileMode::Observe
        );
        assert_eq!(
            ReconcileMode::of(&policy("").resources[0].annotations),
            ReconcileMode::Enabled
        );
    }

    #[test]
    fn ignore_fields_reach_the_resolved_resource() {
        let d = policy("document");
        assert_eq!(d.resources[0].ignore_fields, ["document"]);
        assert_eq!(
            serde_json::to_value(&d.resources[0]).unwrap()["ignoreFields"],
            json!(["document"])
        );
        // Not rendered when empty.
        let d = policy("");
        assert!(serde_json::to_value(&d.resources[0])
            .unwrap()
            .get("ignoreFields")
            .is_none());
    }

    /// Regression: a policy MLSpace re-versions at runtime was planned as document drift
    /// and re-versioned back on every reconcile.
    #[test]
    fn an_ignored_document_is_neither_drift_nor_a_step() {
        let observed = observed_policy(&[("team", "ml")]);
        let p = run(&policy("document"), &observed);
        assert!(!p.has_changes(), "{p}");
        assert_eq!(p.changes[0].action, Action::NoOp);

        let p = run(&policy(""), &observed);
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(p.changes[0].fields[0].field, "spec.document");
    }

    #[test]
    fn other_fields_still_converge_when_one_is_ignored() {
        let p = run(&policy("document"), &observed_policy(&[("team", "data")]));
        assert_eq!(p.changes[0].action, Action::Update);
        let fields: Vec<&str> = p.changes[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["spec.tags.team"]);

        let p = run(
            &policy("document, tags"),
            &observed_policy(&[
                ("team", "data"),
                ("extra", "x"),
                ("aws:cloudformation:stack-name", "s"),
            ]),
        );
        assert!(!p.has_changes(), "{p}");
    }

    #[test]
    fn creation_uses_the_manifest_value_of_an_ignored_field() {
        let p = run(&policy("document"), &Observed::default());
        assert_eq!(p.changes[0].action, Action::Create);
        let doc = &p.changes[0].fields[0];
        assert_eq!(doc.field, "spec.document");
        assert_eq!(
            doc.new.as_ref().unwrap()["Statement"][0]["Action"],
            "sagemaker:CreateTrainingJob"
        );
        assert!(doc.new.as_ref().unwrap()["Statement"][0]
            .get("Condition")
            .is_none());
    }

    #[test]
    fn role_fields_left_to_aws() {
        let role = |ignore: &str| {
            desired(&format!(
                "apiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: r, ignoreFields: [{ignore}]}}\nspec:\n  assumeRolePolicy: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: \"sts:AssumeRole\"}}]}}\n  managedPolicies: [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n  inlinePolicies:\n    own: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:ListBucket\", Resource: \"*\"}}]}}\n  description: mine\n  maxSessionDuration: 7200\n  tags: {{team: ml}}\n"
            ))
        };
        let mut observed = Observed::default();
        observed.Role.insert(
            "r".into(),
            RoleObserved {
                arn: "arn:aws:iam::123456789012:role/r".into(),
                path: "/".into(),
                assume_role_policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
                description: Some("theirs".into()),
                max_session_duration: Some(3600),
                inline_policies: BTreeMap::new(),
                managed_policies: ["arn:aws:iam::aws:policy/PowerUserAccess".to_string()].into(),
                permissions_boundary: None,
                instance_profiles: BTreeSet::new(),
                tags: owned(&[("team", "data")]),
            },
        );
        let all = "assumeRolePolicy, managedPolicies, inlinePolicies, description, maxSessionDuration, tags";
        let p = run(&role(all), &observed);
        assert!(!p.has_changes(), "{p}");

        let p = run(&role(""), &observed);
        let fields: BTreeSet<&str> = p.changes[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        for f in [
            "spec.assumeRolePolicy",
            "spec.managedPolicies",
            "spec.inlinePolicies.own",
            "spec.description",
            "spec.maxSessionDuration",
            "spec.tags.team",
        ] {
            assert!(fields.contains(f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn bucket_settings_left_to_aws() {
        use crate::kinds::bucket::diff::{BucketObserved, Setting, Versioning};
        let bucket = |ignore: &str| {
            desired(&format!(
                "apiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {{name: bkt, ignoreFields: [{ignore}]}}\nspec:\n  versioning: true\n  policy: {{Version: \"2012-10-17\", Statement: [{{Effect: Deny, Principal: \"*\", Action: \"s3:*\", Resource: \"arn:aws:s3:::bkt/*\", Condition: {{Bool: {{aws:SecureTransport: \"false\"}}}}}}]}}\n  tags: {{team: ml}}\n"
            ))
        };
        let mut observed = Observed::default();
        observed.Bucket.insert(
            "bkt".into(),
            BucketObserved {
                tags: owned(&[("team", "data")]),
                versioning: Setting::Set(Versioning::Suspended),
                policy: Setting::Unset,
                ..BucketObserved::default()
            },
        );
        let p = run(&bucket("versioning, policy, tags"), &observed);
        assert!(!p.has_changes(), "{p}");
        let p = run(&bucket("versioning, policy"), &observed);
        let fields: Vec<&str> = p.changes[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["spec.tags.team"]);
        let p = run(&bucket(""), &observed);
        assert!(p.changes[0].fields.len() >= 3, "{p}");
    }

    #[test]
    fn ecr_statements_for_an_ignored_document_are_warned_about() {
        let ecr = "---\napiVersion: mlspace-gitops/v1\nkind: EcrAccess\nmetadata: {name: e}\nspec: {access: read, repositories: [r1], grantTo: [p]}\n";
        let policy = |ignore: &str| {
            format!(
                "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: p, ignoreFields: [{ignore}]}}\nspec:\n  document: {{Version: \"2012-10-17\", Statement: [{{Effect: Allow, Action: \"s3:ListBucket\", Resource: \"*\"}}]}}\n{ecr}"
            )
        };
        let warned = loaded(&policy("document")).warnings.to_string();
        assert!(
            warned.contains("spec.grantTo[0]: ManagedPolicy `p` ignores its document"),
            "{warned}"
        );
        let warned = loaded(&policy("tags")).warnings.to_string();
        assert!(!warned.contains("ignores its document"), "{warned}");
    }

    #[test]
    fn every_ignorable_field_is_a_spec_field() {
        let schema = crate::schema::manifest_schema();
        for kind in crate::kinds::Kind::ALL {
            for f in crate::kinds::ignorable_fields(*kind) {
                let def = format!("{kind}Spec");
                assert!(
                    schema["definitions"][&def]["properties"].get(*f).is_some(),
                    "{kind}: `{f}` is not a field of {def}"
                );
            }
        }
    }

    /// A targeted reconcile plans what it observed and nothing else: a resource outside its
    /// scope is absent from the observation, and must not be planned as a create.
    #[test]
    fn a_scoped_plan_covers_the_scope_and_nothing_outside_it() {
        let d = desired(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: p}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"{ref:Bucket/data.arn}/*\"}]}\n---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {name: r}\nspec:\n  assumeRolePolicy: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: \"sts:AssumeRole\"}]}\n  managedPolicies: [p, \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: data}\nspec: {}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: other}\nspec: {}\n",
        );
        let cx = plan_cx(&d);
        let id = |k: Kind, n: &str| (k, n.to_string());
        // The role needs its policy (not the AWS managed one), the policy the bucket it
        // names: planning the role's policy reads the bucket's ARN.
        let role_only = BTreeSet::from([id(Kind::Role, "r")]);
        assert_eq!(
            scope_of(&d, &cx, &role_only),
            BTreeSet::from([
                id(Kind::ManagedPolicy, "p"),
                id(Kind::Role, "r"),
                id(Kind::Bucket, "data")
            ])
        );
        let policy_only = BTreeSet::from([id(Kind::ManagedPolicy, "p")]);
        assert_eq!(
            scope_of(&d, &cx, &policy_only),
            BTreeSet::from([id(Kind::ManagedPolicy, "p"), id(Kind::Bucket, "data")])
        );
        // Unknown names are not in scope.
        assert!(scope_of(&d, &cx, &BTreeSet::from([id(Kind::Role, "gone")])).is_empty());

        // Nothing observed: a whole plan creates all four; the scoped one only the scope.
        let input = PlanInput {
            desired: &d,
            observed: &Observed::default(),
            removals: &[],
            skip_kinds: &BTreeSet::new(),
            creating: &BTreeSet::new(),
        };
        assert_eq!(plan(&input).summary.create, 4);
        let scope = scope_of(&d, &cx, &role_only);
        let p = plan_scoped(&input, Some(&scope));
        let planned: BTreeSet<ResourceId> =
            p.changes.iter().map(|c| (c.kind, c.name.clone())).collect();
        assert_eq!(planned, scope);
        assert_eq!(p.summary.create, 3);
        // Dependencies order a scoped plan too: the bucket, its policy, the role.
        let order: Vec<&str> = p.changes.iter().map(|c| c.name.as_str()).collect();
        assert!(
            order.iter().position(|n| *n == "p") < order.iter().position(|n| *n == "r"),
            "{order:?}"
        );
        // The bucket alone needs nothing else.
        assert_eq!(
            scope_of(&d, &cx, &BTreeSet::from([id(Kind::Bucket, "other")])),
            BTreeSet::from([id(Kind::Bucket, "other")])
        );
    }

    #[test]
    fn references_take_the_value_the_manifests_give_and_order_the_plan() {
        let d = desired(
            "apiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {name: reader}\nspec:\n  document: {Version: \"2012-10-17\", Statement: [{Effect: Allow, Action: \"s3:GetObject\", Resource: \"{ref:Bucket/data.arn}/*\"}]}\n---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {name: data}\nspec: {}\n",
        );
        assert_eq!(d.resources[0].refs.len(), 1);
        // Rendered as written.
        assert_eq!(
            d.resources[0].spec_value()["document"]["Statement"][0]["Resource"],
            json!("{ref:Bucket/data.arn}/*")
        );
        let p = run(&d, &Observed::default());
        let names: Vec<&str> = p.changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["data", "reader"], "the bucket first");
        let reader = &p.changes[1];
        assert_eq!(reader.depends_on, [(Kind::Bucket, "data".to_string())]);
        assert_eq!(
            reader.fields[0].new.as_ref().unwrap()["Statement"][0]["Resource"],
            json!("arn:aws:s3:::data/*")
        );
    }
}
