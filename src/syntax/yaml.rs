//! YAML documents with a position for every node.
//!
//! serde-based YAML crates lose positions once a value is deserialized, but every
//! validation error must name `FILE:LINE:COL`. So documents are parsed here from
//! yaml-rust2's event stream into plain `serde_json::Value`s (the typed layer then
//! deserializes from those) plus a [`SourceMap`] from JSON pointer to position.
//!
//! The text is untrusted (a commit anyone with push access made), so parsing is bounded
//! and strict:
//! - a [`Budget`] shared by every file of a revision caps the documents and the nodes
//!   (counted after alias expansion, and counting the copies anchors keep), so a
//!   "billion laughs" alias bomb is refused after a few hundred thousand nodes instead of
//!   allocating until the process dies;
//! - a NUL byte is an error (the scanner would take it for the end of the input and
//!   silently drop the rest of the document); a leading byte-order mark is skipped;
//! - only YAML 1.2 and its core schema: a `%YAML` directive other than 1.2 and any tag
//!   other than the core schema's (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`,
//!   `!!seq`, `!!map`, and the non-specific `!`) are errors, never silently ignored.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, Scanner, TScalarStyle, TokenType};

/// Documents one revision may hold, unless configured otherwise (`--max-documents`).
pub const DEFAULT_MAX_DOCUMENTS: usize = 5_000;

/// YAML nodes (scalars, sequences, mappings; aliases count as the nodes they expand to)
/// one revision may hold, unless configured otherwise (`--max-yaml-nodes`).
pub const DEFAULT_MAX_NODES: usize = 250_000;

/// The prefix `!!` stands for: YAML's own tags.
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// File the node came from (documents may splice in JSON files).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// Positions of the nodes of one document, keyed by JSON pointer.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    values: HashMap<String, Loc>,
    keys: HashMap<String, Loc>,
}

impl Loc {
    /// A problem of a whole file (no line): shown as `FILE: error: ...`.
    pub fn file(file: Arc<Path>) -> Loc {
        Loc {
            file,
            line: 0,
            col: 0,
        }
    }
}

/// What the YAML of one revision may still hold. One budget is shared by every file
/// parsed for a revision (the manifests and the files they name), so the limits hold for
/// the revision as a whole.
#[derive(Debug, Clone)]
pub struct Budget {
    max_documents: usize,
    max_nodes: usize,
    documents: usize,
    nodes: usize,
    exhausted: bool,
}

impl Budget {
    /// At most `max_documents` documents and `max_nodes` nodes.
    pub fn new(max_documents: usize, max_nodes: usize) -> Budget {
        Budget {
            max_documents,
            max_nodes,
            documents: 0,
            nodes: 0,
            exhausted: false,
        }
    }

    /// Whether a limit was hit: parsing more of the revision would only repeat the error.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Documents parsed so far.
    pub fn documents(&self) -> usize {
        self.documents
    }

    /// Nodes made so far (including alias expansions and anchor copies).
    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::new(DEFAULT_MAX_DOCUMENTS, DEFAULT_MAX_NODES)
    }
}

impl SourceMap {
    /// Position of the value at `pointer`, or of the nearest ancestor that has one.
    pub fn value(&self, pointer: &str) -> Option<&Loc> {
        let mut p = pointer;
        loop {
            if let Some(l) = self.values.get(p) {
                return Some(l);
            }
            if p.is_empty() {
                return None;
            }
            p = &p[..p.rfind('/').unwrap_or(0)];
        }
    }

    /// Position of the key of the map entry at `pointer` (falls back to the value).
    pub fn key(&self, pointer: &str) -> Option<&Loc> {
        self.keys.get(pointer).or_else(|| self.value(pointer))
    }

    /// Graft another document's map under `prefix` (used for `documentFile`).
    pub fn graft(&mut self, prefix: &str, other: SourceMap) {
        for (k, v) in other.values {
            self.values.insert(format!("{prefix}{k}"), v);
        }
        for (k, v) in other.keys {
            self.keys.insert(format!("{prefix}{k}"), v);
        }
    }
}

