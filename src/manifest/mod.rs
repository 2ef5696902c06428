//! Manifests: parse a directory of YAML documents, resolve placeholders, validate every
//! rule, and produce the desired state. Nothing here talks to AWS.
//!
//! Loading is in two halves: [`load_dir`] reads files (the only IO), [`compile`] is pure
//! and turns parsed documents into a [`DesiredState`] or the full list of problems.

pub mod diag;
pub mod render;
pub mod template;
pub mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kinds::common::{merged_tags, Metadata, Tags};
use crate::kinds::environment::EnvironmentSpec;
use crate::kinds::managed_policy::MAX_MANAGED_POLICY_LEN;
use crate::kinds::role::is_policy_arn;
use crate::kinds::{Kind, ResourceSpec};
use diag::{field_path, Diagnostics, DocCx};
use yaml::{Loc, SourceMap};

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "mlspace-gitops/v1";

/// Errors of the manifest stage.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifests are invalid; every problem is listed.
    #[error("{} error(s) in the manifests", .0.error_count())]
    Invalid(Diagnostics),
    /// The directory could not be read.
    #[error("cannot read manifests directory {path}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The resolved Environment, as rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentView {
    /// `metadata.name` of the Environment.
    pub name: String,
    /// AWS partition.
    pub partition: String,
    /// AWS region.
    pub region: String,
    /// AWS account id.
    pub account: String,
    /// Placeholder values.
    pub params: BTreeMap<String, String>,
    /// Default tags.
    pub tags: Tags,
    /// Whether resources that left the manifests are deleted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Objects never touched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<crate::kinds::environment::IgnoreRule>,
    /// Role assumed to reach the account (placeholders filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_arn: Option<String>,
    /// External id sent when assuming the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Where the Environment's `metadata.name` is written.
    #[serde(skip)]
    pub source: Option<Loc>,
}

/// One desired resource, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// Its AWS name.
    pub name: String,
    /// Annotations (adopt, ...); not part of the render contract when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Top-level spec fields AWS keeps (`metadata.ignoreFields`); not rendered when empty.
    #[serde(rename = "ignoreFields", skip_serializing_if = "Vec::is_empty")]
    pub ignore_fields: Vec<String>,
    /// The resolved spec: placeholders replaced, files inlined, defaults applied, policy
    /// references turned into ARNs, Environment tags merged in.
    pub spec: ResourceSpec,
    /// Where the document starts.
    #[serde(skip)]
    pub source: Option<Loc>,
}

/// What the manifests say the account should hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredState {
    /// The Environment.
    pub environment: EnvironmentView,
    /// The resources, sorted by kind then name.
    pub resources: Vec<Resource>,
}

/// A valid manifest set and its warnings.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The desired state.
    pub desired: DesiredState,
    /// Warnings (never fatal).
    pub warnings: Diagnostics,
}

/// One parsed YAML document with where it came from.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    /// The manifest file.
    pub file: Arc<Path>,
    /// Its content.
    pub value: Value,
    /// Its positions.
    pub map: SourceMap,
}

/// Files a manifest refers to (`documentFile`, `assumeRolePolicyFile`), read on demand.
pub trait FileReader {
    /// Read `path` (already joined with the manifest's directory).
    fn read(&self, path: &Path) -> std::io::Result<String>;
}

/// Reads from the local file system, refusing paths outside the manifests root.
pub struct FsReader {
    root: PathBuf,
}

impl FileReader for FsReader {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let canon = path.canonicalize()?;
        let root = self.root.canonicalize()?;
        if !canon.starts_with(&root) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is outside the manifests directory",
            ));
        }
        std::fs::read_to_string(canon)
    }
}

/// Read and compile every `*.yaml`/`*.yml` file under `dir` (any depth, hidden entries skipped).
pub fn load_dir(dir: &Path) -> Result<Loaded, ManifestError> {
    let files = list_yaml_files(dir)?;
    let mut diags = Diagnostics::default();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| ManifestError::Io {
            path: f.clone(),
            source,
        })?;
        let file: Arc<Path> = Arc::from(f.as_path());
        parse_file(&file, &text, &mut docs, &mut diags);
    }
    compile(
        docs,
        diags,
        &FsReader {
            root: dir.to_path_buf(),
        },
    )
}

