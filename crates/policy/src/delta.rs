//! Access delta: the access a policy change adds and removes, for plan output.
//!
//! A document is read as grants: who (principal) may or may not (effect) do what
//! (action) on what (resource), under which conditions. Grants are grouped by
//! (effect, principal, resource, conditions); within a group the actions form a set over
//! the catalogue (`s3:Get*` is the set of the S3 actions it matches). A group of the new
//! documents adds access only for the actions no group of the old documents covers with
//! the same or a broader principal and resource and the same or fewer conditions; the
//! same the other way round for removals. So equal access written differently
//! (statements split, merged or reordered, a string versus a one-element list, action
//! case, value order, `s3:Get*` versus the list of what it matches) is no delta, and a new
//! statement already covered by an old one adds nothing.
//!
//! Output stays readable: a pattern is shown as the pattern, not as the forty actions it
//! matches; when only part of it is new, as the few new actions or as the pattern with an
//! `except` list of the actions granted before.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{catalogue, Catalogue, Resolved};
use crate::glob::Pattern;
use crate::normalize::aws_principal;
use crate::statement::{statements, Conditions, Effect, NClause};

/// One condition of a grant, as a test: `operator` on `key` against `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantCondition {
    /// The operator as written, e.g. `StringEquals`.
    pub operator: String,
    /// The key as written, e.g. `iam:PassedToService`.
    pub key: String,
    /// The values, sorted.
    pub values: Vec<String>,
}

/// One grant of access (or, with [`Effect::Deny`], one denial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Allow or Deny.
    pub effect: Effect,
    /// The action, the pattern as written (`s3:Get*`), or `*`.
    pub action: String,
    /// Actions of `action` this grant is not about: a `NotAction` list, or the part of
    /// a pattern that was granted before (or still is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// The resource (identity, bucket and key policies); `None` in trust policies and
    /// for `NotResource` grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// A `NotResource` list: every resource but these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_resources: Vec<String>,
    /// The principal (`AWS:123456789012`, `Service:lambda.amazonaws.com`, `*`) in
    /// trust, bucket and key policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// A `NotPrincipal` list: every principal but these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_principals: Vec<String>,
    /// Conditions that must all hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<GrantCondition>,
}

impl fmt::Display for Grant {
    /// `Allow iam:PassRole on arn:...:role/MLSpace* when iam:PassedToService = sagemaker.amazonaws.com`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.effect, self.action)?;
        if !self.except.is_empty() {
            write!(f, " except {}", short_list(&self.except, 5))?;
        }
        if let Some(r) = &self.resource {
            write!(f, " on {r}")?;
        }
        if !self.not_resources.is_empty() {
            write!(
                f,
                " on every resource except {}",
                short_list(&self.not_resources, 5)
            )?;
        }
        if let Some(p) = &self.principal {
            write!(f, " to {}", if p == "AWS:*" { "*" } else { p })?;
        }
        if !self.not_principals.is_empty() {
            write!(
                f,
                " to every principal except {}",
                short_list(&self.not_principals, 5)
            )?;
        }
        for (i, c) in self.conditions.iter().enumerate() {
            f.write_str(if i == 0 { " when " } else { " and " })?;
            write_condition(f, c)?;
        }
        Ok(())
    }
}

fn short_list(items: &[String], max: usize) -> String {
    if items.len() <= max {
        items.join(", ")
    } else {
        format!("{} (+{} more)", items[..max].join(", "), items.len() - max)
    }
}

