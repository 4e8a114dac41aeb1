//! A Terraform state file as Terraform 1.x writes it (format version 4), read for `adopt`: its
//! managed `aws_*` resources and their attributes. Values the state marks sensitive, and the
//! secret values it always holds (a secret version's string), are dropped as the file is read, so
//! nothing downstream can print them; an error about the file never quotes it.

use serde::Deserialize;
use serde_json::Value;

/// The format version Terraform 0.12 and later write.
pub const FORMAT_VERSION: u64 = 4;

/// A state larger than this is not a small service's: refused before it is parsed.
pub const MAX_BYTES: usize = 64 << 20;

/// What is wrong with a state file; each names the fix. None quotes the file's content.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StateError {
    #[error("{file} is empty: save the state with `terraform state pull > saved.tfstate` and give that file")]
    Empty { file: String },
    #[error(
        "{file} ends early (line {line}, column {column}): the file is cut off; save it again with \
         `terraform state pull > saved.tfstate`"
    )]
    Truncated { file: String, line: usize, column: usize },
    #[error(
        "{file} is not JSON (line {line}, column {column}): a Terraform state is the JSON `terraform state \
         pull` prints, not the configuration (.tf) or a plan"
    )]
    NotJson { file: String, line: usize, column: usize },
    #[error(
        "{file} is JSON but not a Terraform state (line {line}, column {column}: a field has the wrong type \
         or is missing); give the file `terraform state pull` prints"
    )]
    NotAState { file: String, line: usize, column: usize },
    #[error(
        "{file} is a state of format version {found}; adopt reads version {FORMAT_VERSION} (Terraform 0.12 \
         and later): run `terraform state pull` with Terraform 1.x, which upgrades it"
    )]
    Version { file: String, found: u64 },
    #[error(
        "{file} holds no managed aws_* resources ({managed} managed of other providers, {data} data sources): \
         nothing to adopt; is it the state of another configuration or workspace?"
    )]
    NoAwsResources { file: String, managed: usize, data: usize },
    #[error("{file} is {bytes} bytes, over the {MAX_BYTES} a state of one small service needs; is it the right file?")]
    TooLarge { file: String, bytes: usize },
}

/// A Terraform state, as far as adopting reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub version: u64,
    #[serde(default)]
    pub terraform_version: String,
    #[serde(default)]
    pub serial: u64,
    #[serde(default)]
    pub lineage: String,
    #[serde(default)]
    pub resources: Vec<Resource>,
}

/// One resource block of the state: managed (`resource`) or a data source (`data`).
#[derive(Debug, Clone, Deserialize)]
pub struct Resource {
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// The module it sits in (`module.app`), None at the root.
    #[serde(default)]
    pub module: Option<String>,
    #[serde(default)]
    pub instances: Vec<Instance>,
}

/// One instance of a resource (`count` and `for_each` make several).
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    #[serde(default)]
    pub index_key: Option<Value>,
    #[serde(default)]
    pub attributes: Value,
    /// Paths of attributes whose values are sensitive (Terraform 1.x: lists of `get_attr` and
    /// `index` steps).
    #[serde(default)]
    pub sensitive_attributes: Value,
}

/// Attributes that hold a secret whatever the state marks (a provider that did not mark them
/// still stored them in clear).
const ALWAYS_SECRET: &[(&str, &str)] = &[
    ("aws_secretsmanager_secret_version", "secret_string"),
    ("aws_secretsmanager_secret_version", "secret_binary"),
    ("aws_secretsmanager_secret_version", "secret_string_wo"),
    ("aws_ssm_parameter", "value"),
    ("aws_ssm_parameter", "insecure_value"),
    ("aws_iam_access_key", "secret"),
    ("aws_db_instance", "password"),
];

/// One managed resource instance, by its address.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub resource: &'a Resource,
    pub instance: &'a Instance,
}

impl<'a> Found<'a> {
    /// Its address as Terraform writes it: `module.m.aws_lb.main`, `aws_subnet.public[0]`.
    pub fn address(&self) -> String {
        let r = self.resource;
        let module = r.module.as_deref().map(|m| format!("{m}.")).unwrap_or_default();
        let index = match &self.instance.index_key {
            Some(Value::String(k)) => format!("[{k:?}]"),
            Some(k) => format!("[{k}]"),
            None => String::new(),
        };
        format!("{module}{}.{}{index}", r.kind, r.name)
    }