/// The Environment directories that `paths` name. A path holding YAML files of its own is one
/// Environment; a path holding only directories is a directory of Environments (for example
/// `envs/dev`, `envs/staging`, `envs/prod`), each subdirectory with YAML in it being one.
/// Sorted and without duplicates.
pub fn environment_dirs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ManifestError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ManifestError::Io { path, source }
    };
    let is_yaml = |p: &Path| {
        p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
    };
    let mut out = Vec::new();
    for root in paths {
        let mut subdirs = Vec::new();
        let mut own_yaml = false;
        for entry in std::fs::read_dir(root).map_err(io(root))? {
            let path = entry.map_err(io(root))?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                subdirs.push(path);
            } else if is_yaml(&path) {
                own_yaml = true;
            }
        }
        let mut envs = Vec::new();
        if !own_yaml {
            for d in subdirs {
                if !list_yaml_files(&d)?.is_empty() {
                    envs.push(d);
                }
            }
        }
        if envs.is_empty() {
            // Without YAML below it, the path stays one (empty) Environment: loading it
            // reports that, instead of the command doing nothing.
            envs.push(root.clone());
        }
        out.extend(envs);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Load every Environment under `paths` (see [`environment_dirs`]). All or nothing: when one
/// is invalid, the errors of all are returned. Two Environments may not share a name (their
/// inventory, lease and status are keyed by it), nor manage the same resource in one account.
pub fn load_environments(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Loaded)>, ManifestError> {
    let dirs = environment_dirs(paths)?;
    let mut diags = Diagnostics::default();
    let mut out: Vec<(PathBuf, Loaded)> = Vec::new();
    for dir in dirs {
        match load_dir(&dir) {
            Ok(l) => out.push((dir, l)),
            Err(ManifestError::Invalid(d)) => diags.extend(d),
            Err(e) => return Err(e),
        }
    }
    let mut names: HashMap<&str, &Path> = HashMap::new();
    let mut owners: HashMap<(&str, &str, Kind, &str), &str> = HashMap::new();
    for (dir, l) in &out {
        let env = &l.desired.environment;
        if let Some(first) = names.insert(&env.name, dir) {
            diags.error(
                env.source.clone(),
                format!(
                    "metadata.name: Environment `{}` is also defined in {}; each Environment needs its own name",
                    env.name,
                    first.display()
                ),
            );
        }
        for r in &l.desired.resources {
            // IAM and bucket names are global to the account (buckets even to the
            // partition); table names are per region.
            let region = if r.kind == Kind::Table {
                env.region.as_str()
            } else {
                ""
            };
            let key = (env.account.as_str(), region, r.kind, r.name.as_str());
            match owners.get(&key) {
                Some(other) if *other != env.name => diags.error(
                    r.source.clone(),
                    format!(
                        "metadata.name: {} `{}` in account {} is also managed by Environment `{other}`; one resource has one owner",
                        r.kind, r.name, env.account
                    ),
                ),
                _ => {
                    owners.insert(key, &env.name);
                }
            }
        }
    }
    if diags.has_errors() {
        return Err(ManifestError::Invalid(diags));
    }
    Ok(out)
}

/// Parse one file's documents into `docs` (syntax errors go to `diags`).
pub fn parse_file(
    file: &Arc<Path>,
    text: &str,
    docs: &mut Vec<SourceDoc>,
    diags: &mut Diagnostics,
) {
    match yaml::parse_documents(file, text) {
        Ok(parsed) => {
            docs.extend(
                parsed
                    .into_iter()
                    .filter(|d| !d.value.is_null())
                    .map(|d| SourceDoc {
                        file: file.clone(),
                        value: d.value,
                        map: d.map,
                    }),
            )
        }
        Err(e) => diags.error(Some(e.loc), e.message),
    }
}

