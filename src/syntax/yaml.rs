//! YAML documents with a position for every node.
//!
//! serde-based YAML crates lose positions once a value is deserialized, but every
//! validation error must name `FILE:LINE:COL`. So documents are parsed here from
//! yaml-rust2's event stream into plain `serde_json::Value`s (the typed layer then
//! deserializes from those) plus a [`SourceMap`] from JSON pointer to position.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// Parse every document of a YAML stream.
pub fn parse_documents(file: &Arc<Path>, text: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        docs: Vec::new(),
        anchors: HashMap::new(),
        map: SourceMap::default(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(YamlError {
            loc: loc(file, m),
            message: format!("YAML syntax error: {}", e.info()),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.docs)
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
    },
    Map {
        pointer: String,
        entries: Map<String, Value>,
        pending_key: Option<String>,
        anchor: usize,
    },
}

struct Builder {
    file: Arc<Path>,
    stack: Vec<Frame>,
    docs: Vec<Document>,
    anchors: HashMap<usize, Value>,
    map: SourceMap,
    error: Option<YamlError>,
}

impl Builder {
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

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let (pointer, is_key) = self.next_pointer();
                let l = loc(&self.file, &mark);
                let quoted = style != TScalarStyle::Plain;
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let v = if quoted || is_key || is_str_tag {
                    Value::String(text)
                } else {
                    plain_scalar(&text)
                };
                if is_key {
                    if let Some(Frame::Map { pointer: p, .. }) = self.stack.last() {
                        let key_ptr = format!("{p}/{}", escape_segment(&v_as_key(&v)));
                        self.map.keys.insert(key_ptr, l);
                    }
                } else {
                    self.map.values.insert(pointer, l);
                }
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, &mark);
            }
            Event::SequenceStart(anchor, _) => {
                let (pointer, is_key) = self.next_pointer();
                if is_key {
                    self.fail(&mark, "mapping keys must be scalars".into());
                    return;
                }
                self.map
                    .values
                    .insert(pointer.clone(), loc(&self.file, &mark));
                self.stack.push(Frame::Seq {
                    pointer,
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let (pointer, is_key) = self.next_pointer();
                if is_key {
                    self.fail(&mark, "mapping keys must be scalars".into());
                    return;
                }
                self.map
                    .values
                    .insert(pointer.clone(), loc(&self.file, &mark));
                self.stack.push(Frame::Map {
                    pointer,
                    entries: Map::new(),
                    pending_key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (v, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Value::Object(entries), anchor),
                    None => return,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, v.clone());
                }
                self.push_value(v, &mark);
            }
            Event::Alias(id) => {
                let (pointer, _) = self.next_pointer();
                self.map.values.insert(pointer, loc(&self.file, &mark));
                match self.anchors.get(&id).cloned() {
                    Some(v) => self.push_value(v, &mark),
                    None => self.fail(&mark, "alias refers to an unknown anchor".into()),
                }
            }
            Event::DocumentStart => {
                self.map = SourceMap::default();
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
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

    #[test]
    fn json_is_yaml() {
        let d =
            &parse("{\"Version\": \"2012-10-17\",\n \"Statement\": [{\"Effect\": \"Allow\"}]}")[0];
        assert_eq!(d.value["Statement"][0]["Effect"], "Allow");
        assert_eq!(d.map.value("/Statement/0/Effect").unwrap().line, 2);
    }
}