/// `key = value`, `key in [a, b]`, `key like v`, `key < 3`, `key is present`, ...
fn write_condition(f: &mut fmt::Formatter<'_>, c: &GrantCondition) -> fmt::Result {
    let parsed = crate::condition::ConditionOperator::parse(&c.operator);
    let Some(op) = parsed else {
        return write!(f, "{} {} {}", c.key, c.operator, c.values.join(", "));
    };
    match op.qualifier {
        Some(crate::condition::SetQualifier::ForAnyValue) => f.write_str("any of ")?,
        Some(crate::condition::SetQualifier::ForAllValues) => f.write_str("all of ")?,
        None => {}
    }
    if op.base == "Null" {
        let absent = c.values.iter().all(|v| v.eq_ignore_ascii_case("true"));
        write!(
            f,
            "{} is {}",
            c.key,
            if absent { "absent" } else { "present" }
        )?;
        return Ok(());
    }
    let many = c.values.len() > 1;
    let (one_word, many_word, suffix) = match op.base {
        "StringEquals" | "ArnEquals" | "NumericEquals" | "DateEquals" | "Bool" | "BinaryEquals" => {
            ("=", "in", "")
        }
        "StringEqualsIgnoreCase" => ("=", "in", " (any case)"),
        "StringNotEquals" | "ArnNotEquals" | "NumericNotEquals" | "DateNotEquals" => {
            ("!=", "not in", "")
        }
        "StringNotEqualsIgnoreCase" => ("!=", "not in", " (any case)"),
        "StringLike" | "ArnLike" => ("like", "like any of", ""),
        "StringNotLike" | "ArnNotLike" => ("not like", "not like any of", ""),
        "NumericLessThan" | "DateLessThan" => ("<", "< any of", ""),
        "NumericLessThanEquals" | "DateLessThanEquals" => ("<=", "<= any of", ""),
        "NumericGreaterThan" | "DateGreaterThan" => (">", "> any of", ""),
        "NumericGreaterThanEquals" | "DateGreaterThanEquals" => (">=", ">= any of", ""),
        "IpAddress" => ("in", "in", ""),
        "NotIpAddress" => ("not in", "not in", ""),
        _ => (op.base, op.base, ""),
    };
    if many || c.values.is_empty() {
        write!(f, "{} {many_word} [{}]{suffix}", c.key, c.values.join(", "))?;
    } else {
        write!(
            f,
            "{} {one_word} {}{suffix}",
            c.key,
            c.values.first().map_or("", String::as_str)
        )?;
    }
    if op.if_exists {
        f.write_str(" (if present)")?;
    }
    Ok(())
}

/// The access a change adds and removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessDelta {
    /// Grants (and denials) the new documents have and the old ones do not.
    pub added: Vec<Grant>,
    /// Grants (and denials) the old documents had and the new ones do not.
    pub removed: Vec<Grant>,
}

impl AccessDelta {
    /// Whether the change widens access: an Allow added or a Deny removed.
    pub fn widens(&self) -> bool {
        self.added.iter().any(|g| g.effect == Effect::Allow)
            || self.removed.iter().any(|g| g.effect == Effect::Deny)
    }

    /// Whether nothing is added or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

impl fmt::Display for AccessDelta {
    /// One line a grant: `+ Allow ...` for added, `- Allow ...` for removed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for g in &self.added {
            writeln!(f, "+ {g}")?;
        }
        for g in &self.removed {
            writeln!(f, "- {g}")?;
        }
        Ok(())
    }
}

/// The plan-level line: whether the plan, made of these deltas, widens access.
pub fn plan_access_line<'a>(deltas: impl IntoIterator<Item = &'a AccessDelta>) -> String {
    let (mut allow_added, mut allow_removed, mut deny_added, mut deny_removed) = (0, 0, 0, 0);
    for d in deltas {
        for g in &d.added {
            match g.effect {
                Effect::Allow => allow_added += 1,
                Effect::Deny => deny_added += 1,
            }
        }
        for g in &d.removed {
            match g.effect {
                Effect::Allow => allow_removed += 1,
                Effect::Deny => deny_removed += 1,
            }
        }
    }
    if allow_added + allow_removed + deny_added + deny_removed == 0 {
        return "Access: unchanged (no grant added or removed)".to_owned();
    }
    let counts = format!(
        "{allow_added} allow(s) added, {deny_removed} deny(s) removed; \
         {allow_removed} allow(s) removed, {deny_added} deny(s) added"
    );
    if allow_added + deny_removed > 0 {
        format!("Access: this plan WIDENS access ({counts})")
    } else {
        format!("Access: this plan does not widen access, it only narrows it ({counts})")
    }
}

