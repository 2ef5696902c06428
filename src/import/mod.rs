//! Import: write manifests for resources that already exist (the `import` command).
//!
//! Each kind turns what it observes into its manifest spec ([`KindPlan::import`]); this
//! stage observes the requested resources (every setting read), wraps each spec in a
//! document annotated `mlspace-gitops/adopt: "true"`, and turns the account, region and
//! partition back into `{AWS_ACCOUNT}`, `{AWS_REGION}` and `{AWS_PARTITION}`. Tags the
//! Environment puts on every resource are left out (they are merged back in). The next
//! apply then only adds the ownership tag: everything the documents say is what AWS has.
//!
//! Kinds are imported in registry order, and each kind's resources are declared in the
//! planning context as they are found, so that a role's attachments to a policy of the
//! manifests (or of the same import) are written as that ManagedPolicy's name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::aws::{AwsContext, AwsError};
use crate::kinds::common::{Tags, ADOPT_ANNOTATION};
use crate::kinds::runtime::{AwsVisitor, KindAws, Wanted};
use crate::kinds::{visit_aws_kinds, Kind, PlanCx, Registered};
use crate::manifest::render::json_to_yaml_text;
use crate::manifest::{DesiredState, EnvironmentView};

/// The `apiVersion` of every document written.
pub const API_VERSION: &str = "mlspace-gitops/v1";

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The kind describes no AWS resource of its own.
    #[error("{0} cannot be imported: it is not an AWS resource of its own")]
    NotImportable(Kind),
    /// A kind's resources could not be read.
    #[error("reading {kind} resources")]
    Observe {
        /// The kind.
        kind: Kind,
        /// The AWS error.
        #[source]
        source: AwsError,
    },
    /// An output file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// One manifest document written for an existing resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedDoc {
    /// Kind of the resource.
    pub kind: Kind,
    /// AWS name of the resource.
    pub name: String,
    /// The document: `apiVersion`, `kind`, `metadata`, `spec`.
    pub document: Value,
}

/// What an import found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// Documents, managed policies first, then in the order asked.
    pub documents: Vec<ImportedDoc>,
    /// Resources asked for that AWS does not have.
    pub missing: Vec<(Kind, String)>,
}

/// Resources to import: kind → names.
pub type Request = BTreeMap<Kind, Vec<String>>;

/// Every resource named in a desired state (the `--all-mlspace` request).
pub fn request_all(desired: &DesiredState) -> Request {
    let mut r = Request::new();
    for res in &desired.resources {
        if !res.kind.is_resource() {
            continue;
        }
        let names = r.entry(res.kind).or_default();
        if !names.contains(&res.name) {
            names.push(res.name.clone());
        }
    }
    r
}

/// Observe the requested resources and write a document for each one AWS has. `desired`
/// gives the Environment (account, region, partition, default tags, ignore rules) and the
/// ManagedPolicies that roles may name.
pub async fn import(
    aws: &AwsContext,
    desired: &DesiredState,
    request: &Request,
) -> Result<Imported, ImportError> {
    if let Some(k) = request.keys().find(|k| !k.is_resource()) {
        return Err(ImportError::NotImportable(*k));
    }
    // One kind after the other, in registry order: each kind's finds are declared before
    // the next kind is imported.
    struct State<'a> {
        aws: &'a AwsContext,
        desired: &'a DesiredState,
        request: &'a Request,
        cx: PlanCx,
        out: Imported,
    }
    type Job = for<'s, 'a> fn(&'s mut State<'a>) -> BoxFuture<'s, Result<(), ImportError>>;
    struct Jobs(Vec<Job>);
    impl AwsVisitor for Jobs {
        fn visit<K: KindAws>(&mut self) {
            self.0.push(kind::<K>);
        }
    }
    fn kind<'s, 'a, K: KindAws>(st: &'s mut State<'a>) -> BoxFuture<'s, Result<(), ImportError>> {
        Box::pin(async move {
            let names = st
                .request
                .get(&K::KIND)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let found = import_kind::<K>(st.aws, st.desired, names, &st.cx, &mut st.out).await?;
            for (name, o) in &found {
                st.cx.declare(K::KIND, name, K::observed_arn(o));
            }
            Ok(())
        })
    }
    let mut jobs = Jobs(Vec::new());
    visit_aws_kinds(&mut jobs);
    let mut st = State {
        aws,
        desired,
        request,
        cx: crate::plan::plan_cx(desired),
        out: Imported::default(),
    };
    for job in jobs.0 {
        job(&mut st).await?;
    }
    Ok(st.out)
}

/// Import the resources of one kind; returns what was observed. A kind that needs the
/// manifest's spec to find a resource ([`crate::kinds::KindPlan::OBSERVE_BY_SPEC`]) gets it
/// for names `desired` holds; the others are read without one, so every setting is read.
async fn import_kind<K: KindAws>(
    aws: &AwsContext,
    desired: &DesiredState,
    names: &[String],
    cx: &PlanCx,
    out: &mut Imported,
) -> Result<BTreeMap<String, K::Observed>, ImportError> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let env = &desired.environment;
    let spec_of = |n: &str| {
        desired
            .resources
            .iter()
            .filter(|r| K::OBSERVE_BY_SPEC && r.kind == K::KIND && r.name == n)
            .find_map(|r| <K as Registered>::spec(&r.spec))
    };
    let wanted: Vec<Wanted<'_, K::Spec>> = names
        .iter()
        .map(|n| Wanted {
            name: n,
            spec: spec_of(n),
        })
        .collect();
    let observed = K::observe(aws, &wanted, cx)
        .await
        .map_err(|source| ImportError::Observe {
            kind: K::KIND,
            source,
        })?;
    for n in names {
        match observed.get(n) {
            Some(o) => {
                let spec = K::import(n, o, cx);
                let mut document = document(K::KIND, n, &spec, env);
                silence_lint_errors(&mut document, &K::holdings(&spec));
                out.documents.push(ImportedDoc {
                    kind: K::KIND,
                    name: n.clone(),
                    document,
                })
            }
            None => out.missing.push((K::KIND, n.clone())),
        }
    }
    Ok(observed)
}

