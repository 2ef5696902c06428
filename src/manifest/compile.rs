//! Compile parsed documents into the desired state: headers, the Environment,
//! placeholders, files named by documents, typed specs and each kind's rules, then the rules
//! between documents (duplicates, references) and resolution (names to ARNs, statements
//! granted by one document to another, the Environment's tags). Every problem is collected.
//! Pure: the only files read are the ones documents name, through a [`FileReader`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::diag::{field_path, Diagnostics, DocCx, SILENCE_ANNOTATION};
#[cfg(test)]
use super::load::parse_file;
use super::read::ReadError;
use super::yaml::{self, Loc, SourceMap};
use super::{template, DesiredState, Loaded, ManifestError, Resource, SourceDoc, API_VERSION};
use crate::access;
use crate::kinds::common::{
    merged_tags, report_finding, Metadata, ReconcileMode, RECONCILE_ANNOTATION,
};
use crate::kinds::core::{Declared, Received, Reference};
use crate::kinds::environment::{EnvironmentSpec, EnvironmentView};
use crate::kinds::{with_kind, Kind, KindFn, Registered, ResolveCx, ResourceSpec};
use crate::syntax::refs::{self, Ref};

/// Files a manifest refers to (`documentFile`, `assumeRolePolicyFile`), read on demand.
pub trait FileReader {
    /// Read `path` (already joined with the manifest's directory).
    fn read(&self, path: &Path) -> Result<String, ReadError>;

    /// Parse a file read with [`FileReader::read`]; a reader with a revision-wide budget
    /// charges it there.
    fn parse(&self, file: &Arc<Path>, text: &str) -> Result<Vec<yaml::Document>, yaml::YamlError> {
        yaml::parse_documents(file, text)
    }
}

/// A document after the header checks.
struct Doc {
    file: Arc<Path>,
    map: SourceMap,
    kind: Kind,
    metadata: Metadata,
    value: Value,
}

impl Doc {
    fn cx<'a>(&'a self, diags: &'a mut Diagnostics) -> DocCx<'a> {
        DocCx {
            map: &self.map,
            file: &self.file,
            diags,
        }
    }
    fn loc(&self, pointer: &str) -> Option<Loc> {
        self.map.value(pointer).cloned()
    }
}

/// Compile one YAML text (file `m.yaml`, no referenced files): the unit tests of other
/// stages build their desired states with it.
#[cfg(test)]
pub(crate) fn compile_text(text: &str) -> Loaded {
    struct NoFiles;
    impl FileReader for NoFiles {
        fn read(&self, _: &Path) -> Result<String, ReadError> {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound).into())
        }
    }
    let file: Arc<Path> = Arc::from(Path::new("m.yaml"));
    let (mut docs, mut diags) = (Vec::new(), Diagnostics::default());
    parse_file(&file, text, &mut docs, &mut diags);
    compile(docs, diags, &NoFiles).unwrap_or_else(|e| panic!("{e}: {e:?}"))
}