    /// An attribute as text (strings as they are, numbers and booleans written out).
    pub fn text(&self, key: &str) -> Option<String> {
        let instance: &'a Instance = self.instance;
        match instance.attributes.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn attr(&self, key: &str) -> Option<&'a Value> {
        let instance: &'a Instance = self.instance;
        instance.attributes.get(key).filter(|v| !v.is_null())
    }

    /// A block attribute's first element (the provider writes a block as a list of one).
    pub fn block(&self, key: &str) -> Option<&'a Value> {
        self.attr(key)?.as_array()?.first()
    }
}

impl State {
    /// Reads a state from its text (`source` names it in errors: a path, or "standard input").
    pub fn parse(text: &str, source: &str) -> Result<Self, StateError> {
        let file = source.to_owned();
        if text.len() > MAX_BYTES {
            return Err(StateError::TooLarge { file, bytes: text.len() });
        }
        if text.trim().is_empty() {
            return Err(StateError::Empty { file });
        }
        let mut state: State = serde_json::from_str(text).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            match e.classify() {
                serde_json::error::Category::Eof => StateError::Truncated { file: file.clone(), line, column },
                serde_json::error::Category::Data => StateError::NotAState { file: file.clone(), line, column },
                _ => StateError::NotJson { file: file.clone(), line, column },
            }
        })?;
        if state.version != FORMAT_VERSION {
            return Err(StateError::Version { file, found: state.version });
        }
        for r in &mut state.resources {
            for i in &mut r.instances {
                redact(&r.kind, i);
            }
        }
        if state.managed_aws().next().is_none() {
            let managed = state.resources.iter().filter(|r| r.mode == "managed").count();
            let data = state.resources.len() - managed;
            return Err(StateError::NoAwsResources { file, managed, data });
        }
        Ok(state)
    }

    /// Every instance of a managed `aws_*` resource, in the state's order.
    pub fn managed_aws(&self) -> impl Iterator<Item = Found<'_>> {
        self.resources
            .iter()
            .filter(|r| r.mode == "managed" && r.kind.starts_with("aws_"))
            .flat_map(|r| r.instances.iter().map(move |instance| Found { resource: r, instance }))
    }

    /// The managed instances of one type.
    pub fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = Found<'a>> + 'a {
        self.managed_aws().filter(move |f| f.resource.kind == kind)
    }
}

/// Drops what the state marks sensitive and what always holds a secret.
fn redact(kind: &str, instance: &mut Instance) {
    let paths: Vec<Vec<Value>> = instance
        .sensitive_attributes
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_array().cloned()).collect())
        .unwrap_or_default();
    for path in paths {
        remove_path(&mut instance.attributes, &path);
    }
    if let Some(map) = instance.attributes.as_object_mut() {
        for (_, key) in ALWAYS_SECRET.iter().filter(|(k, _)| *k == kind) {
            map.remove(*key);
        }
    }
}

/// Removes the value at a Terraform attribute path (`get_attr` and `index` steps); a path that
/// does not lead anywhere removes nothing.
fn remove_path(root: &mut Value, path: &[Value]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut here = root;
    for step in parents {
        let next = match step_key(step) {
            Some(Key::Name(n)) => here.get_mut(n.as_str()),
            Some(Key::Index(i)) => here.get_mut(i),
            None => None,
        };
        let Some(next) = next else { return };
        here = next;
    }
    match step_key(last) {
        Some(Key::Name(n)) => {
            if let Some(map) = here.as_object_mut() {
                map.remove(&n);
            }
        }
        Some(Key::Index(i)) => {
            if let Some(slot) = here.get_mut(i) {
                *slot = Value::Null;
            }
        }
        None => {}
    }
}

enum Key {
    Name(String),
    Index(usize),
}

