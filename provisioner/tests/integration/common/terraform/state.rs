//! `state`: the Terraform state of a stack, built from what AWS (moto) holds for it. The readers
//! (network, compute, load_balancer, service) give each resource's attributes from AWS; this file
//! frames them as Terraform 1.11 writes them. What is the provider's and not AWS's — each type's
//! `schema_version`, its `sensitive_attributes` paths, the provider's `private` data, and the
//! attribute names of each type — comes from the fixture (a real state of this service); an
//! attribute AWS cannot tell is null, and an attribute name the fixture does not have fails.

use std::collections::{BTreeMap, BTreeSet};

use provisioner::aws::Clients;
use serde_json::{Map, Value, json};

use crate::common::Account;

/// The secret version's value in every state `state` writes: tests assert it is never shown.
pub const PLACEHOLDER: &str = "tfstate-placeholder-not-a-secret";

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/terraform/konnichiwa.tfstate");
const TERRAFORM_VERSION: &str = "1.11.4";
const LINEAGE: &str = "6b1f3c2a-0d4e-4f5a-8b7c-9e0d1f2a3b4c";
const SERIAL: u64 = 12;

/// One resource instance read from AWS: its address and its attributes (`tags_all` as AWS has
/// the tags; `tags` is derived when framed).
#[derive(Debug, Clone)]
pub struct Built {
    pub kind: &'static str,
    pub name: &'static str,
    pub index: Option<usize>,
    pub attributes: Value,
}

impl Built {
    pub fn new(kind: &'static str, name: &'static str, attributes: Value) -> Self {
        Self { kind, name, index: None, attributes }
    }

    pub fn indexed(kind: &'static str, name: &'static str, index: usize, attributes: Value) -> Self {
        Self { kind, name, index: Some(index), attributes }
    }
}

/// What the readers share: the test's clients, and the account, region and stack read.
pub struct Reading {
    pub c: Clients,
    pub account: String,
    pub region: String,
    pub stack: String,
}

impl Reading {
    /// An ARN as the provider writes one that AWS's describe call does not return.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{resource}", self.region, self.account)
    }
}

/// Tags as the state's map (sorted, as Terraform writes maps).
pub fn tag_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let sorted: BTreeMap<&str, &str> = pairs.into_iter().collect();
    Value::Object(sorted.into_iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect())
}

/// Keys of every object sorted, recursively (Terraform writes attributes so).
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> = map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The Terraform state of stack `stack` in `account`, as AWS has it now, without the resources
/// of the types in `leave_out` (a partial state). The secret version holds `PLACEHOLDER`.
pub async fn state(account: &Account, stack: &str, leave_out: &[&str]) -> String {
    let c = account.clients().await;
    let region = c.region.clone();
    let r = Reading { c, account: account.id.clone(), region, stack: stack.to_owned() };
    let mut built = super::network::read(&r).await;
    built.extend(super::compute::read(&r).await);
    built.extend(super::load_balancer::read(&r).await);
    built.extend(super::service::read(&r).await);
    built.retain(|b| !leave_out.contains(&b.kind));
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("the fixture")).expect("JSON");
    let state = json!({
        "version": 4,
        "terraform_version": TERRAFORM_VERSION,
        "serial": SERIAL,
        "lineage": LINEAGE,
        "outputs": outputs(&built),
        "resources": resources(&fixture, built),
        "check_results": null,
    });
    serde_json::to_string_pretty(&state).expect("state JSON")
}

/// The outputs the configuration declares: the cluster's name and the load balancer's URL.
fn outputs(built: &[Built]) -> Value {
    let attr = |kind: &str, key: &str| {
        built.iter().find(|b| b.kind == kind).and_then(|b| b.attributes[key].as_str().map(str::to_owned))
    };
    let mut out = Map::new();
    if let Some(cluster) = attr("aws_ecs_cluster", "name") {
        out.insert("cluster".into(), json!({ "value": cluster, "type": "string" }));
    }
    if let Some(dns) = attr("aws_lb", "dns_name") {
        out.insert("url".into(), json!({ "value": format!("http://{dns}"), "type": "string" }));
    }
    Value::Object(out)
}