/// The access delta of changing one document from `old` to `new` (`None`: absent, as
/// when a policy is created or deleted).
pub fn access_delta(old: Option<&Value>, new: Option<&Value>) -> AccessDelta {
    access_delta_set(old.as_slice(), new.as_slice())
}

/// The access delta of attaching `doc` to a principal whose other documents are
/// `others`: what `doc` grants that `others` do not already grant.
pub fn attach_delta(doc: &Value, others: &[&Value]) -> AccessDelta {
    let mut with: Vec<&Value> = others.to_vec();
    with.push(doc);
    access_delta_set(others, &with)
}

/// The access delta of detaching `doc` from a principal whose other documents are
/// `others`: what goes away with `doc` and `others` do not also grant.
pub fn detach_delta(doc: &Value, others: &[&Value]) -> AccessDelta {
    let mut with: Vec<&Value> = others.to_vec();
    with.push(doc);
    access_delta_set(&with, others)
}

/// The access delta between two sets of documents (all the documents of a principal
/// before and after, for one).
pub fn access_delta_set(old: &[&Value], new: &[&Value]) -> AccessDelta {
    let cat = catalogue();
    let mut sets = SetCache::new(cat);
    let old = Side::build(old, &mut sets);
    let new = Side::build(new, &mut sets);
    let mut added = new.uncovered_by(&old, cat);
    let mut removed = old.uncovered_by(&new, cat);
    let order = |a: &Grant, b: &Grant| {
        (a.effect, &a.resource, &a.principal, &a.action).cmp(&(
            b.effect,
            &b.resource,
            &b.principal,
            &b.action,
        ))
    };
    added.sort_by(order);
    removed.sort_by(order);
    AccessDelta { added, removed }
}

/// A set of actions: catalogue ids as bits, plus names the catalogue lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ActionSet {
    bits: Vec<u64>,
    /// Lowercased `Action` strings that match nothing in the catalogue.
    literals: BTreeSet<String>,
    /// Whether every such unknown name is included (`*`, `NotAction`).
    all_literals: bool,
}

impl ActionSet {
    fn empty(words: usize) -> Self {
        Self {
            bits: vec![0; words],
            literals: BTreeSet::new(),
            all_literals: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0) && self.literals.is_empty() && !self.all_literals
    }

    fn count(&self) -> usize {
        self.bits
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>()
            + self.literals.len()
    }

    fn union_with(&mut self, o: &ActionSet) {
        for (a, b) in self.bits.iter_mut().zip(&o.bits) {
            *a |= *b;
        }
        self.literals.extend(o.literals.iter().cloned());
        self.all_literals |= o.all_literals;
    }

    /// `self` less `o`.
    fn minus(&self, o: &ActionSet) -> ActionSet {
        let bits = self.bits.iter().zip(&o.bits).map(|(a, b)| a & !b).collect();
        let literals = if o.all_literals {
            BTreeSet::new()
        } else {
            self.literals
                .iter()
                .filter(|l| !o.covers_literal(l))
                .cloned()
                .collect()
        };
        ActionSet {
            bits,
            literals,
            all_literals: self.all_literals && !o.all_literals,
        }
    }

    fn intersect(&self, o: &ActionSet) -> ActionSet {
        let bits = self.bits.iter().zip(&o.bits).map(|(a, b)| a & b).collect();
        let literals = self
            .literals
            .iter()
            .filter(|l| o.covers_literal(l))
            .cloned()
            .chain(
                o.literals
                    .iter()
                    .filter(|l| self.all_literals && !self.literals.contains(*l))
                    .cloned(),
            )
            .collect();
        ActionSet {
            bits,
            literals,
            all_literals: self.all_literals && o.all_literals,
        }
    }