/// A step of a sensitive path: `{"type":"get_attr","value":"x"}` or `{"type":"index","value":
/// {"value":0,"type":"number"}}` (a string index is a map key).
fn step_key(step: &Value) -> Option<Key> {
    let value = step.get("value")?;
    match step.get("type")?.as_str()? {
        "get_attr" => Some(Key::Name(value.as_str()?.to_owned())),
        "index" => {
            let inner = value.get("value")?;
            match inner {
                Value::Number(n) => Some(Key::Index(usize::try_from(n.as_u64()?).ok()?)),
                Value::String(s) => Some(Key::Name(s.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/terraform/konnichiwa.tfstate");
    /// The placeholder the fixture's secret version holds.
    const PLACEHOLDER: &str = "fixture-value-not-a-secret";

    #[test]
    fn reads_terraform_1_11s_state_and_drops_the_secret() {
        let s = State::parse(FIXTURE, "konnichiwa.tfstate").expect("the fixture");
        assert_eq!((s.version, s.terraform_version.as_str()), (4, "1.11.4"));
        let addresses: Vec<String> = s.managed_aws().map(|f| f.address()).collect();
        assert!(addresses.contains(&"aws_subnet.public[1]".to_owned()), "{addresses:?}");
        assert!(!addresses.iter().any(|a| a.contains("aws_availability_zones")), "data sources are not managed");
        assert_eq!(addresses.len(), 32);
        let dump = format!("{s:?}");
        assert!(!dump.contains(PLACEHOLDER), "the secret's value is gone from what was read");
        let vpc = s.of_type("aws_vpc").next().expect("vpc");
        assert_eq!(vpc.text("cidr_block").as_deref(), Some("10.40.0.0/16"));
    }

    #[test]
    fn sensitive_paths_are_removed_wherever_they_point() {
        let text = r#"{"version":4,"resources":[{"mode":"managed","type":"aws_x","name":"a","instances":[
            {"attributes":{"keep":"k","top":"s1","nested":[{"deep":"s2","other":"o"}],"tags":{"token":"s3"}},
             "sensitive_attributes":[[{"type":"get_attr","value":"top"}],
               [{"type":"get_attr","value":"nested"},{"type":"index","value":{"value":0,"type":"number"}},
                {"type":"get_attr","value":"deep"}],
               [{"type":"get_attr","value":"tags"},{"type":"index","value":{"value":"token","type":"string"}}],
               [{"type":"get_attr","value":"missing"},{"type":"get_attr","value":"x"}]]}]}]}"#;
        let s = State::parse(text, "t").expect("parses");
        let dump = format!("{s:?}");
        for secret in ["s1", "s2", "s3"] {
            assert!(!dump.contains(&format!("\"{secret}\"")), "{secret} left in {dump}");
        }
        let f = s.managed_aws().next().expect("one");
        assert_eq!(f.text("keep").as_deref(), Some("k"));
        assert_eq!(f.block("nested").and_then(|b| b.get("other")), Some(&Value::String("o".into())));
    }

    #[test]
    fn bad_files_are_named_with_the_fix_and_never_quoted() {
        let err = |text: &str| State::parse(text, "saved.tfstate").expect_err(text).to_string();
        assert!(err("").contains("is empty"));
        let cut = &FIXTURE[..FIXTURE.len() / 2];
        let e = err(cut);
        assert!(e.contains("ends early") && e.contains("terraform state pull"), "{e}");
        assert!(err("resource \"aws_vpc\" \"main\" {}").contains("is not JSON"));
        let e = err(r#"{"version": "fixture-value-not-a-secret"}"#);
        assert!(e.contains("not a Terraform state") && !e.contains(PLACEHOLDER), "{e}");
        let e = err(r#"{"version": 3, "modules": []}"#);
        assert!(e.contains("format version 3") && e.contains("Terraform 1.x"), "{e}");
        let e = err(r#"{"version": 4, "resources": [{"mode":"data","type":"aws_ami","name":"a","instances":[]},
            {"mode":"managed","type":"google_compute_instance","name":"b","instances":[{"attributes":{}}]}]}"#);
        assert!(e.contains("no managed aws_* resources (1 managed of other providers, 1 data sources)"), "{e}");
        let e = State::parse(&" ".repeat(MAX_BYTES + 1), "big").expect_err("too large").to_string();
        assert!(e.contains("over the"), "{e}");
    }
}
