//! A stack file as a tree of values that remember where they were written (file, line, column),
//! and the overlay chain: a file that starts with `extends: BASE` is merged over its base (a path
//! relative to the file that names it; chains allowed, cycles refused). Maps merge key by key,
//! lists and scalars replace, and `null` removes a key (its default applies). The merged tree
//! becomes JSON for typed loading, with a map from every dotted path (`network.cidr`,
//! `loadtest.endpoints[1].path`) to the place that set it, so that every error points at the
//! file, line and column to change.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::{LocatedProblem, StackError};

/// The key naming the file a stack file is merged over.
pub const EXTENDS: &str = "extends";

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a value was written: its file, the value's place and (for a map entry) its key's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub value: Option<Position>,
    pub key: Option<Position>,
}

/// A YAML node with its place.
#[derive(Debug, Clone)]
struct Node {
    value: NodeValue,
    at: Option<Position>,
    key_at: Option<Position>,
    file: usize,
}

#[derive(Debug, Clone)]
enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// The merged stack: JSON for typed loading, and where each path was set.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    origins: HashMap<String, Origin>,
    /// The file given (the top of the overlay chain).
    pub file: PathBuf,
    /// Every file of the chain, the given one first.
    pub chain: Vec<PathBuf>,
}

impl Document {
    /// Reads `file` and every file it extends, and merges them.
    pub fn load(file: &Path) -> Result<Self, StackError> {
        let mut files: Vec<PathBuf> = Vec::new();
        // The same files, canonical, to tell a circle from two files of one name.
        let mut canonical: Vec<PathBuf> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut next = Some((file.to_owned(), None::<Origin>));
        while let Some((path, named_at)) = next.take() {
            let this = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if let Some(i) = canonical.iter().position(|f| *f == this) {
                let mut cycle: Vec<String> = files[i..].iter().map(|f| f.display().to_string()).collect();
                cycle.push(path.display().to_string());
                return Err(at_origin(
                    named_at.as_ref(),
                    file,
                    EXTENDS,
                    format!(
                        "the stack files extend each other in a circle ({}): one of them must not extend",
                        cycle.join(" → ")
                    ),
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(|source| match &named_at {
                None => StackError::Read { file: path.clone(), source },
                Some(o) => at_origin(
                    Some(o),
                    file,
                    EXTENDS,
                    format!("cannot read {}, the file this one extends: {source}", path.display()),
                ),
            })?;
            let index = files.len();
            files.push(path.clone());
            canonical.push(this);
            let node = parse(&text, &path, index)?;
            // A base file is found relative to the file that names it.
            if let NodeValue::Map(entries) = &node.value
                && let Some((_, base)) = entries.iter().find(|(k, _)| k == EXTENDS)
            {
                let NodeValue::Text(base_path) = &base.value else {
                    let o = Origin { file: path.clone(), value: base.at, key: base.key_at };
                    return Err(at_origin(
                        Some(&o),
                        file,
                        EXTENDS,
                        "extends must name a file, e.g. extends: stack.yaml".into(),
                    ));
                };
                let dir = path.parent().unwrap_or_else(|| Path::new("."));
                next =
                    Some((dir.join(base_path), Some(Origin { file: path.clone(), value: base.at, key: base.key_at })));
            }
            nodes.push(node);
        }
        // The last file read is the base of all: merge the others over it, nearest last.
        let mut merged = nodes.pop().unwrap_or(Node { value: NodeValue::Null, at: None, key_at: None, file: 0 });
        while let Some(overlay) = nodes.pop() {
            merged = merge(merged, overlay);
        }
        Ok(Self::of(merged, file, files))
    }

    /// One file's text alone (its `extends`, if any, is not followed): for tests and tools that
    /// hold the text already.
    pub fn from_text(text: &str, file: &Path) -> Result<Self, StackError> {
        Ok(Self::of(parse(text, file, 0)?, file, vec![file.to_owned()]))
    }

    /// The document of a (merged) tree: without its `extends`, as JSON, with every path's place.
    fn of(mut node: Node, file: &Path, chain: Vec<PathBuf>) -> Self {
        if let NodeValue::Map(entries) = &mut node.value {
            entries.retain(|(k, _)| k != EXTENDS);
        }
        let mut origins = HashMap::new();
        record(&node, String::new(), &chain, &mut origins);
        Self { value: to_json(&node), origins, file: file.to_owned(), chain }
    }

    /// Whether a file wrote `path` itself (not only a section above it).
    pub fn origins_has(&self, path: &str) -> bool {
        self.origins.contains_key(path)
    }

    /// Where `path` was set, or its nearest ancestor (a problem with a defaulted field points at
    /// its section); None when nothing of it was written.
    pub fn origin(&self, path: &str) -> Option<&Origin> {
        let mut p = path;
        loop {
            if let Some(o) = self.origins.get(p) {
                return Some(o);
            }
            // A top-level key's ancestor is the document itself ("").
            let cut = p.rfind(['.', '[']).or((!p.is_empty()).then_some(0))?;
            p = &p[..cut];
        }
    }

    /// A problem at `path`, placed: the key's position for `key_problem` (an unknown or
    /// misplaced key), else the value's.
    pub fn locate(&self, path: &str, message: String, key_problem: bool) -> LocatedProblem {
        let origin = self.origin(path);
        let position = origin.and_then(|o| if key_problem { o.key.or(o.value) } else { o.value.or(o.key) });
        let file = origin.map(|o| o.file.clone()).filter(|f| *f != self.file);
        LocatedProblem { path: path.to_owned(), position, message, file }
    }
}

fn at_origin(origin: Option<&Origin>, main: &Path, path: &str, message: String) -> StackError {
    let file = origin.map_or_else(|| main.to_owned(), |o| o.file.clone());
    let position = origin.and_then(|o| o.key.or(o.value));
    StackError::Syntax {
        file: main.to_owned(),
        problem: LocatedProblem { path: path.to_owned(), position, message, file: Some(file).filter(|f| f != main) },
    }
}

/// `overlay` over `base`: maps key by key, anything else replaced; a null removes the key.
fn merge(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (NodeValue::Map(mut entries), NodeValue::Map(over)) => {
            for (key, value) in over {
                let existing = entries.iter().position(|(k, _)| *k == key);
                match (existing, &value.value) {
                    (Some(i), NodeValue::Null) => {
                        entries.remove(i);
                    }
                    (None, NodeValue::Null) => {}
                    (Some(i), _) => {
                        let (_, old) = entries.remove(i);
                        entries.insert(i, (key, merge(old, value)));
                    }
                    (None, _) => entries.push((key, value)),
                }
            }
            Node { value: NodeValue::Map(entries), ..overlay }
        }
        (_, value) => Node { value, ..overlay },
    }
}

fn record(node: &Node, path: String, files: &[PathBuf], out: &mut HashMap<String, Origin>) {
    out.insert(path.clone(), Origin { file: files[node.file].clone(), value: node.at, key: node.key_at });
    match &node.value {
        NodeValue::Map(entries) => {
            for (key, child) in entries {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                record(child, child_path, files, out);
            }
        }
        NodeValue::Seq(items) => {
            for (i, child) in items.iter().enumerate() {
                record(child, format!("{path}[{i}]"), files, out);
            }
        }
        _ => {}
    }
}

fn to_json(node: &Node) -> Value {
    match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(i) => Value::from(*i),
        NodeValue::UInt(u) => Value::from(*u),
        NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        NodeValue::Text(t) => Value::String(t.clone()),
        NodeValue::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeValue::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// Parses one file's YAML into nodes; a syntax error names the file and place.
fn parse(text: &str, file: &Path, index: usize) -> Result<Node, StackError> {
    let syntax = |position: Option<Position>, message: String| StackError::Syntax {
        file: file.to_owned(),
        problem: LocatedProblem { path: String::new(), position, message, file: None },
    };
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(syntax(
            None,
            "the file is empty: a stack needs at least name, network, capacity, registry, secret, service and \
             load_balancer; start from the repository's stack.yaml (its comments explain each field)"
                .to_owned(),
        ));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let raw: Spanned<Raw> = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let position = e.location().map(|l| Position { line: l.line(), column: l.column() });
        syntax(position, crate::parse::strip_location(&e.without_snippet().to_string()).to_owned())
    })?;
    Ok(build(raw, None, index))
}

fn place(s: &serde_saphyr::Location) -> Option<Position> {
    (s.line() > 0).then(|| Position { line: s.line(), column: s.column() })
}

fn build(raw: Spanned<Raw>, key_at: Option<Position>, file: usize) -> Node {
    let at = place(&raw.referenced);
    let value = match raw.value {
        Raw::Null => NodeValue::Null,
        Raw::Bool(b) => NodeValue::Bool(b),
        Raw::Int(i) => NodeValue::Int(i),
        Raw::UInt(u) => NodeValue::UInt(u),
        Raw::Float(f) => NodeValue::Float(f),
        Raw::Text(t) => NodeValue::Text(t),
        Raw::Seq(items) => NodeValue::Seq(items.into_iter().map(|i| build(i, None, file)).collect()),
        Raw::Map(entries) => NodeValue::Map(
            entries.into_iter().map(|(k, v)| (k.value.0, build(v, place(&k.referenced), file))).collect(),
        ),
    };
    Node { value, at, key_at, file }
}

/// What the YAML parser gives, before places are attached.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<KeyText>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::UInt(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Text(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            entries.push((key, map.next_value::<Spanned<Raw>>()?));
        }
        Ok(Raw::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