/// Turn parsed documents into the desired state, collecting every problem.
pub fn compile(
    sources: Vec<SourceDoc>,
    mut diags: Diagnostics,
    reader: &dyn FileReader,
) -> Result<Loaded, ManifestError> {
    // 1. Headers.
    let mut docs = Vec::new();
    for s in sources {
        if let Some(d) = check_header(s, &mut diags) {
            docs.push(d);
        }
    }

    // 2. The Environment.
    let env = environment(&docs, &mut diags);
    let vars = env.as_ref().map(|(spec, _)| spec.vars());
    // Documents are checked against an empty Environment when it is missing or invalid,
    // so that their own errors are reported too.
    let view = env.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();

    // 3. Placeholders, inlined files, typed specs, per-kind rules.
    let mut resources: Vec<(Doc, ResourceSpec)> = Vec::new();
    for mut d in docs.into_iter().filter(|d| d.kind != Kind::Environment) {
        if let Some(vars) = &vars {
            for (ptr, name) in template::resolve(&mut d.value, vars) {
                d.cx(&mut diags).error(&ptr, format_args!("unresolved placeholder `{{{name}}}`: add it to the Environment's spec.params"));
            }
            // metadata was typed before resolution; take the resolved name.
            if let Some(n) = d.value["metadata"]["name"].as_str() {
                d.metadata.name = n.to_string();
            }
        }
        inline_files(&mut d, vars.as_ref(), reader, &mut diags);
        // Documents are checked with stand-ins for the values AWS has not assigned yet (a
        // key's ARN in a policy's Resource); the spec keeps the references.
        let checked = with_stand_ins(&d.value["spec"], &view);
        let silenced = silenced_checks(&d.metadata);
        let mut cx = d.cx(&mut diags);
        let typed = Typed {
            cx: &mut cx,
            value: &d.value["spec"],
            checked: checked.as_ref(),
            name: &d.metadata.name,
            env: &view,
            silenced: &silenced,
        };
        if let Some(Some(spec)) = with_kind(d.kind, typed) {
            resources.push((d, spec));
        }
    }

    // 4. Rules between documents: duplicates, references by name, references to values
    // AWS assigns.
    check_duplicates(&resources, &mut diags);
    let value_refs = check_refs(&resources, &mut diags);
    let names: HashSet<(Kind, &str)> = resources
        .iter()
        .map(|(d, _)| (d.kind, d.metadata.name.as_str()))
        .collect();
    for (d, spec) in &resources {
        let refs = with_kind(spec.kind(), References(spec)).unwrap_or_default();
        for r in refs {
            if !names.contains(&(r.kind, r.name.as_str())) {
                d.cx(&mut diags).error(
                    &r.pointer,
                    format_args!(
                        "no {} named `{}` in the manifests{}",
                        r.kind,
                        r.name,
                        r.hint.unwrap_or("")
                    ),
                );
            }
        }
    }

    let Some((_, view)) = env else {
        return Err(ManifestError::Invalid(diags));
    };

    // 5. Resolve.
    let desired = resolve(view, resources, value_refs, &mut diags);
    if diags.has_errors() {
        return Err(ManifestError::Invalid(diags));
    }
    Ok(Loaded {
        desired,
        warnings: diags,
    })
}

/// The Environment document: exactly one, valid. `None` when it is missing or has errors
/// (which are reported); documents are then still checked, but nothing is resolved.
fn environment(
    docs: &[Doc],
    diags: &mut Diagnostics,
) -> Option<(EnvironmentSpec, EnvironmentView)> {
    let envs: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind == Kind::Environment)
        .collect();
    match envs.as_slice() {
        // A file that failed to parse may hold it: do not add a misleading error.
        [] if diags.has_errors() => None,
        [] => {
            diags.error(
                None,
                "no Environment document: exactly one is required per manifests directory",
            );
            None
        }
        [first, rest @ ..] => {
            for other in rest {
                let at = first
                    .loc("")
                    .map(|l| format!("{}:{}", l.file.display(), l.line))
                    .unwrap_or_default();
                other.cx(diags).error("/kind", format_args!("a second Environment; exactly one is allowed per directory (the first is at {at})"));
            }
            let mut cx = first.cx(diags);
            let spec = typed::<EnvironmentSpec>(&mut cx, &first.value["spec"], "/spec")?;
            // Only the Environment's own errors may stop placeholder resolution.
            let mut own = Diagnostics::default();
            spec.validate(&mut DocCx {
                map: &first.map,
                file: &first.file,
                diags: &mut own,
            });
            let ok = !own.has_errors();
            diags.extend(own);
            if !ok {
                return None;
            }
            let vars = spec.vars();
            let view = EnvironmentView {
                name: first.metadata.name.clone(),
                partition: spec.partition.clone(),
                region: spec.region.clone(),
                account: spec.account.clone(),
                params: spec
                    .params
                    .keys()
                    .map(|k| (k.clone(), vars[k].clone()))
                    .collect(),
                tags: spec.tags.clone(),
                prune: spec.prune,
                ignore: spec.ignore.clone(),
                ignore_tags: spec.ignore_tags.clone(),
                assume_role_arn: spec.resolved_assume_role_arn(),
                external_id: spec.external_id.clone(),
                event_queues: spec.event_queues(),
                source: first.loc("/metadata/name"),
            };
            Some((spec, view))
        }
    }
}