/// One parsed YAML document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document as JSON data.
    pub value: Value,
    /// Where each node came from.
    pub map: SourceMap,
}

/// A YAML syntax or structure error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// Where the error is.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

/// Escape one JSON pointer segment (RFC 6901).
pub fn escape_segment(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['~', '/']) {
        s.replace('~', "~0").replace('/', "~1").into()
    } else {
        s.into()
    }
}

/// Parse every document of a YAML stream, within the default limits.
pub fn parse_documents(file: &Arc<Path>, text: &str) -> Result<Vec<Document>, YamlError> {
    parse_documents_within(file, text, &mut Budget::default())
}

/// Parse every document of a YAML stream, charging what it holds to `budget`.
pub fn parse_documents_within(
    file: &Arc<Path>,
    text: &str,
    budget: &mut Budget,
) -> Result<Vec<Document>, YamlError> {
    // Editors hide a byte-order mark; YAML allows one at the start of the stream.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = text.find('\0') {
        return Err(YamlError {
            loc: loc_of_offset(file, text, at),
            message: format!(
                "NUL byte at byte offset {at}: a manifest is text (the rest of the file would be ignored)"
            ),
        });
    }
    check_directives(file, text)?;
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        docs: Vec::new(),
        anchors: HashMap::new(),
        map: SourceMap::default(),
        error: None,
        budget,
        tree_nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    // Events one by one rather than `Parser::load`, so that parsing stops at the builder's
    // first error (a limit, a tag): the rest of a large file is not even scanned.
    let parsed = loop {
        match parser.next_token() {
            Err(e) => break Err(e),
            Ok((ev, mark)) => {
                let end = ev == Event::StreamEnd;
                builder.on_event(ev, mark);
                if end || builder.error.is_some() {
                    break Ok(());
                }
            }
        }
    };
    if let Some(e) = builder.error {
        return Err(e);
    }
    if let Err(e) = parsed {
        let m = e.marker();
        return Err(YamlError {
            loc: loc(file, m),
            message: format!("YAML syntax error: {}", e.info()),
        });
    }
    Ok(builder.docs)
}

/// The line and column of byte `offset` of `text` (1-based; columns in characters).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

fn loc_of_offset(file: &Arc<Path>, text: &str, offset: usize) -> Loc {
    let (line, col) = line_col(text, offset);
    Loc {
        file: file.clone(),
        line,
        col,
    }
}

/// `%YAML` directives must say 1.2 (the version this parser reads: `yes` is a string, not
/// a boolean). Only a stream with a line starting with `%` can hold one, so others are not
/// scanned twice.
fn check_directives(file: &Arc<Path>, text: &str) -> Result<(), YamlError> {
    if !(text.starts_with('%') || text.contains("\n%")) {
        return Ok(());
    }
    let mut scanner = Scanner::new(text.chars());
    for token in &mut scanner {
        if let TokenType::VersionDirective(major, minor) = token.1 {
            if (major, minor) != (1, 2) {
                return Err(YamlError {
                    loc: loc(file, &token.0),
                    message: format!(
                        "`%YAML {major}.{minor}`: manifests are YAML 1.2; write `%YAML 1.2` or remove the directive"
                    ),
                });
            }
        }
    }
    // A scan error, if any, is reported by the parser.
    Ok(())
}

/// How a tag reads in the manifest: `!!binary`, `!local`, or verbatim `!<uri>`.
fn show_tag(tag: &Tag) -> String {
    if tag.handle == CORE_PREFIX {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("!<{}{}>", tag.handle, tag.suffix)
    }
}

/// The core schema tag of `tag` (`str`, `map`, ...), `Some("")` for the non-specific `!`,
/// `None` for any other tag.
fn core_tag(tag: &Tag) -> Option<&str> {
    if tag.handle == CORE_PREFIX {
        return Some(tag.suffix.as_str());
    }
    // The non-specific tag `!`: "resolve as a string / plain collection".
    (tag.handle.is_empty() && tag.suffix == "!" || tag.handle == "!" && tag.suffix.is_empty())
        .then_some("")
}