    fn covers_literal(&self, l: &str) -> bool {
        self.all_literals || self.literals.contains(l)
    }

    fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, w)| {
            (0..64)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| (i * 64 + b) as u32)
        })
    }

    /// The actions by name (catalogue spelling), then the unknown ones.
    fn names(&self, cat: &Catalogue) -> Vec<String> {
        let mut out: Vec<String> = self.ids().map(|id| cat.action_name(id)).collect();
        out.extend(self.literals.iter().cloned());
        out
    }
}

/// Action sets of `Action` strings, computed once per distinct string.
struct SetCache<'c> {
    cat: &'c Catalogue,
    words: usize,
    cache: HashMap<String, ActionSet>,
}

impl<'c> SetCache<'c> {
    fn new(cat: &'c Catalogue) -> Self {
        Self {
            cat,
            words: (cat.action_count() as usize).div_ceil(64),
            cache: HashMap::new(),
        }
    }

    fn of(&mut self, action: &str) -> ActionSet {
        let key = action.to_ascii_lowercase();
        if let Some(s) = self.cache.get(&key) {
            return s.clone();
        }
        let mut set = ActionSet::empty(self.words);
        match self.cat.resolve(action) {
            Resolved::All => {
                let n = self.cat.action_count() as usize;
                for (i, w) in set.bits.iter_mut().enumerate() {
                    let bits_here = n.saturating_sub(i * 64).min(64);
                    *w = if bits_here == 64 {
                        u64::MAX
                    } else {
                        (1u64 << bits_here) - 1
                    };
                }
                set.all_literals = true;
            }
            Resolved::Actions { svc, actions } => {
                let s = self.cat.service_at(svc);
                for a in actions {
                    let id = s.action_id(a) as usize;
                    set.bits[id / 64] |= 1 << (id % 64);
                }
            }
            _ => {
                set.literals.insert(key.clone());
            }
        }
        self.cache.insert(key, set.clone());
        set
    }

    fn all(&mut self) -> ActionSet {
        self.of("*")
    }

    /// The spelling to show: the catalogue's for a known action, else as written with
    /// the service prefix lowercased.
    fn display(&self, action: &str) -> String {
        if let Some((svc, a)) = self.cat.action(action) {
            return format!("{}:{}", svc.prefix(), a.name());
        }
        match action.split_once(':') {
            Some((p, n)) => format!("{}:{n}", p.to_ascii_lowercase()),
            None => action.to_owned(),
        }
    }
}

/// Who a group of grants is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    /// Identity policies: whoever holds the policy.
    Holder,
    /// One principal, `Kind:id` (`AWS:*` for everyone).
    One(String),
    /// Everyone except these (sorted).
    AllBut(Vec<String>),
}

/// What a group of grants is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum On {
    /// Trust policies: the role itself.
    Role,
    /// One resource pattern.
    One(String),
    /// Every resource except these (sorted).
    AllBut(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    effect: Effect,
    who: Who,
    on: On,
    conditions: Conditions,
}

/// An `Action` entry (or a whole `NotAction` element) of a group.
#[derive(Debug, Clone)]
struct Entry {
    display: String,
    except: Vec<String>,
    set: ActionSet,
}

#[derive(Debug, Clone)]
struct Group {
    key: Key,
    entries: Vec<Entry>,
    set: ActionSet,
}

struct Side {
    groups: Vec<Group>,
}

