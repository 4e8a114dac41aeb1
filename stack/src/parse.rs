//! From YAML text to typed values, with errors a person can act on: each names the file's
//! line and column, the field's path (`service.cpu`), what was written, what is expected and an
//! example taken from the repository's own stack.yaml. One line each, no source snippet, so the
//! tools that embed them (the monitor's `UNKNOWN: config …`, `--json` problems) stay readable.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::{LocatedProblem, Position, StackError};

/// The repository's example, whose values serve as examples in error messages.
const EXAMPLE: &str = include_str!("../../stack.yaml");

/// Parses `text` as a `T`, or says precisely what is wrong.
pub fn typed<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, StackError> {
    let syntax = |path: String, position: Option<Position>, message: String| StackError::Syntax {
        file: file.to_owned(),
        problem: LocatedProblem { path, position, message },
    };
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(syntax(
            String::new(),
            None,
            "the file is empty: a stack needs at least name, network, capacity, registry, secret, service and \
             load_balancer; start from the repository's stack.yaml (its comments explain each field)"
                .to_owned(),
        ));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    parsed.map_err(|e| {
        let position = e.location().map(|l| Position { line: l.line(), column: l.column() });
        let raw = e.without_snippet().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = explain(&raw, &path, position.and_then(|p| written_at(text, p)));
        syntax(path, position, message)
    })
}

/// The parser's message without its location suffix (the position is reported apart).
fn strip_location(raw: &str) -> &str {
    let raw = raw.strip_prefix("error: ").unwrap_or(raw);
    match raw.rfind(" at line ") {
        Some(i) => &raw[..i],
        None => raw.split_once(": ").filter(|(head, _)| head.starts_with("line ")).map_or(raw, |(_, m)| m),
    }
}

/// What a reader should be told for the parser's `raw` message at `path`.
fn explain(raw: &str, path: &str, written: Option<String>) -> String {
    let message = strip_location(raw);
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field);
    let example = example_at(path).map(|v| format!("; write e.g. {field}: {v}")).unwrap_or_default();
    let got = written.map(|w| format!("{w:?} is not ")).unwrap_or_else(|| "expected ".to_owned());
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let fields: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|f| f.trim_matches('`'))
            .filter(|f| !f.is_empty())
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
    let expected = if let Some(kind) = message.strip_prefix("invalid ") {
        match kind.split_whitespace().next().unwrap_or_default() {
            "u8" => "a whole number from 0 to 255",
            "u16" => "a whole number from 0 to 65535",
            "u32" | "u64" | "usize" => "a whole number, 0 or more",
            "i8" | "i16" | "i32" | "i64" => "a whole number",
            "f32" | "f64" => "a number",
            "boolean" | "bool" => "true or false",
            _ => "",
        }
    } else if message.contains("mapping") {
        "a section of `key: value` lines (or `{ key: value, … }`)"
    } else if message.contains("sequence") {
        "a list (`- item` lines or `[a, b]`)"
    } else if message.contains("string") {
        "text"
    } else {
        ""
    };
    if expected.is_empty() {
        return format!("{message}{example}");
    }
    format!("{got}{expected}{example}")
}

/// The scalar written at `p` (up to a comment or the end of the line), for the message.
fn written_at(text: &str, p: Position) -> Option<String> {
    let line = text.lines().nth(usize::try_from(p.line).ok()?.checked_sub(1)?)?;
    let rest: String = line.chars().skip(usize::try_from(p.column).ok()?.checked_sub(1)?).collect();
    let value = rest.split(" #").next().unwrap_or_default().trim().trim_matches(['"', '\'']);
    (!value.is_empty() && !value.starts_with(['{', '['])).then(|| value.to_owned())
}

/// The example stack's value at `path`, as one line of YAML flow (JSON is valid YAML).
fn example_at(path: &str) -> Option<String> {
    let root: serde_json::Value = serde_saphyr::from_str(EXAMPLE).ok()?;
    let mut node = &root;
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
    Some(match node {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
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
fn distance(a: &str, b: &str) -> usize {
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
    fn examples_come_from_the_repository_stack() {
        assert_eq!(example_at("service.cpu").as_deref(), Some("256"));
        assert_eq!(example_at("network.cidr").as_deref(), Some("10.40.0.0/16"));
        assert_eq!(example_at("nothing.here"), None);
    }
}