/// Every YAML file under `dir`, sorted, skipping hidden files and directories.
pub fn list_yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| ManifestError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| ManifestError::Io {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().map_err(|source| ManifestError::Io {
                path: path.clone(),
                source,
            })?;
            if ft.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
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
        fn read(&self, _: &Path) -> std::io::Result<String> {
            Err(std::io::ErrorKind::NotFound.into())
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
    let envs: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind == Kind::Environment)
        .collect();
    let mut env: Option<(EnvironmentSpec, String, Option<Loc>)> = None;
    match envs.as_slice() {
        // A file that failed to parse may hold it: do not add a misleading error.
        [] if diags.has_errors() => {}
        [] => diags.error(
            None,
            "no Environment document: exactly one is required per manifests directory",
        ),
        [first, rest @ ..] => {
            for other in rest {
                let at = first
                    .loc("")
                    .map(|l| format!("{}:{}", l.file.display(), l.line))
                    .unwrap_or_default();
                other.cx(&mut diags).error("/kind", format_args!("a second Environment; exactly one is allowed per directory (the first is at {at})"));
            }
            let mut cx = first.cx(&mut diags);
            if let Some(spec) = typed::<EnvironmentSpec>(&mut cx, &first.value["spec"], "/spec") {
                // Only the Environment's own errors may stop placeholder resolution.
                let mut own = Diagnostics::default();
                spec.validate(&mut DocCx {
                    map: &first.map,
                    file: &first.file,
                    diags: &mut own,
                });
                let ok = !own.has_errors();
                diags.extend(own);
                if ok {
                    env = Some((
                        spec,
                        first.metadata.name.clone(),
                        first.loc("/metadata/name"),
                    ));
                }
            }
        }
    }
    let vars = env.as_ref().map(|(e, _, _)| e.vars());
    let env_tags = env
        .as_ref()
        .map(|(e, _, _)| e.tags.clone())
        .unwrap_or_default();

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
        let spec_value = &d.value["spec"];
        let mut cx = d.cx(&mut diags);
        let spec = match d.kind {
            Kind::ManagedPolicy => {
                typed(&mut cx, spec_value, "/spec").map(ResourceSpec::ManagedPolicy)
            }
            Kind::Role => typed(&mut cx, spec_value, "/spec").map(ResourceSpec::Role),
            Kind::ServiceLinkedRole => {
                typed(&mut cx, spec_value, "/spec").map(ResourceSpec::ServiceLinkedRole)
            }
            Kind::EcrAccess => typed(&mut cx, spec_value, "/spec").map(ResourceSpec::EcrAccess),
            Kind::Bucket => typed(&mut cx, spec_value, "/spec").map(ResourceSpec::Bucket),
            Kind::Table => typed(&mut cx, spec_value, "/spec").map(ResourceSpec::Table),
            Kind::Environment => None,
        };
        let Some(spec) = spec else { continue };
        let name = d.metadata.name.clone();
        match &spec {
            ResourceSpec::ManagedPolicy(s) => s.validate(&name, &mut cx, &env_tags),
            ResourceSpec::Role(s) => s.validate(&name, &mut cx, &env_tags),
            ResourceSpec::ServiceLinkedRole(s) => s.validate(&name, &mut cx),
            ResourceSpec::EcrAccess(s) => s.validate(&mut cx),
            ResourceSpec::Bucket(s) => s.validate(&name, &mut cx, &env_tags),
            ResourceSpec::Table(s) => s.validate(&name, &mut cx, &env_tags),
        }
        resources.push((d, spec));
    }

    // 4. Set-wide rules: duplicates and references.
    let mut seen: HashMap<(Kind, String), Option<Loc>> = HashMap::new();
    for (d, _) in &resources {
        // Roles and service-linked roles share IAM's role name space.
        let space = if d.kind == Kind::ServiceLinkedRole {
            Kind::Role
        } else {
            d.kind
        };
        let key = (space, d.metadata.name.clone());
        if let Some(first) = seen.get(&key) {
            let at = first
                .as_ref()
                .map(|l| format!(" (first at {}:{})", l.file.display(), l.line))
                .unwrap_or_default();
            d.cx(&mut diags).error(
                "/metadata/name",
                format_args!("duplicate {} `{}`{at}", d.kind, d.metadata.name),
            );
        } else {
            seen.insert(key, d.loc("/metadata/name"));
        }
    }
    let policy_names: HashMap<&str, &crate::kinds::managed_policy::ManagedPolicySpec> = resources
        .iter()
        .filter_map(|(d, s)| match s {
            ResourceSpec::ManagedPolicy(p) => Some((d.metadata.name.as_str(), p)),
            _ => None,
        })
        .collect();
    let ignored_documents: std::collections::HashSet<&str> = resources
        .iter()
        .filter(|(d, s)| {
            matches!(s, ResourceSpec::ManagedPolicy(_))
                && d.metadata.ignore_fields.iter().any(|f| f == "document")
        })
        .map(|(d, _)| d.metadata.name.as_str())
        .collect();
    for (d, spec) in &resources {
        let mut cx = d.cx(&mut diags);
        let check_ref = |cx: &mut DocCx, ptr: &str, r: &str| {
            if is_policy_arn(r) {
                if !is_iam_policy_arn(r) {
                    cx.error(ptr, format_args!("`{r}` is not an IAM policy ARN (arn:PARTITION:iam::ACCOUNT|aws:policy/PATH/NAME)"));
                }
            } else if !policy_names.contains_key(r) {
                cx.error(ptr, format_args!("no ManagedPolicy named `{r}` in the manifests (use a full ARN for a policy managed elsewhere)"));
            }
        };
        match spec {
            ResourceSpec::Role(r) => {
                for (i, p) in r.managed_policies.iter().enumerate() {
                    check_ref(&mut cx, &format!("/spec/managedPolicies/{i}"), p);
                }
                if let Some(b) = &r.permissions_boundary {
                    check_ref(&mut cx, "/spec/permissionsBoundary", b);
                }
            }
            ResourceSpec::EcrAccess(e) => {
                for (i, t) in e.grant_to.iter().enumerate() {
                    if !policy_names.contains_key(t.as_str()) {
                        cx.error(
                            &format!("/spec/grantTo/{i}"),
                            format_args!("no ManagedPolicy named `{t}` in the manifests"),
                        );
                    } else if ignored_documents.contains(t.as_str()) {
                        cx.warning(
                            &format!("/spec/grantTo/{i}"),
                            format_args!("ManagedPolicy `{t}` ignores its document (metadata.ignoreFields), so these statements reach AWS only when it is created"),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    let Some((env, env_name, env_loc)) = env else {
        return Err(ManifestError::Invalid(diags));
    };

    // 5. Resolve: merge EcrAccess statements, turn names into ARNs, merge tags.
    let mut desired = resolve(env, env_name, resources, &mut diags);
    desired.environment.source = env_loc;
    if diags.has_errors() {
        return Err(ManifestError::Invalid(diags));
    }
    Ok(Loaded {
        desired,
        warnings: diags,
    })
}

/// `arn:PARTITION:iam::ACCOUNT|aws:policy/...`.
fn is_iam_policy_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws"
            || (parts[4].len() == 12 && parts[4].bytes().all(|b| b.is_ascii_digit())))
        && parts[5].starts_with("policy/")
        && parts[5].len() > "policy/".len()
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
    let kinds = Kind::ALL.map(|k| k.as_str()).join(", ");
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

/// Replace `documentFile`/`assumeRolePolicyFile` with the file's parsed content.
fn inline_files(
    d: &mut Doc,
    vars: Option<&template::Vars>,
    reader: &dyn FileReader,
    diags: &mut Diagnostics,
) {
    let pairs: &[(&str, &str)] = match d.kind {
        Kind::ManagedPolicy => &[("documentFile", "document")],
        Kind::Role => &[("assumeRolePolicyFile", "assumeRolePolicy")],
        _ => return,
    };
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
        let text = match reader.read(&path) {
            Ok(t) => t,
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
        let fpath: Arc<Path> = Arc::from(path.as_path());
        let mut parsed = match yaml::parse_documents(&fpath, &text) {
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
            Err(e) => match serde_json::from_str::<Value>(&text) {
                // JSON that YAML refuses (tabs, say) is still JSON; positions fall back to the file.
                Ok(v) => yaml::Document {
                    value: v,
                    map: SourceMap::default(),
                },
                Err(_) => {
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

/// Merge EcrAccess into policies, resolve references to ARNs and merge tags.
fn resolve(
    env: EnvironmentSpec,
    env_name: String,
    resources: Vec<(Doc, ResourceSpec)>,
    diags: &mut Diagnostics,
) -> DesiredState {
    let (partition, region, account) = (
        env.partition.clone(),
        env.region.clone(),
        env.account.clone(),
    );
    let vars = env.vars();
    let params = env
        .params
        .keys()
        .map(|k| (k.clone(), vars[k].clone()))
        .collect();
    let mut policy_arns: HashMap<String, String> = HashMap::new();
    for (d, s) in &resources {
        if let ResourceSpec::ManagedPolicy(p) = s {
            policy_arns.insert(
                d.metadata.name.clone(),
                p.arn(&partition, &account, &d.metadata.name),
            );
        }
    }
    // EcrAccess statements per target policy, in grant-name order for stable output.
    let mut grants: BTreeMap<String, Vec<(String, Vec<Value>)>> = BTreeMap::new();
    let mut ecr: Vec<(&Doc, &crate::kinds::ecr_access::EcrAccessSpec)> = resources
        .iter()
        .filter_map(|(d, s)| match s {
            ResourceSpec::EcrAccess(e) => Some((d, e)),
            _ => None,
        })
        .collect();
    ecr.sort_by(|a, b| a.0.metadata.name.cmp(&b.0.metadata.name));
    for (d, e) in ecr {
        let stmts = e.statements(&partition, &region, &account);
        for t in &e.grant_to {
            grants
                .entry(t.clone())
                .or_default()
                .push((d.metadata.name.clone(), stmts.clone()));
        }
    }

    let mut out = Vec::new();
    for (d, spec) in resources {
        let name = d.metadata.name.clone();
        let spec = match spec {
            ResourceSpec::EcrAccess(_) => continue,
            ResourceSpec::ManagedPolicy(mut p) => {
                if let (Some(doc), Some(gs)) = (p.document.as_mut(), grants.get(&name)) {
                    let mut stmts = match doc.get("Statement").cloned() {
                        Some(Value::Array(a)) => a,
                        Some(one) => vec![one],
                        None => vec![],
                    };
                    for (_, add) in gs {
                        for s in add {
                            merge_statement(&mut stmts, s);
                        }
                    }
                    doc["Statement"] = Value::Array(stmts);
                }
                if let Some(doc) = &p.document {
                    let len = mlspace_policy::quota_len(doc);
                    if len > MAX_MANAGED_POLICY_LEN {
                        let from = grants
                            .get(&name)
                            .map(|g| {
                                format!(
                                    " (with the statements of EcrAccess {})",
                                    g.iter()
                                        .map(|(n, _)| n.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            })
                            .unwrap_or_default();
                        d.cx(diags).error("/spec/document", format_args!("managed policy is {len} characters without white space{from}; IAM allows {MAX_MANAGED_POLICY_LEN}"));
                    }
                }
                p.tags = merged_tags(&env.tags, &p.tags);
                ResourceSpec::ManagedPolicy(p)
            }
            ResourceSpec::Role(mut r) => {
                let to_arn = |s: &String| policy_arns.get(s).cloned().unwrap_or_else(|| s.clone());
                r.managed_policies = r.managed_policies.iter().map(to_arn).collect();
                r.managed_policies.sort();
                // A name and the ARN of the same policy are one attachment.
                for w in r.managed_policies.windows(2) {
                    if w[0] == w[1] {
                        d.cx(diags).error(
                            "/spec/managedPolicies",
                            format_args!("policy {} is listed twice (by name and by ARN)", w[0]),
                        );
                    }
                }
                r.managed_policies.dedup();
                r.permissions_boundary = r.permissions_boundary.as_ref().map(to_arn);
                r.tags = merged_tags(&env.tags, &r.tags);
                ResourceSpec::Role(r)
            }
            ResourceSpec::Bucket(mut b) => {
                b.tags = merged_tags(&env.tags, &b.tags);
                ResourceSpec::Bucket(b)
            }
            ResourceSpec::Table(mut t) => {
                t.tags = merged_tags(&env.tags, &t.tags);
                ResourceSpec::Table(t)
            }
            s @ ResourceSpec::ServiceLinkedRole(_) => s,
        };
        out.push(Resource {
            kind: d.kind,
            name,
            annotations: d.metadata.annotations.clone(),
            ignore_fields: d.metadata.ignore_fields.clone(),
            spec,
            source: d.loc(""),
        });
    }
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let assume_role_arn = env.resolved_assume_role_arn();
    DesiredState {
        environment: EnvironmentView {
            name: env_name,
            partition,
            region,
            account,
            params,
            tags: env.tags,
            prune: env.prune,
            assume_role_arn,
            external_id: env.external_id,
            source: None,
            ignore: env.ignore,
        },
        resources: out,
    }
}

/// Add an Allow statement to a policy. When an unconditional Allow statement on the same
/// resources exists, its action list grows instead: IAM evaluates both forms the same, and
/// the 6,144-character quota leaves MLSpace's boundary no room for a statement's overhead.
fn merge_statement(stmts: &mut Vec<Value>, add: &Value) {
    let as_set = |v: Option<&Value>| -> Option<std::collections::BTreeSet<String>> {
        match v? {
            Value::String(s) => Some([s.clone()].into()),
            Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
            _ => None,
        }
    };
    let target = as_set(add.get("Resource"));
    let host = stmts.iter_mut().find(|s| {
        let Some(o) = s.as_object() else { return false };
        o.get("Effect").and_then(Value::as_str) == Some("Allow")
            && o.keys()
                .all(|k| ["Sid", "Effect", "Action", "Resource"].contains(&k.as_str()))
            && target.is_some()
            && as_set(o.get("Resource")) == target
            && as_set(o.get("Action")).is_some()
    });
    let new_actions = as_set(add.get("Action")).unwrap_or_default();
    match host {
        Some(h) => {
            let mut actions: Vec<Value> = match h.get("Action") {
                Some(Value::Array(a)) => a.clone(),
                Some(one) => vec![one.clone()],
                None => vec![],
            };
            let have: std::collections::BTreeSet<String> = actions
                .iter()
                .filter_map(|a| a.as_str().map(str::to_ascii_lowercase))
                .collect();
            for a in new_actions {
                if !have.contains(&a.to_ascii_lowercase()) {
                    actions.push(Value::String(a));
                }
            }
            h["Action"] = Value::Array(actions);
        }
        None => {
            if !stmts.contains(add) {
                stmts.push(add.clone());
            }
        }
    }
}

#[cfg(test)]
mod environment_dir_tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x: 1\n").unwrap();
    }

    #[test]
    fn a_directory_with_yaml_is_one_environment_and_one_without_lists_them() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        touch(&root.join("single/environment.yaml"));
        touch(&root.join("single/iam/roles.yaml"));
        touch(&root.join("envs/prod/environment.yaml"));
        touch(&root.join("envs/dev/environment.yaml"));
        touch(&root.join("envs/dev/s3/buckets.yml"));
        touch(&root.join("envs/notes/README.txt"));
        touch(&root.join("envs/.hidden/environment.yaml"));
        touch(&root.join("nothing/notes/README.txt"));
        let dirs = environment_dirs(&[root.join("single")]).unwrap();
        assert_eq!(dirs, [root.join("single")]);
        let dirs = environment_dirs(&[root.join("envs")]).unwrap();
        assert_eq!(dirs, [root.join("envs/dev"), root.join("envs/prod")]);
        // Named one by one (and twice), the same Environments come back once each.
        let dirs = environment_dirs(&[
            root.join("envs/prod"),
            root.join("envs/dev"),
            root.join("envs/prod"),
        ])
        .unwrap();
        assert_eq!(dirs, [root.join("envs/dev"), root.join("envs/prod")]);
        // Regression: a directory with no YAML below it gave no Environment at all, and plan
        // indexed the first one of none.
        assert_eq!(
            environment_dirs(&[root.join("nothing")]).unwrap(),
            [root.join("nothing")]
        );
        assert!(matches!(
            environment_dirs(&[root.join("missing")]),
            Err(ManifestError::Io { .. })
        ));
    }
}