impl Side {
    fn build(docs: &[&Value], sets: &mut SetCache<'_>) -> Side {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        for doc in docs {
            for s in statements(doc) {
                let (Some(effect), Some(action)) = (s.effect, &s.action) else {
                    continue;
                };
                let entries: Vec<Entry> = if action.not {
                    let mut excluded = ActionSet::empty(sets.words);
                    for (_, a) in &action.items {
                        excluded.union_with(&sets.of(a));
                    }
                    let mut except: Vec<String> =
                        action.items.iter().map(|(_, a)| sets.display(a)).collect();
                    except.sort();
                    except.dedup();
                    vec![Entry {
                        display: "*".to_owned(),
                        except,
                        set: sets.all().minus(&excluded),
                    }]
                } else {
                    action
                        .items
                        .iter()
                        .map(|(_, a)| Entry {
                            display: sets.display(a),
                            except: Vec::new(),
                            set: sets.of(a),
                        })
                        .collect()
                };
                let whos: Vec<Who> = match &s.principal {
                    None => vec![Who::Holder],
                    Some(p) if p.not => {
                        let mut ids: Vec<String> = p
                            .items
                            .iter()
                            .map(|i| principal_text(i.kind, i.id))
                            .collect();
                        ids.sort();
                        ids.dedup();
                        vec![Who::AllBut(ids)]
                    }
                    Some(p) => p
                        .items
                        .iter()
                        .map(|i| Who::One(principal_text(i.kind, i.id)))
                        .collect(),
                };
                let ons: Vec<On> = match &s.resource {
                    None => vec![On::Role],
                    Some(r) if r.not => {
                        let mut items: Vec<String> =
                            r.items.iter().map(|(_, x)| (*x).to_owned()).collect();
                        items.sort();
                        items.dedup();
                        vec![On::AllBut(items)]
                    }
                    Some(r) => r
                        .items
                        .iter()
                        .map(|(_, x)| On::One((*x).to_owned()))
                        .collect(),
                };
                let conditions = s.conditions();
                for who in &whos {
                    for on in &ons {
                        let key = Key {
                            effect,
                            who: who.clone(),
                            on: on.clone(),
                            conditions: conditions.clone(),
                        };
                        let gi = *index.entry(key.clone()).or_insert_with(|| {
                            groups.push(Group {
                                key,
                                entries: Vec::new(),
                                set: ActionSet::empty(sets.words),
                            });
                            groups.len() - 1
                        });
                        let g = &mut groups[gi];
                        for e in &entries {
                            g.set.union_with(&e.set);
                            if !g.entries.iter().any(|x| {
                                x.display.eq_ignore_ascii_case(&e.display) && x.except == e.except
                            }) {
                                g.entries.push(e.clone());
                            }
                        }
                    }
                }
            }
        }
        Side { groups }
    }

    /// The grants of `self` that `other` does not cover, as readable grants.
    ///
    /// A group that another group of the same side covers is left out too: it is either
    /// covered by `other` through that group, or implied by that group's own grant.
    fn uncovered_by(&self, other: &Side, cat: &Catalogue) -> Vec<Grant> {
        let mut out = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            let mut covered = ActionSet::empty(g.set.bits.len());
            for o in &other.groups {
                if key_covers(&o.key, &g.key) {
                    covered.union_with(&o.set);
                }
            }
            for (j, o) in self.groups.iter().enumerate() {
                // Of two groups covering each other, the first one stands for both.
                if j != i && key_covers(&o.key, &g.key) && (j < i || !key_covers(&g.key, &o.key)) {
                    covered.union_with(&o.set);
                }
            }
            let uncovered = g.set.minus(&covered);
            if uncovered.is_empty() {
                continue;
            }
            out.extend(readable(g, &uncovered, cat));
        }
        out
    }
}

/// The grants of group `g` for the actions in `uncovered`, using the group's own
/// entries where they fit: whole entries as written, else the few new actions by name,
/// else the entry with the part not concerned listed under `except`.
fn readable(g: &Group, uncovered: &ActionSet, cat: &Catalogue) -> Vec<Grant> {
    const FEW: usize = 3;
    let mut entries: Vec<&Entry> = g.entries.iter().collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.set.count()));
    let mut remaining = uncovered.clone();
    let mut out = Vec::new();
    for e in entries {
        let part = e.set.intersect(&remaining);
        if part.is_empty() {
            continue;
        }
        if part == e.set {
            out.push(grant(&g.key, e.display.clone(), e.except.clone()));
        } else {
            let names = part.names(cat);
            if names.len() <= FEW {
                for n in names {
                    out.push(grant(&g.key, n, Vec::new()));
                }
            } else {
                let mut except = e.except.clone();
                except.extend(e.set.minus(&part).names(cat));
                out.push(grant(&g.key, e.display.clone(), except));
            }
        }
        remaining = remaining.minus(&e.set);
    }
    out
}

