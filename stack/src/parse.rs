//! From the merged stack document to typed values, with errors a person can act on: each names
//! the file, line and column that set the value, the field's path (`service.cpu`), what was
//! written, what is expected and an example taken from the repository's own stack.yaml. One line
//! each, no source snippet, so the tools that embed them (the monitor's `UNKNOWN - config: …`,
//! `--json` problems) stay readable.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::StackError;
use crate::document::Document;

/// The repository's example, whose values serve as examples in error messages.
const EXAMPLE: &str = include_str!("../../stack.yaml");

/// Deserializes the document as a `T`, or says precisely what is wrong and where. Every missing
/// required field is reported at once (each is filled from the example to find the next), with
/// the first other problem after them.
pub fn typed<T: DeserializeOwned>(doc: &Document) -> Result<T, StackError> {
    let mut value = doc.value.clone();
    let mut problems = Vec::new();
    // Bounded: each round fills one field the example has, and the stack has a few dozen.
    for _ in 0..64 {
        let e = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) if problems.is_empty() => return Ok(typed),
            Ok(_) => break,
            Err(e) => e,
        };
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let raw = e.into_inner().to_string();
        if let Some(full) = missing_field(&raw, &path)
            && let Some(example) = example_value(&full)
            && insert(&mut value, &full, example)
        {
            problems.push(doc.locate(&full, explain(&raw, &path, None), true));
            continue;
        }
        let unknown_key = raw.starts_with("unknown field");
        let written = value_at(&doc.value, &path).filter(|_| !unknown_key);
        problems.push(doc.locate(&path, explain(&raw, &path, written), unknown_key));
        break;
    }
    let file = doc.file.clone();
    match problems.len() {
        1 => Err(StackError::Syntax { file, problem: problems.remove(0) }),
        _ => Err(StackError::Invalid { file, problems }),
    }
}

/// The full path of the field a "missing field `x`" message at `path` names.
fn missing_field(raw: &str, path: &str) -> Option<String> {
    let name = strip_location(raw).strip_prefix("missing field `")?.split('`').next()?;
    Some(if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") })
}

/// Sets `path` (dotted keys, no list indexes) in `root` to `value`; false where it cannot.
fn insert(root: &mut Value, path: &str, value: Value) -> bool {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(map) = node.as_object_mut() else { return false };
        if parts.peek().is_none() {
            return map.insert(part.to_owned(), value).is_none();
        }
        let Some(next) = map.get_mut(part) else { return false };
        node = next;
    }
    false
}

/// The parser's message without its location suffix (the position is reported apart).
pub(crate) fn strip_location(raw: &str) -> &str {
    let raw = raw.strip_prefix("error: ").unwrap_or(raw);
    match raw.rfind(" at line ") {
        Some(i) => &raw[..i],
        None => raw.split_once(": ").filter(|(head, _)| head.starts_with("line ")).map_or(raw, |(_, m)| m),
    }
}

/// The scalar at `path` in the document, as written.
fn value_at(root: &Value, path: &str) -> Option<String> {
    match lookup(root, path)? {
        Value::String(s) => Some(s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, index) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        node = node.get(key)?;
        if let Some(i) = index {
            node = node.get(i)?;
        }
    }
    Some(node)
}

/// What serde's "expected …" means, in words.
fn expected_in_words(expected: &str) -> String {
    let kind = expected.trim();
    match kind {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "text".into(),
        "a sequence" => "a list (`- item` lines or `[a, b]`)".into(),
        k if k.starts_with("struct ") || k.starts_with("a map") => {
            "a section of `key: value` lines (or `{ key: value, … }`)".into()
        }
        k => k.to_owned(),
    }
}

/// What a reader should be told for the parser's `raw` message at `path`.
fn explain(raw: &str, path: &str, written: Option<String>) -> String {
    let message = strip_location(raw);
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field);
    let example = example_at(path).map(|v| format!("; write e.g. {field}: {v}")).unwrap_or_default();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let fields: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|f| f.trim_matches('`'))
            .filter(|f| !f.is_empty() && *f != "there are no fields")
            .collect();
        let hint = closest(name, &fields).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
        return format!("unknown field `{name}`: {hint}the fields here are {}", fields.join(", "));
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let full = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        let example = example_at(&full).map(|v| format!(", e.g. {name}: {v}")).unwrap_or_default();
        return format!("`{name}` is required here{example}");
    }
    // serde: "invalid type: string \"lots\", expected u32" / "invalid value: integer `-1`, expected u32"
    if let Some((_, expected)) = message.split_once(", expected ")
        && (message.starts_with("invalid type") || message.starts_with("invalid value"))
    {
        let got = match written {
            Some(w) => format!("{w:?} is not "),
            None => "expected ".to_owned(),
        };
        return format!("{got}{}{example}", expected_in_words(expected));
    }
    format!("{message}{example}")
}

/// The example stack's value at `path`.
fn example_value(path: &str) -> Option<Value> {
    let root: Value = serde_saphyr::from_str(EXAMPLE).ok()?;
    lookup(&root, path).cloned()
}

/// The example stack's value at `path`, as one line of YAML (flow style for a section or list).
fn example_at(path: &str) -> Option<String> {
    example_value(path).map(|v| flow_yaml(&v))
}

/// `value` as one line of YAML: `{ key: value, … }`, `[a, b]`, scalars plain unless YAML would
/// read them as something else.
fn flow_yaml(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let items: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {}", flow_yaml(v))).collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(flow_yaml).collect::<Vec<_>>().join(", ")),
        Value::String(s) if plain_is_safe(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `s` written without quotes reads back as the same string in YAML's flow context.
fn plain_is_safe(s: &str) -> bool {
    let reads_as_other = serde_saphyr::from_str::<Value>(s).map_or(true, |v| v != Value::String(s.to_owned()));
    !s.is_empty() && !reads_as_other && !s.contains([',', '[', ']', '{', '}', '#']) && !s.contains(": ")
}

/// The candidate closest to `name` by edit distance, when it is close enough to be a typo.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (distance(name, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substituted = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_field() {
        assert_eq!(closest("desried_count", &["image", "desired_count", "cpu"]), Some("desired_count"));
        assert_eq!(closest("zzz", &["image", "desired_count"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn examples_come_from_the_repository_stack_as_yaml() {
        assert_eq!(example_at("service.cpu").as_deref(), Some("256"));
        assert_eq!(example_at("network.cidr").as_deref(), Some("10.40.0.0/16"));
        // The keys' order follows serde_json's map (the file's order where the workspace builds
        // it with preserve_order, sorted otherwise).
        let network = example_at("network").expect("network");
        let mut items: Vec<&str> =
            network.strip_prefix("{ ").and_then(|n| n.strip_suffix(" }")).expect("flow").split(", ").collect();
        items.sort_unstable();
        assert_eq!(items, ["availability_zones: 2", "cidr: 10.40.0.0/16"]);
        assert_eq!(example_at("nothing.here"), None);
        for (value, yaml) in [
            (serde_json::json!("60"), "\"60\""),
            (serde_json::json!("true"), "\"true\""),
            (serde_json::json!("a: b"), "\"a: b\""),
            (serde_json::json!(["x", 1]), "[x, 1]"),
        ] {
            assert_eq!(flow_yaml(&value), yaml, "{value}");
        }
    }
}