fn unsupported_tag(tag: &Tag) -> String {
    format!(
        "YAML tag `{}` is not supported: manifests use YAML 1.2's core schema \
         (!!str, !!int, !!float, !!bool, !!null, !!seq, !!map)",
        show_tag(tag)
    )
}

fn loc(file: &Arc<Path>, m: &Marker) -> Loc {
    Loc {
        file: file.clone(),
        line: m.line(),
        col: m.col() + 1,
    }
}

enum Frame {
    Seq {
        pointer: String,
        items: Vec<Value>,
        anchor: usize,
        /// `tree_nodes` before this node: its size is what was added since.
        first: usize,
    },
    Map {
        pointer: String,
        entries: Map<String, Value>,
        pending_key: Option<String>,
        anchor: usize,
        first: usize,
    },
}

struct Builder<'b> {
    file: Arc<Path>,
    stack: Vec<Frame>,
    docs: Vec<Document>,
    /// Anchored values of the current document with their size in nodes.
    anchors: HashMap<usize, (Value, usize)>,
    map: SourceMap,
    error: Option<YamlError>,
    budget: &'b mut Budget,
    /// Nodes of the documents of this file (alias expansions included, anchor copies
    /// not): subtree sizes are differences of it.
    tree_nodes: usize,
}

impl Builder<'_> {
    /// Charge `n` nodes to the budget; false (and the error recorded) when it runs out.
    fn charge(&mut self, n: usize, mark: &Marker, what: &str) -> bool {
        let used = self.budget.nodes.saturating_add(n);
        if used > self.budget.max_nodes {
            self.budget.exhausted = true;
            let max = self.budget.max_nodes;
            self.fail(
                mark,
                format!(
                    "{what}: the revision would hold more than {max} YAML nodes \
                     (aliases expanded); refused (limit: --max-yaml-nodes)"
                ),
            );
            return false;
        }
        self.budget.nodes = used;
        true
    }

    /// Keep an anchored value for its aliases (a copy: charged to the budget too).
    fn keep_anchor(&mut self, anchor: usize, v: &Value, size: usize, mark: &Marker) {
        if anchor > 0 && self.charge(size, mark, &format!("an anchor of {size} nodes")) {
            self.anchors.insert(anchor, (v.clone(), size));
        }
    }

    /// Pointer of the node about to be produced, and whether it is a map key.
    fn next_pointer(&self) -> (String, bool) {
        match self.stack.last() {
            None => (String::new(), false),
            Some(Frame::Seq { pointer, items, .. }) => {
                (format!("{pointer}/{}", items.len()), false)
            }
            Some(Frame::Map {
                pointer,
                pending_key,
                ..
            }) => match pending_key {
                None => (String::new(), true),
                Some(k) => (format!("{pointer}/{}", escape_segment(k)), false),
            },
        }
    }

    fn fail(&mut self, mark: &Marker, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                loc: loc(&self.file, mark),
                message,
            });
        }
    }

    /// Deliver a finished node to its parent (or finish the document).
    fn push_value(&mut self, v: Value, mark: &Marker) {
        let dup = match self.stack.last_mut() {
            None => {
                let map = std::mem::take(&mut self.map);
                self.docs.push(Document { value: v, map });
                None
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(v);
                None
            }
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => match v {
                    Value::String(s) => {
                        if entries.contains_key(&s) {
                            Some(s)
                        } else {
                            *pending_key = Some(s);
                            None
                        }
                    }
                    Value::Null => {
                        *pending_key = Some("null".into());
                        None
                    }
                    Value::Bool(b) => {
                        *pending_key = Some(b.to_string());
                        None
                    }
                    Value::Number(n) => {
                        *pending_key = Some(n.to_string());
                        None
                    }
                    _ => {
                        // Unreachable in practice: collection keys are refused when they start.
                        *pending_key = Some(String::new());
                        None
                    }
                },
                Some(k) => {
                    entries.insert(k, v);
                    None
                }
            },
        };
        if let Some(k) = dup {
            self.fail(mark, format!("duplicate key `{k}`"));
            // Keep parsing so the stream stays balanced; the value replaces the old one.
            if let Some(Frame::Map { pending_key, .. }) = self.stack.last_mut() {
                *pending_key = Some(k);
            }
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Some(hex) = s.strip_prefix("0x") {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Value::Number(i.into());
            }
        }
        if s.bytes().any(|b| b.is_ascii_digit()) && !s.contains(['_', ':']) {
            if let Ok(f) = s.parse::<f64>() {
                if let Some(n) = Number::from_f64(f) {
                    return Value::Number(n);
                }
            }
        }
    }
    Value::String(s.to_string())
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let seq = matches!(ev, Event::SequenceStart(..));
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let (pointer, is_key) = self.next_pointer();
                if !self.charge(1, &mark, "a scalar") {
                    return;
                }
                self.tree_nodes += 1;
                let l = loc(&self.file, &mark);
                let quoted = style != TScalarStyle::Plain;
                let v = match tag.as_ref().map(|t| (t, core_tag(t))) {
                    None if quoted || is_key => Value::String(text),
                    None => plain_scalar(&text),
                    Some((_, Some("str" | ""))) => Value::String(text),
                    Some((t, Some(core @ ("int" | "float" | "bool" | "null")))) => {
                        match tagged_scalar(core, &text) {
                            Some(v) => v,
                            None => {
                                self.fail(
                                    &mark,
                                    format!(
                                        "`{}` value {text:?} is not a valid {core}",
                                        show_tag(t)
                                    ),
                                );
                                return;
                            }
                        }
                    }
                    Some((t, _)) => {
                        self.fail(&mark, unsupported_tag(t));
                        return;
                    }
                };
                if is_key {
                    if let Some(Frame::Map { pointer: p, .. }) = self.stack.last() {
                        let key_ptr = format!("{p}/{}", escape_segment(&v_as_key(&v)));
                        self.map.keys.insert(key_ptr, l);
                    }
                } else {
                    self.map.values.insert(pointer, l);
                }
                self.keep_anchor(anchor, &v, 1, &mark);
                self.push_value(v, &mark);
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                let (pointer, is_key) = self.next_pointer();
                if is_key {
                    self.fail(&mark, "mapping keys must be scalars".into());
                    return;
                }
                if let Some(t) = &tag {
                    let fits = match core_tag(t) {
                        Some("") => true,
                        Some("seq") => seq,
                        Some("map") => !seq,
                        _ => false,
                    };
                    if !fits {
                        self.fail(&mark, unsupported_tag(t));
                        return;
                    }
                }
                if !self.charge(1, &mark, "a collection") {
                    return;
                }
                let first = self.tree_nodes;
                self.tree_nodes += 1;
                self.map
                    .values
                    .insert(pointer.clone(), loc(&self.file, &mark));
                self.stack.push(if seq {
                    Frame::Seq {
                        pointer,
                        items: Vec::new(),
                        anchor,
                        first,
                    }
                } else {
                    Frame::Map {
                        pointer,
                        entries: Map::new(),
                        pending_key: None,
                        anchor,
                        first,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor, first) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        anchor,
                        first,
                        ..
                    }) => (Value::Array(items), anchor, first),
                    Some(Frame::Map {
                        entries,
                        anchor,
                        first,
                        ..
                    }) => (Value::Object(entries), anchor, first),
                    None => return,
                };
                let size = self.tree_nodes - first;
                self.keep_anchor(anchor, &v, size, &mark);
                self.push_value(v, &mark);
            }
            Event::Alias(id) => {
                let (pointer, is_key) = self.next_pointer();
                let Some((v, size)) = self.anchors.get(&id) else {
                    self.fail(&mark, "alias refers to an unknown anchor".into());
                    return;
                };
                let size = *size;
                if is_key && (v.is_array() || v.is_object()) {
                    self.fail(&mark, "mapping keys must be scalars".into());
                    return;
                }
                // Charged before the copy is made: a bomb stops here, unallocated.
                if !self.charge(size, &mark, &format!("an alias expanding to {size} nodes")) {
                    return;
                }
                self.tree_nodes += size;
                let v = self.anchors[&id].0.clone();
                if !is_key {
                    self.map.values.insert(pointer, loc(&self.file, &mark));
                }
                self.push_value(v, &mark);
            }
            Event::DocumentStart => {
                if self.budget.documents >= self.budget.max_documents {
                    self.budget.exhausted = true;
                    let max = self.budget.max_documents;
                    self.fail(
                        &mark,
                        format!(
                            "more than {max} YAML documents in the revision; refused \
                             (limit: --max-documents)"
                        ),
                    );
                    return;
                }
                self.budget.documents += 1;
                self.map = SourceMap::default();
                // Anchors are per document.
                self.anchors.clear();
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
}