fn grant(key: &Key, action: String, except: Vec<String>) -> Grant {
    let (resource, not_resources) = match &key.on {
        On::Role => (None, Vec::new()),
        On::One(r) => (Some(r.clone()), Vec::new()),
        On::AllBut(rs) => (None, rs.clone()),
    };
    let (principal, not_principals) = match &key.who {
        Who::Holder => (None, Vec::new()),
        Who::One(p) => (Some(p.clone()), Vec::new()),
        Who::AllBut(ps) => (None, ps.clone()),
    };
    Grant {
        effect: key.effect,
        action,
        except,
        resource,
        not_resources,
        principal,
        not_principals,
        conditions: key.conditions.clauses.iter().map(grant_condition).collect(),
    }
}

fn grant_condition(c: &NClause) -> GrantCondition {
    GrantCondition {
        operator: c.operator.clone(),
        key: c.display_key.clone(),
        values: c.values.iter().cloned().collect(),
    }
}

/// `Kind:id`, with `"*"` and account roots in one spelling each.
fn principal_text(kind: &str, id: &str) -> String {
    if kind == "*" {
        return "AWS:*".to_owned();
    }
    if kind == "AWS" {
        return format!("AWS:{}", aws_principal(id));
    }
    format!("{kind}:{id}")
}

/// Whether the grants of key `a` apply wherever those of `b` do: same effect, a principal
/// and resource at least as broad, and conditions that `b`'s conditions imply.
fn key_covers(a: &Key, b: &Key) -> bool {
    a.effect == b.effect
        && who_covers(&a.who, &b.who)
        && on_covers(&a.on, &b.on)
        && b.conditions.implies(&a.conditions)
}

fn who_covers(a: &Who, b: &Who) -> bool {
    match (a, b) {
        (Who::Holder, Who::Holder) => true,
        (Who::One(x), _) if x == "AWS:*" => !matches!(b, Who::Holder),
        (Who::One(x), Who::One(y)) => x == y,
        (Who::AllBut(x), Who::AllBut(y)) => x.iter().all(|p| y.contains(p)),
        (Who::AllBut(x), Who::One(y)) => !x.contains(y) && y != "AWS:*",
        _ => false,
    }
}