/// Whether a spec value is the default a manifest gets when the key is left out.
type IsDefault = fn(&Value) -> bool;

/// Spec keys left out when they hold the value a manifest gets by default.
const DEFAULTS: &[(&str, IsDefault)] = &[
    ("path", |v| v == "/"),
    ("billingMode", |v| v == "PAY_PER_REQUEST"),
    ("instanceProfile", |v| v == &Value::Bool(false)),
    ("managedPolicies", |v| {
        v.as_array().is_some_and(Vec::is_empty)
    }),
    ("inlinePolicies", |v| {
        v.as_object().is_some_and(Map::is_empty)
    }),
    ("tags", |v| v.as_object().is_some_and(Map::is_empty)),
];

/// The manifest document of one resource, with placeholders and the adopt annotation.
pub fn document(kind: Kind, name: &str, spec: &impl Serialize, env: &EnvironmentView) -> Value {
    let mut spec = serde_json::to_value(spec).expect("specs are plain data");
    if let Some(m) = spec.as_object_mut() {
        if let Some(Value::Object(tags)) = m.get_mut("tags") {
            strip_environment_tags(tags, &env.tags);
        }
        m.retain(|k, v| {
            !DEFAULTS
                .iter()
                .any(|(key, is_default)| k == key && is_default(v))
        });
    }
    let mut doc = json!({
        "apiVersion": API_VERSION,
        "kind": kind.as_str(),
        "metadata": {
            "name": name,
            "annotations": {ADOPT_ANNOTATION: "true"},
        },
        "spec": spec,
    });
    to_placeholders(&mut doc, &env.partition, &env.account, &env.region);
    doc
}

/// The reason written on the lint checks an imported document is silenced for.
pub const IMPORTED_FINDING_REASON: &str =
    "imported as AWS has it: review this finding, then fix the document or write why it is meant";

/// A document AWS accepted may still fail lint (a statement that matches nothing): the
/// imported manifest silences each such error check, with a reason that asks for review,
/// so that it validates and adopting changes nothing. Structural errors are left to fail.
fn silence_lint_errors(doc: &mut Value, holdings: &crate::kinds::Holdings) {
    let mut checks: Vec<&'static str> = holdings
        .documents
        .iter()
        .flat_map(|d| mlspace_policy::lint(d.document, d.policy_kind))
        .filter(|f| {
            f.severity == mlspace_policy::LintSeverity::Error
                && f.check != mlspace_policy::lint::INVALID_STRUCTURE.id
        })
        .map(|f| f.check)
        .collect();
    checks.sort_unstable();
    checks.dedup();
    if let Some(ann) = doc["metadata"]["annotations"].as_object_mut() {
        for c in checks {
            ann.insert(
                format!("{}{c}", crate::syntax::diag::SILENCE_ANNOTATION),
                Value::String(IMPORTED_FINDING_REASON.into()),
            );
        }
    }
}

/// Leave out the tags the Environment gives every resource (same key and value).
fn strip_environment_tags(tags: &mut Map<String, Value>, env: &Tags) {
    tags.retain(|k, v| env.get(k).map(|e| Value::String(e.clone())) != Some(v.clone()));
}

/// Turn the account, region and partition in every string (object keys included) back
/// into placeholders. The partition is replaced only as an ARN's second field
/// (`arn:aws:`), never where `aws` is just a word; account and region wherever they occur.
pub fn to_placeholders(v: &mut Value, partition: &str, account: &str, region: &str) {
    let replace = |s: &str| -> Option<String> {
        let mut out = s.to_string();
        if !partition.is_empty() {
            out = out.replace(&format!("arn:{partition}:"), "arn:{AWS_PARTITION}:");
        }
        for (value, token) in [(account, "{AWS_ACCOUNT}"), (region, "{AWS_REGION}")] {
            if !value.is_empty() {
                out = out.replace(value, token);
            }
        }
        (out != s).then_some(out)
    };
    walk(v, &replace);
}

fn walk(v: &mut Value, replace: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = replace(s) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, replace)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                walk(&mut val, replace);
                map.insert(replace(&k).unwrap_or(k), val);
            }
        }
        _ => {}
    }
}

/// All documents as one YAML stream (`---` between documents).
pub fn to_yaml(docs: &[ImportedDoc]) -> String {
    docs.iter()
        .map(|d| json_to_yaml_text(&d.document))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The file a document is written to: `KIND-NAME.yaml`, the kind in kebab case
/// (`managed-policy-mlspace-app-policy.yaml`).
pub fn file_name(kind: Kind, name: &str) -> String {
    let mut k = String::new();
    for (i, c) in kind.as_str().chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            k.push('-');
        }
        k.push(c.to_ascii_lowercase());
    }
    format!("{k}-{name}.yaml")
}

/// Write one file per document into `dir` (created if missing; files of the same name
/// are replaced). Returns the paths written.
pub fn write_dir(dir: &Path, docs: &[ImportedDoc]) -> Result<Vec<PathBuf>, ImportError> {
    std::fs::create_dir_all(dir).map_err(|source| ImportError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for d in docs {
        let path = dir.join(file_name(d.kind, &d.name));
        std::fs::write(&path, json_to_yaml_text(&d.document)).map_err(|source| {
            ImportError::Write {
                path: path.clone(),
                source,
            }
        })?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