/// Type a document's spec as its kind's and run the kind's own rules.
struct Typed<'a, 'b> {
    cx: &'a mut DocCx<'b>,
    value: &'a Value,
    /// The spec with stand-ins for its references, when it has any: what is validated.
    checked: Option<&'a Value>,
    name: &'a str,
    env: &'a EnvironmentView,
    /// Checks the document's annotations silence.
    silenced: &'a [&'a str],
}

impl KindFn<Option<ResourceSpec>> for Typed<'_, '_> {
    fn document<K: Registered>(self) -> Option<ResourceSpec> {
        let spec = typed::<K::Spec>(self.cx, self.value, "/spec")?;
        // Strings replaced by strings: what typed above types again.
        let checked = match self.checked {
            Some(v) => serde_json::from_value::<K::Spec>(v.clone()).ok(),
            None => None,
        };
        let mark = self.cx.diags.len();
        K::validate(
            self.name,
            checked.as_ref().unwrap_or(&spec),
            self.cx,
            self.env,
        );
        self.cx.diags.silence_since(mark, self.silenced);
        Some(K::wrap(spec))
    }
}

/// `spec` with each reference replaced by a value of the right shape
/// ([`crate::kinds::stand_in`]), or `None` when it holds no reference.
fn with_stand_ins(spec: &Value, env: &EnvironmentView) -> Option<Value> {
    if refs::collect(spec).is_empty() {
        return None;
    }
    let at = crate::kinds::Place {
        partition: &env.partition,
        account: &env.account,
        region: &env.region,
    };
    let mut v = spec.clone();
    refs::substitute(&mut v, &|r| {
        crate::kinds::stand_in(Kind::parse(&r.kind)?, &r.name, &r.attribute, at)
    });
    Some(v)
}

/// Check every reference of every document: it parses, names a resource of the manifests
/// (not the document itself) and an attribute its kind has. Returns the references of each
/// document, by index.
fn check_refs(resources: &[(Doc, ResourceSpec)], diags: &mut Diagnostics) -> Vec<Vec<Ref>> {
    let names: HashSet<(Kind, &str)> = resources
        .iter()
        .map(|(d, _)| (d.kind, d.metadata.name.as_str()))
        .collect();
    let mut out = Vec::new();
    for (d, _) in resources {
        let mut found = Vec::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        refs::walk(&d.value["spec"], &mut |ptr, good, bad| {
            let ptr = format!("/spec{ptr}");
            for b in bad {
                problems.push((ptr.clone(), format!("`{}` {}", b.text, b.why)));
            }
            for r in good {
                let kind = Kind::parse(&r.kind).filter(|k| k.is_resource());
                let Some(kind) = kind else {
                    let kinds: Vec<&str> = Kind::RESOURCES.iter().map(|k| k.as_str()).collect();
                    problems.push((
                        ptr.clone(),
                        format!(
                            "`{}` names the kind `{}`; a reference names one of {}",
                            r.text(),
                            r.kind,
                            kinds.join(", ")
                        ),
                    ));
                    continue;
                };
                if kind == d.kind && r.name == d.metadata.name {
                    problems.push((
                        ptr.clone(),
                        format!("`{}` refers to this document itself", r.text()),
                    ));
                } else if !names.contains(&(kind, r.name.as_str())) {
                    problems.push((
                        ptr.clone(),
                        format!(
                            "`{}`: no {kind} named `{}` in the manifests",
                            r.text(),
                            r.name
                        ),
                    ));
                } else if !kind.info().attributes.contains(&r.attribute.as_str()) {
                    problems.push((
                        ptr.clone(),
                        format!(
                            "`{}`: {kind} has no attribute `{}`; it has {}",
                            r.text(),
                            r.attribute,
                            kind.info().attributes.join(", ")
                        ),
                    ));
                } else {
                    found.push(r.clone());
                }
            }
        });
        let mut cx = d.cx(diags);
        for (ptr, msg) in problems {
            cx.error(&ptr, msg);
        }
        found.sort();
        found.dedup();
        out.push(found);
    }
    out
}