fn on_covers(a: &On, b: &On) -> bool {
    match (a, b) {
        (On::Role, On::Role) => true,
        (On::One(x), On::One(y)) => x == y || Pattern::policy(x).covers(&Pattern::policy(y)),
        (On::One(x), On::AllBut(_)) => x == "*",
        (On::AllBut(x), On::AllBut(y)) => x.iter().all(|r| y.contains(r)),
        (On::AllBut(x), On::One(y)) => {
            let yp = Pattern::policy(y);
            !x.iter().any(|r| Pattern::policy(r).intersects(&yp))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn delta(old: Value, new: Value) -> AccessDelta {
        access_delta(Some(&old), Some(&new))
    }

    fn lines(d: &AccessDelta) -> Vec<String> {
        d.to_string().lines().map(str::to_owned).collect()
    }

    #[test]
    fn display_matches_the_plan_format() {
        let new = doc(json!([{"Effect": "Allow", "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::123456789012:role/MLSpace*",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}]));
        let d = access_delta(None, Some(&new));
        assert_eq!(
            lines(&d),
            ["+ Allow iam:PassRole on arn:aws:iam::123456789012:role/MLSpace* when iam:PassedToService = sagemaker.amazonaws.com"]
        );
        assert!(d.widens());
        let d = access_delta(Some(&new), None);
        assert_eq!(d.removed.len(), 1);
        assert!(!d.widens());
    }

    #[test]
    fn equal_access_written_differently_is_no_delta() {
        let a = doc(json!([
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"]},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/x",
             "Condition": {"StringEquals": {"iam:PassedToService": ["a.amazonaws.com", "b.amazonaws.com"]}}}
        ]));
        // Split, reordered, one-element lists, action case, value order, key case.
        let b = doc(json!([
            {"Effect": "Allow", "Action": "iam:passrole", "Resource": ["arn:aws:iam::123456789012:role/x"],
             "Condition": {"StringEquals": {"iam:passedToService": ["b.amazonaws.com", "a.amazonaws.com"]}}},
            {"Effect": "Allow", "Action": ["S3:putobject"], "Resource": "arn:aws:s3:::c/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::c/*", "arn:aws:s3:::b/*"]},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}
        ]));
        let d = delta(a.clone(), b.clone());
        assert!(d.is_empty(), "{d}");
        assert!(delta(b, a).is_empty());
    }

    #[test]
    fn pattern_equals_its_expansion() {
        let cat = catalogue();
        let s3 = cat.service("s3").unwrap();
        let all_gets: Vec<String> = s3
            .actions_matching("Get*")
            .map(|i| format!("s3:{}", s3.actions()[i as usize].name()))
            .collect();
        let pattern = doc(json!([{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]));
        let listed = doc(json!([{"Effect": "Allow", "Action": all_gets, "Resource": "*"}]));
        assert!(delta(pattern.clone(), listed.clone()).is_empty());
        assert!(delta(listed, pattern).is_empty());
    }

    #[test]
    fn covered_statements_add_nothing() {
        let old =
            doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]));
        let new = doc(json!([
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/x/*",
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
        ]));
        let d = delta(old.clone(), new.clone());
        assert!(d.added.is_empty(), "{d}");
        // Removing the broad statement removes access, shown as written.
        let d = delta(new, old.clone());
        assert!(d.is_empty(), "{d}");
        let narrower = doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
        );
        let d = delta(old, narrower);
        assert!(d.added.is_empty());
        assert_eq!(d.removed.len(), 1);
        assert!(lines(&d)[0].starts_with("- Allow s3:* except "), "{d}");
        assert!(lines(&d)[0].contains("s3:GetObject"));
    }

    #[test]
    fn partial_patterns_stay_readable() {
        let old = doc(
            json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectAcl"], "Resource": "*"}]),
        );
        let new = doc(json!([{"Effect": "Allow", "Action": ["s3:GetObject*"], "Resource": "*"}]));
        let d = delta(old.clone(), new);
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].action, "s3:GetObject*");
        assert_eq!(d.added[0].except, ["s3:GetObject", "s3:GetObjectAcl"]);
        // A few new actions are named one by one.
        let new = doc(
            json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectAcl", "s3:GetObjectTagging"], "Resource": "*"}]),
        );
        assert_eq!(
            lines(&delta(old, new)),
            ["+ Allow s3:GetObjectTagging on *"]
        );
    }

    #[test]
    fn conditions_narrow_and_widen() {
        let base = |values: Value| {
            doc(
                json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": values}}}]),
            )
        };
        let one = base(json!("sagemaker.amazonaws.com"));
        let two = base(json!(["sagemaker.amazonaws.com", "lambda.amazonaws.com"]));
        let d = delta(one.clone(), two.clone());
        assert!(d.widens());
        // The old grant is covered by the new, broader one: nothing is removed.
        assert_eq!(
            lines(&d),
            ["+ Allow iam:PassRole on * when iam:PassedToService in [lambda.amazonaws.com, sagemaker.amazonaws.com]"]
        );
        let d = delta(two, one);
        assert!(d.added.is_empty(), "{d}");
        assert_eq!(d.removed.len(), 1);
        assert!(!d.widens());
        let unconditional =
            doc(json!([{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]));
        let d = delta(
            unconditional.clone(),
            base(json!("sagemaker.amazonaws.com")),
        );
        assert!(d.added.is_empty());
        assert!(!d.widens());
    }

    #[test]
    fn denies_count_the_other_way() {
        let allow = json!({"Effect": "Allow", "Action": "s3:*", "Resource": "*"});
        let deny = json!({"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"});
        let d = delta(doc(json!([allow.clone(), deny])), doc(json!([allow])));
        assert!(d.widens());
        assert_eq!(lines(&d), ["- Deny s3:DeleteBucket on *"]);
    }

    #[test]
    fn principals_and_not_elements() {
        let trust = |p: Value| {
            doc(json!([{"Effect": "Allow", "Principal": p, "Action": "sts:AssumeRole"}]))
        };
        let d = delta(
            trust(json!({"Service": "lambda.amazonaws.com"})),
            trust(json!({"Service": ["lambda.amazonaws.com", "sagemaker.amazonaws.com"]})),
        );
        assert_eq!(
            lines(&d),
            ["+ Allow sts:AssumeRole to Service:sagemaker.amazonaws.com"]
        );
        // Account ID and root ARN are one principal; "*" is everyone.
        assert!(delta(
            trust(json!({"AWS": "123456789012"})),
            trust(json!({"AWS": "arn:aws:iam::123456789012:root"}))
        )
        .is_empty());
        let d = delta(trust(json!({"AWS": "123456789012"})), trust(json!("*")));
        assert_eq!(lines(&d)[0], "+ Allow sts:AssumeRole to *");
        let not = doc(
            json!([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "NotResource": "arn:aws:s3:::secret/*"}]),
        );
        let d = access_delta(None, Some(&not));
        assert_eq!(
            lines(&d),
            ["+ Allow * except iam:*, organizations:* on every resource except arn:aws:s3:::secret/*"]
        );
        let json = serde_json::to_value(&d.added[0]).unwrap();
        assert_eq!(json["except"], json!(["iam:*", "organizations:*"]));
        assert!(json.get("resource").is_none());
    }

    #[test]
    fn attach_and_detach_against_the_other_documents() {
        let broad = doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]));
        let narrow = doc(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
        );
        assert!(attach_delta(&narrow, &[&broad]).is_empty());
        assert!(detach_delta(&narrow, &[&broad]).is_empty());
        let d = attach_delta(&broad, &[&narrow]);
        assert_eq!(lines(&d), ["+ Allow s3:* on *"]);
        let d = detach_delta(&broad, &[]);
        assert_eq!(lines(&d), ["- Allow s3:* on *"]);
    }

    #[test]
    fn condition_rendering() {
        let d = access_delta(
            None,
            Some(&doc(
                json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
                "Condition": {
                    "StringLike": {"s3:prefix": ["a/*", "b/*"]},
                    "Null": {"aws:RequestTag/team": "false"},
                    "NumericLessThanEqualsIfExists": {"s3:max-keys": 10},
                    "ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": "Team"},
                    "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}
                }}]),
            )),
        );
        assert_eq!(
            lines(&d),
            ["+ Allow s3:ListBucket on arn:aws:s3:::b when any of aws:TagKeys = Team (any case) and aws:SourceIp in 10.0.0.0/8 and aws:RequestTag/team is present and s3:max-keys <= 10 (if present) and s3:prefix like any of [a/*, b/*]"]
        );
    }

    #[test]
    fn plan_line() {
        let a = doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]));
        let none = AccessDelta::default();
        assert_eq!(
            plan_access_line([&none]),
            "Access: unchanged (no grant added or removed)"
        );
        let add = access_delta(None, Some(&a));
        assert!(plan_access_line([&none, &add])
            .starts_with("Access: this plan WIDENS access (1 allow(s) added"));
        let rm = access_delta(Some(&a), None);
        assert!(plan_access_line([&rm]).contains("does not widen"));
    }
}