/// A scalar with a core schema tag (`!!int 5`): its value, or `None` when the text is not
/// of that type.
fn tagged_scalar(tag: &str, text: &str) -> Option<Value> {
    let v = plain_scalar(text);
    let fits = match tag {
        "int" => v.is_i64(),
        "float" => v.is_number(),
        "bool" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    };
    fits.then_some(v)
}

fn v_as_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Document> {
        parse_documents(&Arc::from(Path::new("t.yaml")), text).unwrap()
    }

    #[test]
    fn positions_of_values_and_keys() {
        let docs = parse("a: 1\nb:\n  - x\n  - {c: true}\n");
        let d = &docs[0];
        assert_eq!(d.value["b"][1]["c"], Value::Bool(true));
        assert_eq!(d.map.value("/a").unwrap().line, 1);
        assert_eq!(d.map.value("/a").unwrap().col, 4);
        assert_eq!(d.map.key("/b").unwrap().line, 2);
        assert_eq!(d.map.value("/b/0").unwrap().line, 3);
        assert_eq!(d.map.value("/b/1/c").unwrap().line, 4);
        // Unknown pointers fall back to the nearest ancestor.
        assert_eq!(d.map.value("/b/1/zzz").unwrap().line, 4);
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let d = &parse("a: '1'\nb: 1\nc: 1.5\nd: ~\ne: yes\nf: \"true\"\ng: 012345678910\n")[0];
        assert_eq!(d.value["a"], Value::String("1".into()));
        assert_eq!(d.value["b"], Value::Number(1.into()));
        assert!(d.value["c"].is_f64());
        assert!(d.value["d"].is_null());
        // YAML 1.2: `yes` is a string, not a bool.
        assert_eq!(d.value["e"], Value::String("yes".into()));
        assert_eq!(d.value["f"], Value::String("true".into()));
        assert!(d.value["g"].is_number());
    }

    #[test]
    fn several_documents_and_anchors() {
        let docs = parse("a: &x [1, 2]\n---\nb: 2\n...\n---\nc: 3\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[2].map.value("/c").unwrap().line, 6);
        let d = &parse("a: &x {k: v}\nb: *x\n")[0];
        assert_eq!(d.value["b"]["k"], "v");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse_documents(&Arc::from(Path::new("t.yaml")), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.contains("YAML syntax error"), "{}", e.message);
        assert!(e.loc.line >= 1);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse_documents(&Arc::from(Path::new("t.yaml")), "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.message, "duplicate key `a`");
        assert_eq!(e.loc.line, 3);
    }

    fn parse_err(text: &str) -> YamlError {
        parse_documents(&Arc::from(Path::new("t.yaml")), text).unwrap_err()
    }

    #[test]
    fn alias_bomb_is_refused_before_it_is_expanded() {
        // Nine levels of nine aliases: 9^9 (387 million) strings once expanded.
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let mut budget = Budget::new(10, 100_000);
        let e = parse_documents_within(&Arc::from(Path::new("t.yaml")), &text, &mut budget)
            .unwrap_err();
        assert!(
            e.message.contains("more than 100000 YAML nodes"),
            "{}",
            e.message
        );
        assert!(e.message.contains("--max-yaml-nodes"), "{}", e.message);
        assert!(
            e.message.starts_with("an alias expanding to") || e.message.starts_with("an anchor of"),
            "{}",
            e.message
        );
        assert!(budget.nodes() <= 100_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // A few aliases are fine.
        let d = &parse("base: &b {x: 1}\none: *b\ntwo: *b\n")[0];
        assert_eq!(d.value["two"]["x"], 1);
    }

    #[test]
    fn the_budget_is_shared_by_the_files_of_a_revision() {
        let f: Arc<Path> = Arc::from(Path::new("t.yaml"));
        let mut budget = Budget::new(3, 1_000);
        parse_documents_within(&f, "a: 1\n---\nb: 2\n", &mut budget).unwrap();
        assert_eq!(budget.documents(), 2);
        let e = parse_documents_within(&f, "c: 3\n---\nd: 4\n", &mut budget).unwrap_err();
        assert!(
            e.message.contains("more than 3 YAML documents"),
            "{}",
            e.message
        );
        assert!(e.message.contains("--max-documents"), "{}", e.message);
        assert_eq!(e.loc.line, 2);
    }

    #[test]
    fn nul_byte_is_an_error_not_the_end_of_the_document() {
        let e = parse_err("apiVersion: v1\nkind: Role\0\nmetadata: {name: x}\n");
        assert_eq!((e.loc.line, e.loc.col), (2, 11));
        assert!(
            e.message.starts_with("NUL byte at byte offset 25"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_key() {
        let d = &parse("\u{feff}apiVersion: v1\n")[0];
        assert_eq!(d.value["apiVersion"], "v1");
        assert_eq!(d.map.key("/apiVersion").unwrap().col, 1);
    }

    #[test]
    fn tags_outside_the_core_schema_are_errors() {
        for (text, tag) in [
            ("a: !!binary aGVsbG8=\n", "!!binary"),
            ("a: !custom x\n", "!custom"),
            ("a: !!set {x: null}\n", "!!set"),
            ("a: !!map [1]\n", "!!map"),
            (
                "a: !<tag:example.com,2000:x> y\n",
                "!<tag:example.com,2000:x>",
            ),
            (
                "%TAG !! tag:example.com,2000:\n---\na: !!str x\n",
                "!<tag:example.com,2000:str>",
            ),
        ] {
            let e = parse_err(text);
            assert!(
                e.message
                    .starts_with(&format!("YAML tag `{tag}` is not supported")),
                "{text:?}: {}",
                e.message
            );
        }
        let e = parse_err("a: !!int twelve\n");
        assert_eq!(e.message, "`!!int` value \"twelve\" is not a valid int");
        let d = &parse("a: !!str 12\nb: !!int 12\nc: !!bool true\nd: !!null ~\ne: !!seq [1]\nf: !!map {x: 1}\ng: ! 12\nh: !!float 1.5\n")[0];
        assert_eq!(d.value["a"], "12");
        assert_eq!(d.value["b"], 12);
        assert_eq!(d.value["c"], true);
        assert!(d.value["d"].is_null());
        assert_eq!(d.value["e"][0], 1);
        assert_eq!(d.value["f"]["x"], 1);
        assert_eq!(d.value["g"], "12");
        assert_eq!(d.value["h"], 1.5);
    }

    #[test]
    fn yaml_directives_other_than_1_2_are_errors() {
        let e = parse_err("%YAML 1.1\n---\na: yes\n");
        assert!(
            e.message.starts_with("`%YAML 1.1`: manifests are YAML 1.2"),
            "{}",
            e.message
        );
        assert_eq!(e.loc.line, 1);
        assert_eq!(parse("%YAML 1.2\n---\na: yes\n")[0].value["a"], "yes");
        // A `%` inside a document is text.
        assert_eq!(parse("a: \"x\n  %y\"\n")[0].value["a"], "x %y");
    }

    #[test]
    fn line_and_column_of_a_byte_offset() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("éx", 2), (1, 2));
    }

    #[test]
    fn json_is_yaml() {
        let d =
            &parse("{\"Version\": \"2012-10-17\",\n \"Statement\": [{\"Effect\": \"Allow\"}]}")[0];
        assert_eq!(d.value["Statement"][0]["Effect"], "Allow");
        assert_eq!(d.map.value("/Statement/0/Effect").unwrap().line, 2);
    }
}