/// The check ids a document's `lint.mlspace-gitops/CHECK-ID` annotations silence.
fn silenced_checks(metadata: &Metadata) -> Vec<&str> {
    metadata
        .annotations
        .keys()
        .filter_map(|k| k.strip_prefix(SILENCE_ANNOTATION))
        .collect()
}

/// Each silencing annotation names a known check that can be silenced, with a reason.
fn check_silencing(cx: &mut DocCx, metadata: &Metadata) {
    for (key, reason) in &metadata.annotations {
        let Some(id) = key.strip_prefix(SILENCE_ANNOTATION) else {
            continue;
        };
        let ptr = format!("/metadata/annotations/{}", yaml::escape_segment(key));
        match mlspace_policy::lint::check(id) {
            None => cx.key_error(
                &ptr,
                format_args!("`{id}` is not a lint check id (docs/lint.md lists them)"),
            ),
            Some(c) if c.id == "invalid-structure" => cx.key_error(
                &ptr,
                "`invalid-structure` cannot be silenced: IAM refuses such documents",
            ),
            Some(_) if reason.trim().is_empty() => cx.error(
                &ptr,
                format_args!("silencing `{id}` needs a reason: say why the finding is meant"),
            ),
            Some(_) => {}
        }
    }
}

/// `mlspace-gitops/reconcile` takes one of its values, and only on a resource.
fn check_reconcile(cx: &mut DocCx, kind: Option<Kind>, metadata: &Metadata) {
    let Some(value) = metadata.annotations.get(RECONCILE_ANNOTATION) else {
        return;
    };
    let ptr = format!(
        "/metadata/annotations/{}",
        yaml::escape_segment(RECONCILE_ANNOTATION)
    );
    if ReconcileMode::parse(value).is_none() {
        cx.error(
            &ptr,
            format_args!(
                "`{RECONCILE_ANNOTATION}` must be `disabled` or `observe`, got `{}`",
                value.escape_debug()
            ),
        );
    } else if kind.is_some_and(|k| !k.is_resource()) {
        cx.key_error(
            &ptr,
            format_args!(
                "`{RECONCILE_ANNOTATION}` applies to resources; suspend a whole Environment with `mlspace-gitops suspend ENV`"
            ),
        );
    }
}

/// The references a spec makes ([`DocKind::references`]).
struct References<'a>(&'a ResourceSpec);

impl KindFn<Vec<Reference>> for References<'_> {
    fn document<K: Registered>(self) -> Vec<Reference> {
        K::spec(self.0).map(K::references).unwrap_or_default()
    }
}

/// The statements a spec grants to others ([`DocKind::contributions`]).
struct Contributions<'a>(&'a str, &'a ResourceSpec, &'a EnvironmentView);

impl KindFn<Vec<crate::kinds::Contribution>> for Contributions<'_> {
    fn document<K: Registered>(self) -> Vec<crate::kinds::Contribution> {
        K::spec(self.1)
            .map(|s| K::contributions(self.0, s, self.2))
            .unwrap_or_default()
    }
}

/// Resolve a spec in place ([`DocKind::resolve`]) and merge the Environment's tags into it.
struct Resolve<'a, 'b> {
    name: &'a str,
    spec: &'a mut ResourceSpec,
    cx: ResolveCx<'b>,
}

impl KindFn<()> for Resolve<'_, '_> {
    fn document<K: Registered>(mut self) {
        let Some(spec) = K::spec_mut(self.spec) else {
            return;
        };
        K::resolve(self.name, spec, &mut self.cx);
        if let Some(tags) = K::tags_mut(spec) {
            *tags = merged_tags(&self.cx.env.tags, tags);
        }
    }
}