/// The fixture's resource block of the same address: its mode and each instance's frame.
fn template<'a>(fixture: &'a Value, kind: &str, name: &str) -> &'a Value {
    fixture["resources"]
        .as_array()
        .expect("the fixture's resources")
        .iter()
        .find(|r| r["type"] == kind && r["name"] == name)
        .unwrap_or_else(|| panic!("{kind}.{name} is not in the fixture: which attributes would it have?"))
}

/// Tags the provider's `default_tags` would have set: those every tagged resource carries, but
/// `Name`.
fn default_tags(built: &[Built]) -> BTreeMap<String, Value> {
    let mut tagged = built.iter().filter_map(|b| b.attributes["tags_all"].as_object()).filter(|t| !t.is_empty());
    let Some(first) = tagged.next() else { return BTreeMap::new() };
    let mut common: BTreeMap<String, Value> =
        first.iter().filter(|(k, _)| *k != "Name").map(|(k, v)| (k.clone(), v.clone())).collect();
    for t in tagged {
        common.retain(|k, v| t.get(k) == Some(v));
    }
    common
}

/// Every resource block, in Terraform's order (data sources first; then by type and name).
fn resources(fixture: &Value, built: Vec<Built>) -> Value {
    let defaults = default_tags(&built);
    let mut groups: BTreeMap<(String, &'static str, &'static str), Vec<Built>> = BTreeMap::new();
    for b in built {
        let mode = template(fixture, b.kind, b.name)["mode"].as_str().expect("mode").to_owned();
        groups.entry((mode, b.kind, b.name)).or_default().push(b);
    }
    let present: BTreeSet<String> = groups
        .keys()
        .map(|(mode, kind, name)| if mode == "data" { format!("data.{kind}.{name}") } else { format!("{kind}.{name}") })
        .collect();
    let blocks = groups.into_iter().map(|((mode, kind, name), mut instances)| {
        let frame = &template(fixture, kind, name)["instances"][0];
        instances.sort_by_key(|b| b.index);
        let instances: Vec<Value> = instances.into_iter().map(|b| instance(frame, b, &defaults, &present)).collect();
        json!({
            "mode": mode,
            "type": kind,
            "name": name,
            "provider": "provider[\"registry.terraform.io/hashicorp/aws\"]",
            "instances": instances,
        })
    });
    Value::Array(blocks.collect())
}

/// One instance in the fixture's frame: its attribute names (null where AWS did not tell), its
/// schema version, sensitive paths and private data, and its dependencies that are present.
fn instance(frame: &Value, b: Built, defaults: &BTreeMap<String, Value>, present: &BTreeSet<String>) -> Value {
    let names = frame["attributes"].as_object().expect("the fixture's attributes");
    let mut given = b.attributes.as_object().cloned().expect("attributes are an object");
    if names.contains_key("tags") {
        let tags: Map<String, Value> = given
            .get("tags_all")
            .and_then(Value::as_object)
            .map(|all| all.iter().filter(|(k, v)| defaults.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())))
            .into_iter()
            .flatten()
            .collect();
        given.insert("tags".into(), if tags.is_empty() { Value::Null } else { Value::Object(tags) });
    }
    if let Some(unknown) = given.keys().find(|k| !names.contains_key(*k)) {
        panic!("{}.{}: the provider writes no attribute {unknown:?} (fixture)", b.kind, b.name);
    }
    let attributes: Map<String, Value> =
        names.keys().map(|k| (k.clone(), given.remove(k).map(sorted).unwrap_or(Value::Null))).collect();
    let mut out = Map::new();
    if let Some(i) = b.index {
        out.insert("index_key".into(), json!(i));
    }
    out.insert("schema_version".into(), frame["schema_version"].clone());
    out.insert("attributes".into(), Value::Object(attributes));
    out.insert("sensitive_attributes".into(), frame["sensitive_attributes"].clone());
    if let Some(private) = frame.get("private") {
        out.insert("private".into(), private.clone());
    }
    let dependencies: Vec<&Value> = frame["dependencies"]
        .as_array()
        .map(|d| d.iter().filter(|a| a.as_str().is_some_and(|a| present.contains(a))).collect())
        .unwrap_or_default();
    if !dependencies.is_empty() {
        out.insert("dependencies".into(), json!(dependencies));
    }
    Value::Object(out)
}