/// Names are unique per kind, or per the name space kinds share (roles and service-linked
/// roles).
fn check_duplicates(resources: &[(Doc, ResourceSpec)], diags: &mut Diagnostics) {
    let mut seen: HashMap<(Kind, &str), Option<Loc>> = HashMap::new();
    for (d, _) in resources {
        let key = (d.kind.info().name_space, d.metadata.name.as_str());
        if let Some(first) = seen.get(&key) {
            let at = first
                .as_ref()
                .map(|l| format!(" (first at {}:{})", l.file.display(), l.line))
                .unwrap_or_default();
            d.cx(diags).error(
                "/metadata/name",
                format_args!("duplicate {} `{}`{at}", d.kind, d.metadata.name),
            );
        } else {
            seen.insert(key, d.loc("/metadata/name"));
        }
    }
}

/// Resolve every resource against the whole set: ARNs of the resources named, statements
/// other documents grant, the Environment's tags. Documents that only feed others (such as
/// `EcrAccess`) are not in the result.
fn resolve(
    env: EnvironmentView,
    resources: Vec<(Doc, ResourceSpec)>,
    value_refs: Vec<Vec<Ref>>,
    diags: &mut Diagnostics,
) -> DesiredState {
    let place = crate::kinds::Place {
        partition: &env.partition,
        account: &env.account,
        region: &env.region,
    };
    let declared: Declared = resources
        .iter()
        .filter(|(d, _)| d.kind.is_resource())
        .map(|(d, s)| {
            let name = d.metadata.name.clone();
            let arn = s.arn(&name, place);
            ((d.kind, name), arn)
        })
        .collect();
    // Contributions by receiver, in the contributors' (kind, name) order for stable output.
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by(|a, b| {
        let (da, db) = (&resources[*a].0, &resources[*b].0);
        (da.kind, &da.metadata.name).cmp(&(db.kind, &db.metadata.name))
    });
    let mut received: BTreeMap<crate::kinds::ResourceId, Vec<Received>> = BTreeMap::new();
    for i in order {
        let (d, spec) = &resources[i];
        let given =
            with_kind(spec.kind(), Contributions(&d.metadata.name, spec, &env)).unwrap_or_default();
        for c in given {
            received.entry(c.target).or_default().push(Received {
                from: (d.kind, d.metadata.name.clone()),
                origin: d.loc(&c.pointer),
                pointer: c.pointer,
                statements: c.statements,
            });
        }
    }

    let mut out = Vec::new();
    let mut docs: HashMap<crate::kinds::ResourceId, Doc> = HashMap::new();
    for ((d, mut spec), refs) in resources.into_iter().zip(value_refs) {
        if !d.kind.is_resource() {
            continue;
        }
        let name = d.metadata.name.clone();
        let mine = received
            .get(&(d.kind, name.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let cx = ResolveCx {
            doc: d.cx(diags),
            env: &env,
            declared: &declared,
            received: mine,
            ignore_fields: &d.metadata.ignore_fields,
        };
        with_kind(
            d.kind,
            Resolve {
                name: &name,
                spec: &mut spec,
                cx,
            },
        );
        out.push(Resource {
            kind: d.kind,
            name,
            annotations: d.metadata.annotations.clone(),
            ignore_fields: d.metadata.ignore_fields.clone(),
            spec,
            refs,
            source: d.loc(""),
        });
        docs.insert((d.kind, d.metadata.name.clone()), d);
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    check_escalations(&out, &docs, place, diags);
    DesiredState {
        environment: env,
        resources: out,
    }
}

/// Each role's effective permissions (attached and inline policies, capped by its
/// boundary) against the named privilege-escalation paths; a finding is reported on the
/// role, where its annotations can silence it.
fn check_escalations(
    resources: &[Resource],
    docs: &HashMap<crate::kinds::ResourceId, Doc>,
    place: crate::kinds::Place,
    diags: &mut Diagnostics,
) {
    let side = access::Side::of_specs(
        resources.iter().map(|r| (r.kind, r.name.as_str(), &r.spec)),
        place,
    );
    for f in access::escalations(&side) {
        let Some(d) = docs.get(&f.role) else {
            continue;
        };
        if silenced_checks(&d.metadata).contains(&f.finding.check) {
            continue;
        }
        report_finding(&mut d.cx(diags), &f.pointer, &f.finding);
    }
}

/// Check `apiVersion`, `kind`, `metadata` and `spec` of one document.
fn check_header(s: SourceDoc, diags: &mut Diagnostics) -> Option<Doc> {
    let mut cx = DocCx {
        map: &s.map,
        file: &s.file,
        diags,
    };
    let Some(obj) = s.value.as_object() else {
        cx.error(
            "",
            "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
        );
        return None;
    };
    let mut ok = true;
    for k in obj.keys() {
        if !["apiVersion", "kind", "metadata", "spec"].contains(&k.as_str()) {
            cx.key_error(
                &format!("/{}", yaml::escape_segment(k)),
                format_args!(
                    "unknown field `{k}`, expected one of apiVersion, kind, metadata, spec"
                ),
            );
            ok = false;
        }
    }
    match obj.get("apiVersion") {
        Some(Value::String(v)) if v == API_VERSION => {}
        Some(v) => {
            cx.error(
                "/apiVersion",
                format_args!("unsupported apiVersion {v}; expected `{API_VERSION}`"),
            );
            ok = false;
        }
        None => {
            cx.error(
                "",
                format_args!("missing field `apiVersion` (expected `{API_VERSION}`)"),
            );
            ok = false;
        }
    }
    let kinds = Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(k) => Some(k),
            None => {
                cx.error(
                    "/kind",
                    format_args!("unknown kind `{k}`, expected one of {kinds}"),
                );
                None
            }
        },
        Some(v) => {
            cx.error("/kind", format_args!("kind must be a string, got {v}"));
            None
        }
        None => {
            cx.error("", format_args!("missing field `kind` (one of {kinds})"));
            None
        }
    };
    let metadata = match obj.get("metadata") {
        Some(m) => typed::<Metadata>(&mut cx, m, "/metadata"),
        None => {
            cx.error("", "missing field `metadata`");
            None
        }
    };
    if let Some(m) = &metadata {
        if m.name.is_empty() {
            cx.error("/metadata/name", "name must not be empty");
            ok = false;
        }
        if let Some(k) = kind {
            check_ignore_fields(&mut cx, k, &m.ignore_fields);
        }
        check_silencing(&mut cx, m);
        check_reconcile(&mut cx, kind, m);
    }
    match obj.get("spec") {
        Some(Value::Object(_)) => {}
        Some(other) => {
            cx.error(
                "/spec",
                format_args!("spec must be a mapping, got {}", type_name(other)),
            );
            ok = false;
        }
        None => {
            cx.error("", "missing field `spec`");
            ok = false;
        }
    }
    let (Some(kind), Some(metadata), true) = (kind, metadata, ok) else {
        return None;
    };
    Some(Doc {
        file: s.file,
        map: s.map,
        kind,
        metadata,
        value: s.value,
    })
}

/// Each `metadata.ignoreFields` entry must be a spec field the kind can leave to AWS.
fn check_ignore_fields(cx: &mut DocCx, kind: Kind, fields: &[String]) {
    let allowed = crate::kinds::ignorable_fields(kind);
    for (i, f) in fields.iter().enumerate() {
        let ptr = format!("/metadata/ignoreFields/{i}");
        if allowed.is_empty() {
            cx.error(
                &ptr,
                format_args!("{kind} documents have no fields to ignore"),
            );
        } else if !allowed.contains(&f.as_str()) {
            cx.error(
                &ptr,
                format_args!(
                    "`{f}` cannot be ignored on a {kind}; ignorable fields: {}",
                    allowed.join(", ")
                ),
            );
        } else if fields[..i].contains(f) {
            cx.error(&ptr, format_args!("`{f}` is listed twice"));
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Deserialize `v` (found at `base`) into `T`, reporting the error at the failing field.
fn typed<T: serde::de::DeserializeOwned>(cx: &mut DocCx, v: &Value, base: &str) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(v) {
        Ok(t) => Some(t),
        Err(e) => {
            let mut ptr = base.to_string();
            for seg in e.path().iter() {
                use serde_path_to_error::Segment;
                match seg {
                    Segment::Seq { index } => ptr.push_str(&format!("/{index}")),
                    Segment::Map { key } | Segment::Enum { variant: key } => {
                        ptr.push('/');
                        ptr.push_str(&yaml::escape_segment(key));
                    }
                    Segment::Unknown => {}
                }
            }
            let msg = e.into_inner().to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            match msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                // The path already ends at the unknown key; point at the key itself.
                Some(_) => cx.key_error(&ptr, msg),
                None => cx.error(&ptr, msg),
            }
            None
        }
    }
}

/// Replace the fields that name a file (`documentFile`, `assumeRolePolicyFile`: the kind's
/// [`DocKind::FILE_FIELDS`]) with the file's parsed content.
fn inline_files(
    d: &mut Doc,
    vars: Option<&template::Vars>,
    reader: &dyn FileReader,
    diags: &mut Diagnostics,
) {
    let pairs = d.kind.info().file_fields;
    for (file_key, doc_key) in pairs {
        let Some(spec) = d.value.get("spec").and_then(Value::as_object) else {
            return;
        };
        let Some(rel) = spec.get(*file_key) else {
            continue;
        };
        let file_ptr = format!("/spec/{file_key}");
        if spec.contains_key(*doc_key) {
            DocCx {
                map: &d.map,
                file: &d.file,
                diags,
            }
            .error(
                &file_ptr,
                format_args!("`{file_key}` and `{doc_key}` are exclusive; give one"),
            );
            continue;
        }
        let Some(rel) = rel.as_str() else { continue }; // typed() reports the type error
        let path = d.file.parent().unwrap_or(Path::new(".")).join(rel);
        let fpath: Arc<Path> = Arc::from(path.as_path());
        let text = match reader.read(&path) {
            Ok(t) => t,
            Err(ReadError::NotUtf8 { offset, line, col }) => {
                diags.error(
                    Some(Loc {
                        file: fpath.clone(),
                        line,
                        col,
                    }),
                    format!(
                        "in the file named by {}: not UTF-8 (invalid byte at byte offset {offset})",
                        field_path(&file_ptr)
                    ),
                );
                continue;
            }
            Err(e) => {
                DocCx {
                    map: &d.map,
                    file: &d.file,
                    diags,
                }
                .error(
                    &file_ptr,
                    format_args!("cannot read `{}`: {e}", path.display()),
                );
                continue;
            }
        };
        let mut parsed = match reader.parse(&fpath, &text) {
            Ok(mut docs) if docs.len() == 1 => docs.remove(0),
            Ok(_) => {
                DocCx {
                    map: &d.map,
                    file: &d.file,
                    diags,
                }
                .error(
                    &file_ptr,
                    format_args!("`{}` must hold exactly one JSON document", path.display()),
                );
                continue;
            }
            // JSON that YAML refuses (tabs, say) is still JSON; positions fall back to the
            // file. Only for syntax errors: a limit, a NUL or a tag is not worked around.
            Err(e) => match serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|_| e.message.starts_with("YAML syntax error"))
            {
                Some(v) => yaml::Document {
                    value: v,
                    map: SourceMap::default(),
                },
                None => {
                    diags.error(
                        Some(e.loc),
                        format!(
                            "in the file named by {}: {}",
                            field_path(&file_ptr),
                            e.message
                        ),
                    );
                    continue;
                }
            },
        };
        if let Some(vars) = vars {
            for (ptr, name) in template::resolve(&mut parsed.value, vars) {
                let loc = parsed.map.value(&ptr).cloned().or_else(|| {
                    Some(Loc {
                        file: fpath.clone(),
                        line: 1,
                        col: 1,
                    })
                });
                diags.error(loc, format!("{}: unresolved placeholder `{{{name}}}`: add it to the Environment's spec.params", field_path(&format!("/spec/{doc_key}{ptr}"))));
            }
        }
        let doc_ptr = format!("/spec/{doc_key}");
        // A document parsed by the JSON fallback has no positions; lookups then fall
        // back to the nearest ancestor, the spec.
        d.map.graft(&doc_ptr, parsed.map);
        let spec = d.value["spec"].as_object_mut().expect("checked above");
        spec.remove(*file_key);
        spec.insert(doc_key.to_string(), parsed.value);
    }
}
