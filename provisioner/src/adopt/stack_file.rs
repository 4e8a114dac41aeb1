//! A stack.yaml that describes what a Terraform state says runs (`adopt --write-stack-file`): the
//! region, network, capacity, registry, secret, service, load balancer and logs, each value found
//! through what the service is attached to (its task definition, target group, listener, load
//! balancer, VPC, capacity provider…), not by name; the SLOs and the monitor at their defaults.
//! What stack.yaml cannot say is listed as notes.

use serde_json::Value;

use super::taken::Taken;
use super::tfstate::{Found, State};

/// The stack file's text, the resources it was read from, and what it could not say.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub name: String,
    pub region: String,
    pub text: String,
    /// The addresses of the resources the values came from.
    pub from: Vec<String>,
    /// What runs that stack.yaml cannot describe, each with what `up` would do about it.
    pub notes: Vec<String>,
    /// The names and ids a stack takes over (the file's `adopted:` block).
    pub taken: Taken,
}

/// Why a state cannot be described as one stack.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DescribeError {
    #[error(
        "the state runs {} ECS services ({}); a stack has one: pick it with --service ADDRESS",
        .0.len(), .0.join(", ")
    )]
    ManyServices(Vec<String>),
    #[error("--service {0}: no aws_ecs_service of the state has that address; it has: {1}")]
    NoSuchService(String, String),
    #[error("no resource of the state says its region (an ARN); is the state from an AWS provider 4 or later?")]
    NoRegion,
}

/// What `describe` found so far: the values, where they came from, and the notes.
struct Reading<'a> {
    state: &'a State,
    from: Vec<String>,
    notes: Vec<String>,
    taken: Taken,
}

impl<'a> Reading<'a> {
    /// The instance of `kind` whose attribute `key` equals `value` (or, with `value` None — what
    /// it is attached to does not say — the only one of its type), recorded as read.
    fn find(&mut self, kind: &'a str, key: &str, value: Option<&str>) -> Option<Found<'a>> {
        let mut all = self.state.of_type(kind);
        let found = match value {
            Some(v) => all.find(|f| f.text(key).as_deref() == Some(v)),
            None => {
                let first = all.next();
                if all.next().is_some() { None } else { first }
            }
        };
        if let Some(f) = found {
            let address = f.address();
            if !self.from.contains(&address) {
                self.from.push(address);
            }
        }
        found
    }

    /// The instance of `kind` whose `key` is `value`; none without a value (where `find` would
    /// take the only one of its type).
    fn find_named(&mut self, kind: &'a str, key: &str, value: Option<String>) -> Option<Found<'a>> {
        self.find(kind, key, Some(value.as_deref()?))
    }

    /// Records the name of `found` (its attribute `attr`) under `adopted.<key>`.
    fn take(&mut self, key: &'static str, found: Option<Found>, attr: &str) {
        if let Some(f) = found {
            self.taken.name(key, f.text(attr), f.address());
        }
    }

    /// The role an ARN names, recorded under `adopted.<key>` (from its aws_iam_role when the
    /// state has it).
    fn take_role(&mut self, key: &'static str, arn: Option<String>) {
        let Some(arn) = arn else { return };
        match self.find("aws_iam_role", "arn", Some(&arn)) {
            Some(role) => self.take_unpathed(key, role),
            // A role the state does not manage (a shared ecsTaskExecutionRole) is not taken.
            None => self.notes.push(format!(
                "{key}: {arn} is not a role of the state: the stack makes its own (the shared one is left alone)"
            )),
        }
    }

    /// Records a role's or profile's name, unless it has an IAM path (`/svc/`): the stack's
    /// policies name its roles without one, so such a role is left to the state.
    fn take_unpathed(&mut self, key: &'static str, found: Found) {
        let path = found.text("path").unwrap_or_else(|| "/".into());
        if path == "/" {
            self.take(key, Some(found), "name");
        } else {
            self.from.retain(|a| *a != found.address());
            self.notes.push(format!(
                "{}: its IAM path is {path}; the stack's roles have none, so it makes its own and leaves this one alone",
                found.address()
            ));
        }
    }
}

/// Describes the state's service (`service`: its address, needed when there are several).
pub fn describe(state: &State, service: Option<&str>) -> Result<Described, DescribeError> {
    let mut r = Reading { state, from: Vec::new(), notes: Vec::new(), taken: Taken::default() };
    let svc = pick_service(state, service)?;
    if let Some(s) = svc {
        r.from.push(s.address());
    }
    // The service's region (its ARN; a cluster's without one), else the first ARN's.
    let region = svc
        .and_then(|s| s.text("id"))
        .into_iter()
        .chain(state.of_type("aws_ecs_cluster").filter_map(|c| c.text("arn")))
        .chain(state.managed_aws().filter_map(|f| f.text("arn")))
        .find_map(|a| arn_part(&a, 3))
        .ok_or(DescribeError::NoRegion)?;
    let cluster = r.find("aws_ecs_cluster", "arn", svc.and_then(|s| s.text("cluster")).as_deref());
    r.take("cluster", cluster, "name");
    r.take("service", svc, "name");
    let name = match cluster.and_then(|c| c.text("name")).or_else(|| svc.and_then(|s| s.text("name"))) {
        Some(n) => n,
        None => {
            r.notes.push(
                "no ECS cluster or service in the state to name the stack after: it is `adopted`; rename it".into(),
            );
            "adopted".into()
        }
    };
    // The service's revision; without a service in the state, its only task definition.
    let task = match svc {
        Some(s) => s.text("task_definition").and_then(|td| {
            r.find("aws_ecs_task_definition", "arn", Some(&td))
                .or_else(|| r.find("aws_ecs_task_definition", "family", Some(td.split(':').next().unwrap_or(&td))))
        }),
        None => r.find("aws_ecs_task_definition", "family", None),
    };
    r.take("task_family", task, "family");
    let execution = task.and_then(|t| t.text("execution_role_arn"));
    r.take_role("execution_role", execution.clone());
    match task.and_then(|t| t.text("task_role_arn")) {
        Some(same) if Some(&same) == execution.as_ref() => r.notes.push(format!(
            "{same} is both the task's execution role and its task role: the stack takes it as the execution role \
             and makes its own task role (each has its own policies)"
        )),
        task_role => r.take_role("task_role", task_role),
    }
    let lb_block = svc.and_then(|s| s.block("load_balancer")).cloned();
    let container = task.and_then(|t| container(&mut r, t, lb_block.as_ref()));
    let mut out = vec![
        "# Written by `provisioner adopt --write-stack-file` from a Terraform state: what runs, with the".to_owned(),
        "# resource each value came from. The SLOs and the monitor are at their defaults.".to_owned(),
        format!("name: {name}"),
        format!("region: {region}"),
    ];
    let tags = common_tags(state);
    if !tags.is_empty() {
        out.push(format!(
            "tags: {{ {} }}",
            tags.iter().map(|(k, v)| format!("{}: {}", yaml(k), yaml(v))).collect::<Vec<_>>().join(", ")
        ));
    }
    // Through the service when there is one; else the state's only target group and load balancer.
    let tg = r.find(
        "aws_lb_target_group",
        "arn",
        lb_block.as_ref().and_then(|b| b.get("target_group_arn")).and_then(Value::as_str),
    );
    let listener = tg.and_then(|tg| listener_of(&mut r, tg));
    let lb = r.find("aws_lb", "arn", listener.and_then(|l| l.text("load_balancer_arn")).as_deref());
    r.take("target_group", tg, "name");
    r.take("load_balancer", lb, "name");
    network(&mut r, &mut out, lb);
    capacity(&mut r, &mut out, cluster);
    registry(&mut r, &mut out, container.as_ref());
    secret(&mut r, &mut out, container.as_ref());
    service_section(&mut r, &mut out, svc, task, container.as_ref(), tg);
    load_balancer(&mut r, &mut out, lb, listener, tg);
    logs(&mut r, &mut out, &name, container.as_ref());
    out.extend(r.taken.yaml());
    out.push(String::new());
    Ok(Described { name, region, text: out.join("\n"), from: r.from, notes: r.notes, taken: r.taken })
}

fn pick_service<'a>(state: &'a State, wanted: Option<&str>) -> Result<Option<Found<'a>>, DescribeError> {
    let services: Vec<Found<'a>> = state.of_type("aws_ecs_service").collect();
    let addresses = || services.iter().map(Found::address).collect::<Vec<_>>();
    match (wanted, services.len()) {
        (Some(w), _) => services
            .iter()
            .copied()
            .find(|s| s.address() == w)
            .map(Some)
            .ok_or_else(|| DescribeError::NoSuchService(w.to_owned(), addresses().join(", "))),
        (None, 0) => Ok(None),
        (None, 1) => Ok(services.first().copied()),
        (None, _) => Err(DescribeError::ManyServices(addresses())),
    }
}

/// The `i`th `:`-separated part of an ARN (3: the region, 4: the account).
pub fn arn_part(arn: &str, i: usize) -> Option<String> {
    arn.split(':').nth(i).filter(|p| !p.is_empty()).map(str::to_owned)
}

/// A YAML scalar: plain when that reads back as the same string, else double-quoted.
pub fn yaml(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
        && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~")
        && s.parse::<f64>().is_err();
    if plain { s.to_owned() } else { serde_json::to_string(s).unwrap_or_default() }
}

/// Tags every tagged resource carries (`tags_all`: the provider's default tags and its own),
/// except `Name` and ours.
fn common_tags(state: &State) -> Vec<(String, String)> {
    let mut tagged =
        state.managed_aws().filter_map(|f| f.attr("tags_all").and_then(Value::as_object).filter(|t| !t.is_empty()));
    let Some(first) = tagged.next() else { return Vec::new() };
    let mut common: Vec<(String, String)> = first
        .iter()
        .filter(|(k, _)| *k != "Name" && !k.starts_with("konnichiwa:"))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    for t in tagged {
        common.retain(|(k, v)| t.get(k).and_then(Value::as_str) == Some(v.as_str()));
    }
    common
}

/// The load-balanced container of the task definition (or its first).
fn container(r: &mut Reading, task: Found, lb: Option<&Value>) -> Option<Value> {
    let defs: Vec<Value> = serde_json::from_str(&task.text("container_definitions")?).ok()?;
    let wanted = lb.and_then(|b| b.get("container_name")).and_then(Value::as_str);
    if defs.len() > 1 {
        r.notes.push(format!(
            "{}: {} containers; the stack runs one (the load-balanced one is described)",
            task.address(),
            defs.len()
        ));
    }
    if task.text("network_mode").is_some_and(|m| m != "bridge") {
        r.notes.push(format!(
            "{}: network mode {}; the stack's tasks use bridge (dynamic host ports)",
            task.address(),
            task.text("network_mode").unwrap_or_default()
        ));
    }
    defs.iter().find(|d| wanted.is_none() || d.get("name").and_then(Value::as_str) == wanted).cloned()
}

fn listener_of<'a>(r: &mut Reading<'a>, tg: Found<'a>) -> Option<Found<'a>> {
    let tg_arn = tg.text("arn")?;
    let forwards = |f: &Found| {
        f.attr("default_action").and_then(Value::as_array).is_some_and(|actions| {
            actions.iter().any(|a| a.get("target_group_arn").and_then(Value::as_str) == Some(tg_arn.as_str()))
        })
    };
    let listener = r.state.of_type("aws_lb_listener").find(forwards)?;
    r.from.push(listener.address());
    Some(listener)
}

fn network(r: &mut Reading, out: &mut Vec<String>, lb: Option<Found>) {
    let vpc_id = lb.and_then(|l| l.text("vpc_id"));
    let Some(vpc) = r.find("aws_vpc", "id", vpc_id.as_deref()) else {
        r.notes.push("no VPC of the service's in the state: network is the example's".into());
        out.extend(["".into(), "network: { cidr: 10.40.0.0/16, availability_zones: 2 }".into()]);
        return;
    };
    let id = vpc.text("id").unwrap_or_default();
    // The load balancer's subnets (public, one per zone); the VPC's all only when it names none.
    let lb_subnets: Vec<String> = lb
        .and_then(|l| l.attr("subnets")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let in_vpc: Vec<Found> = r
        .state
        .of_type("aws_subnet")
        .filter(|s| s.text("vpc_id").as_deref() == Some(id.as_str()))
        .filter(|s| lb_subnets.is_empty() || s.text("id").is_some_and(|i| lb_subnets.contains(&i)))
        .collect();
    r.taken.subnets = in_vpc.iter().filter_map(|s| s.text("id")).collect();
    let mut subnets: Vec<(String, String, String)> = in_vpc
        .iter()
        .map(|s| {
            (s.text("availability_zone").unwrap_or_default(), s.text("cidr_block").unwrap_or_default(), s.address())
        })
        .collect();
    subnets.sort();
    r.from.extend(subnets.iter().map(|s| s.2.clone()));
    gateway_and_routes(r, vpc, lb);
    out.push(String::new());
    out.push(format!("network:                          # {} and its subnets", vpc.address()));
    out.push(format!("  cidr: {}", vpc.text("cidr_block").unwrap_or_default()));
    out.push(format!("  availability_zones: {}", subnets.len()));
    out.push(format!("  subnets: [{}]", subnets.iter().map(|s| s.1.as_str()).collect::<Vec<_>>().join(", ")));
}

/// The VPC's internet gateway, the route table that routes to it, and the load balancer's
/// security group: taken by id (the gateway and table) and by name (the group).
fn gateway_and_routes(r: &mut Reading, vpc: Found, lb: Option<Found>) {
    let vpc_id = vpc.text("id");
    r.taken.vpc.clone_from(&vpc_id);
    let igw = r.find_named("aws_internet_gateway", "vpc_id", vpc_id.clone());
    r.taken.internet_gateway = igw.and_then(|g| g.text("id"));
    let routes_to_igw = |t: &Found| {
        t.text("vpc_id") == vpc_id
            && t.attr("route").and_then(Value::as_array).is_some_and(|routes| {
                routes.iter().any(|x| {
                    x.get("gateway_id").and_then(Value::as_str) == r.taken.internet_gateway.as_deref()
                        && r.taken.internet_gateway.is_some()
                })
            })
    };
    let table = r.state.of_type("aws_route_table").find(routes_to_igw);
    if let Some(t) = table {
        r.from.push(t.address());
        r.taken.route_table = t.text("id");
        let tid = t.text("id");
        let associations: Vec<String> = r
            .state
            .of_type("aws_route_table_association")
            .filter(|a| a.text("route_table_id") == tid)
            .map(|a| a.address())
            .collect();
        r.from.extend(associations);
    }
    let group = lb.and_then(|l| l.attr("security_groups")?.as_array()?.first()?.as_str().map(str::to_owned));
    let group = r.find_named("aws_security_group", "id", group);
    r.take("load_balancer_security_group", group, "name");
}

fn capacity(r: &mut Reading, out: &mut Vec<String>, cluster: Option<Found>) {
    let provider_name = cluster
        .and_then(|c| c.text("name"))
        .and_then(|n| r.find("aws_ecs_cluster_capacity_providers", "cluster_name", Some(&n)))
        .and_then(|p| p.attr("capacity_providers")?.as_array()?.first()?.as_str().map(str::to_owned));
    let provider = r.find("aws_ecs_capacity_provider", "name", provider_name.as_deref());
    let asg_arn = provider.and_then(|p| {
        p.block("auto_scaling_group_provider")?.get("auto_scaling_group_arn")?.as_str().map(str::to_owned)
    });
    let asg = r.find("aws_autoscaling_group", "arn", asg_arn.as_deref());
    let Some(asg) = asg else {
        r.notes.push("no Auto Scaling group in the state: capacity is the example's, and `up` creates it".into());
        out.extend(["".into(), "capacity: { instance_type: t3.small, min: 1, max: 4, desired: 2 }".into()]);
        return;
    };
    let lt_id = asg.block("launch_template").and_then(|b| b.get("id")?.as_str().map(str::to_owned));
    let lt = lt_id.and_then(|id| r.find("aws_launch_template", "id", Some(&id)));
    r.take("capacity_provider", provider, "name");
    r.take("auto_scaling_group", Some(asg), "name");
    r.take("launch_template", lt, "name");
    if let Some(lt) = lt {
        instances_identity(r, lt);
    }
    out.push(String::new());
    out.push(format!(
        "capacity:                         # {}{}",
        asg.address(),
        lt.map(|l| format!(", {}", l.address())).unwrap_or_default()
    ));
    if let Some(lt) = lt {
        out.push(format!("  instance_type: {}", lt.text("instance_type").unwrap_or_else(|| "t3.small".into())));
    }
    for (key, attr) in [("min", "min_size"), ("max", "max_size"), ("desired", "desired_capacity")] {
        out.push(format!("  {key}: {}", asg.text(attr).unwrap_or_else(|| "1".into())));
    }
    if let Some(lt) = lt {
        if let Some(ami) = lt.text("image_id") {
            out.push(format!("  ami: {ami}   # the AMI the instances run; `up --update-ami` moves on"));
        }
        let volume = lt
            .block("block_device_mappings")
            .and_then(|b| b.get("ebs")?.as_array()?.first()?.get("volume_size")?.as_u64());
        if let Some(gib) = volume.filter(|v| *v > 0) {
            out.push(format!("  root_volume_gib: {gib}"));
        }
    }
    let insights = cluster.and_then(|c| c.attr("setting")?.as_array().cloned()).is_some_and(|s| {
        s.iter().any(|x| {
            x.get("name").and_then(Value::as_str) == Some("containerInsights")
                && x.get("value").and_then(Value::as_str) != Some("disabled")
        })
    });
    out.push(format!("  container_insights: {insights}"));
}

/// The launch template's instance profile (and its role) and security group.
fn instances_identity(r: &mut Reading, lt: Found) {
    let profile = lt.block("iam_instance_profile");
    let by = |k: &str| profile.and_then(|p| p.get(k)?.as_str().filter(|v| !v.is_empty()).map(str::to_owned));
    let profile = match (by("arn"), by("name")) {
        (Some(arn), _) => r.find("aws_iam_instance_profile", "arn", Some(&arn)),
        (None, Some(name)) => r.find("aws_iam_instance_profile", "name", Some(&name)),
        (None, None) => None,
    };
    if let Some(p) = profile {
        r.take_unpathed("instance_profile", p);
    }
    let role = profile.and_then(|p| p.text("role"));
    if let Some(role) = r.find_named("aws_iam_role", "name", role) {
        r.take_unpathed("instance_role", role);
    }
    let group = lt.attr("vpc_security_group_ids").and_then(|g| g.as_array()?.first()?.as_str().map(str::to_owned));
    let group = r.find_named("aws_security_group", "id", group);
    r.take("instance_security_group", group, "name");
}

fn registry(r: &mut Reading, out: &mut Vec<String>, container: Option<&Value>) {
    let image = container.and_then(|c| c.get("image")?.as_str().map(str::to_owned)).unwrap_or_default();
    let repo = r
        .state
        .of_type("aws_ecr_repository")
        .find(|f| f.text("repository_url").is_some_and(|u| image.starts_with(&u)))
        .and_then(|f| f.text("name"));
    let repo = r.find("aws_ecr_repository", "name", repo.as_deref());
    let Some(repo) = repo else { return };
    let repo_name = repo.text("name").unwrap_or_default();
    let keep = r.find("aws_ecr_lifecycle_policy", "repository", Some(&repo_name)).and_then(|p| {
        let policy: Value = serde_json::from_str(&p.text("policy")?).ok()?;
        policy.get("rules")?.as_array()?.iter().find_map(|rule| {
            let s = rule.get("selection")?;
            (s.get("countType")?.as_str()? == "imageCountMoreThan").then(|| s.get("countNumber")?.as_u64()).flatten()
        })
    });
    let scan =
        repo.block("image_scanning_configuration").and_then(|b| b.get("scan_on_push")?.as_bool()).unwrap_or(false);
    let immutable = repo.text("image_tag_mutability").is_some_and(|m| m.starts_with("IMMUTABLE"));
    // Named always: a stack renamed later must not derive another repository's name.
    let mut fields = vec![format!("repository: {}", yaml(&repo_name))];
    if let Some(k) = keep {
        fields.push(format!("keep_images: {k}"));
    }
    fields.push(format!("scan_on_push: {scan}"));
    fields.push(format!("immutable_tags: {immutable}"));
    out.extend([String::new(), format!("registry: {{ {} }}   # {}", fields.join(", "), repo.address())]);
}

fn secret(r: &mut Reading, out: &mut Vec<String>, container: Option<&Value>) {
    let arn = container.and_then(|c| {
        c.get("secrets")?
            .as_array()?
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some("API_KEY"))?
            .get("valueFrom")?
            .as_str()
            .map(str::to_owned)
    });
    let found = r
        .state
        .of_type("aws_secretsmanager_secret")
        .find(|s| s.text("arn").is_some_and(|a| arn.as_deref().is_some_and(|v| v.starts_with(&a))));
    let secret = r.find("aws_secretsmanager_secret", "arn", found.and_then(|f| f.text("arn")).as_deref());
    let Some(secret) = secret else { return };
    // Named always: a stack renamed later must not derive another secret's name.
    let secret_name = secret.text("name").unwrap_or_default();
    let mut fields = vec![format!("name: {}", yaml(&secret_name))];
    fields.push(format!(
        "recovery_window_days: {}",
        secret.text("recovery_window_in_days").unwrap_or_else(|| "30".into())
    ));
    out.extend([
        String::new(),
        format!("secret: {{ {} }}   # {} (its value stays where it is)", fields.join(", "), secret.address()),
    ]);
}

fn service_section(
    r: &mut Reading,
    out: &mut Vec<String>,
    svc: Option<Found>,
    task: Option<Found>,
    c: Option<&Value>,
    tg: Option<Found>,
) {
    let Some(svc) = svc else {
        r.notes.push("no aws_ecs_service in the state: service is the example's, and `up` creates it".into());
        out.extend([
            String::new(),
            "# Not in the state: the example's service, which `up` creates.".into(),
            "service: { image: build, container_port: 8080, cpu: 256, memory: 256, desired_count: 2 }".into(),
        ]);
        return;
    };
    let port =
        c.and_then(|c| c.get("portMappings")?.as_array()?.first()?.get("containerPort")?.as_u64()).unwrap_or(8080);
    out.push(String::new());
    out.push(format!(
        "service:                          # {}{}",
        svc.address(),
        task.map(|t| format!(", {}", t.address())).unwrap_or_default()
    ));
    let image = c.and_then(|c| c.get("image")?.as_str().map(str::to_owned)).unwrap_or_else(|| "build".into());
    out.push(format!("  image: {}", yaml(&image)));
    out.push(format!("  container_port: {port}"));
    if let Some(t) = task {
        out.push(format!("  cpu: {}", t.text("cpu").unwrap_or_else(|| "256".into())));
        out.push(format!("  memory: {}", t.text("memory").unwrap_or_else(|| "256".into())));
    }
    out.push(format!("  desired_count: {}", svc.text("desired_count").unwrap_or_else(|| "1".into())));
    if let Some(path) = tg.and_then(|t| t.block("health_check")?.get("path")?.as_str().map(str::to_owned)) {
        out.push(format!("  health_check_path: {}", yaml(&path)));
    }
    if let Some(grace) = svc.text("health_check_grace_period_seconds") {
        out.push(format!("  health_check_grace_period: {grace}s"));
    }
    let env: Vec<(String, String)> = c
        .and_then(|c| c.get("environment")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_owned(), e.get("value")?.as_str()?.to_owned())))
        // What the stack's task definition sets itself.
        .filter(|(k, v)| {
            let ours = (k == "PORT" && *v == port.to_string()) || (k == "LOG_FORMAT" && v == "json");
            !ours
        })
        .collect();
    if !env.is_empty() {
        out.push(format!(
            "  environment: {{ {} }}",
            env.iter().map(|(k, v)| format!("{k}: {}", yaml(v))).collect::<Vec<_>>().join(", ")
        ));
    }
    autoscaling(r, out, svc);
    let breaker = svc.block("deployment_circuit_breaker");
    let on = |k: &str| breaker.and_then(|b| b.get(k)?.as_bool()).unwrap_or(false);
    let circuit = match (on("enable"), on("rollback")) {
        (true, true) => "rollback",
        (true, false) => "enabled",
        _ => "disabled",
    };
    out.push(format!(
        "  deployment: {{ circuit_breaker: {circuit}, minimum_healthy_percent: {}, maximum_percent: {} }}",
        svc.text("deployment_minimum_healthy_percent").unwrap_or_else(|| "100".into()),
        svc.text("deployment_maximum_percent").unwrap_or_else(|| "200".into())
    ));
    if svc.attr("enable_execute_command").and_then(Value::as_bool) == Some(true) {
        out.push("  exec: true".into());
    }
}

fn autoscaling(r: &mut Reading, out: &mut Vec<String>, svc: Found) {
    let cluster = svc.text("cluster").and_then(|c| c.rsplit('/').next().map(str::to_owned)).unwrap_or_default();
    let resource = format!("service/{cluster}/{}", svc.text("name").unwrap_or_default());
    let Some(target) = r.find("aws_appautoscaling_target", "resource_id", Some(&resource)) else { return };
    let policies: Vec<Found> = r
        .state
        .of_type("aws_appautoscaling_policy")
        .filter(|p| p.text("resource_id").as_deref() == Some(resource.as_str()))
        .collect();
    let mut cpu = None;
    let mut per_target = None;
    for p in &policies {
        r.from.push(p.address());
        let Some(conf) = p.block("target_tracking_scaling_policy_configuration") else { continue };
        let metric = conf
            .get("predefined_metric_specification")
            .and_then(|m| m.as_array()?.first()?.get("predefined_metric_type")?.as_str().map(str::to_owned));
        let value = conf.get("target_value").and_then(Value::as_f64);
        match metric.as_deref() {
            Some("ECSServiceAverageCPUUtilization") => cpu = value,
            Some("ALBRequestCountPerTarget") => per_target = value,
            _ => r.notes.push(format!(
                "{}: a scaling policy the stack does not describe (it has CPU and requests per target)",
                p.address()
            )),
        }
    }
    let mut fields = vec![
        format!("min: {}", target.text("min_capacity").unwrap_or_else(|| "1".into())),
        format!("max: {}", target.text("max_capacity").unwrap_or_else(|| "1".into())),
        format!("target_cpu_percent: {}", cpu.unwrap_or(60.0)),
    ];
    if let Some(n) = per_target {
        fields.push(format!("requests_per_target: {}", n.round()));
    }
    out.push(format!("  autoscaling: {{ {} }}", fields.join(", ")));
}

fn load_balancer(
    r: &mut Reading,
    out: &mut Vec<String>,
    lb: Option<Found>,
    listener: Option<Found>,
    tg: Option<Found>,
) {
    let Some(lb) = lb else {
        r.notes.push("no load balancer in front of the service in the state: `up` creates one".into());
        return;
    };
    out.push(String::new());
    out.push(format!(
        "load_balancer:                    # {}{}",
        lb.address(),
        listener.map(|l| format!(", {}", l.address())).unwrap_or_default()
    ));
    let protocol = listener.and_then(|l| l.text("protocol")).unwrap_or_else(|| "HTTP".into());
    let port = listener.and_then(|l| l.text("port")).unwrap_or_else(|| "80".into());
    if protocol == "HTTPS" {
        out.push("  port: 80".into());
        let cert = listener.and_then(|l| l.text("certificate_arn")).unwrap_or_default();
        out.push(format!("  https: {{ certificate_arn: {}, port: {port} }}", yaml(&cert)));
    } else {
        out.push(format!("  port: {port}"));
    }
    if let Some(delay) = tg.and_then(|t| t.text("deregistration_delay")) {
        out.push(format!("  deregistration_delay: {delay}s"));
    }
    if let Some(idle) = lb.text("idle_timeout") {
        out.push(format!("  idle_timeout: {idle}s"));
    }
    out.push(format!(
        "  deletion_protection: {}",
        lb.attr("enable_deletion_protection").and_then(Value::as_bool).unwrap_or(false)
    ));
    let logs = lb.block("access_logs").filter(|b| b.get("enabled").and_then(Value::as_bool) == Some(true));
    if let Some(bucket) = logs.and_then(|b| b.get("bucket")?.as_str().map(str::to_owned)) {
        r.notes.push(format!(
            "{}: access logs go to bucket {bucket}; stack.yaml's access_logs keep them in a bucket the stack owns (not set here)",
            lb.address()
        ));
    }
}

fn logs(r: &mut Reading, out: &mut Vec<String>, name: &str, c: Option<&Value>) {
    let group =
        c.and_then(|c| c.get("logConfiguration")?.get("options")?.get("awslogs-group")?.as_str().map(str::to_owned));
    let found = r.find("aws_cloudwatch_log_group", "name", group.as_deref());
    let Some(found) = found else { return };
    r.take("log_group", Some(found), "name");
    if found.text("name").is_some_and(|g| g != format!("/ecs/{name}")) {
        r.notes.push(format!("{}: the stack's log group is /ecs/{name}", found.address()));
    }
    let days = found.text("retention_in_days").filter(|d| d != "0");
    out.push(String::new());
    match days {
        Some(d) => out.push(format!("logs: {{ retention_days: {d} }}   # {}", found.address())),
        None => {
            r.notes.push(format!("{}: kept forever; the stack's logs expire (30 days unless set)", found.address()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/terraform/konnichiwa.tfstate");

    #[test]
    fn the_fixture_reads_back_as_the_example_stack() {
        let state = State::parse(FIXTURE, "konnichiwa.tfstate").expect("fixture");
        let d = describe(&state, None).expect("described");
        let stack = stack::Stack::from_yaml(&d.text, std::path::Path::new("adopted.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", d.text));
        let example = stack::Stack::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yaml")).expect("example");
        assert_eq!((stack.name.as_str(), stack.region.as_str()), ("konnichiwa", "ap-northeast-1"));
        assert_eq!(stack.network.cidr, example.network.cidr);
        assert_eq!(stack.network.subnets, ["10.40.0.0/20", "10.40.16.0/20"]);
        let c = &stack.capacity;
        assert_eq!((c.instance_type.as_str(), c.min, c.max, c.desired, c.root_volume_gib), ("t3.small", 1, 4, 2, 30));
        assert_eq!(c.ami, "ami-08d556eca88f9a61c", "the AMI it runs, not a moving alias");
        let s = &stack.service;
        assert_eq!((s.container_port, s.cpu, s.memory, s.desired_count), (8080, 256, 256, 2));
        assert!(
            s.image.ends_with("konnichiwa@sha256:4f0a9c1b2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddee")
        );
        assert_eq!(s.environment, example.service.environment, "PORT and LOG_FORMAT are the stack's own");
        let a = s.autoscaling.as_ref().expect("autoscaling");
        assert_eq!((a.min, a.max, a.target_cpu_percent.get()), (2, 8, 60.0));
        assert_eq!((s.health_check_path.as_str(), s.health_check_grace_period.get().as_secs()), ("/health", 30));
        assert_eq!(stack.registry.keep_images, 20);
        assert!(stack.registry.immutable_tags && stack.registry.scan_on_push);
        assert_eq!(stack.secret.recovery_window_days, 7);
        let lb = &stack.load_balancer;
        assert_eq!((lb.port, lb.deregistration_delay.get().as_secs(), lb.deletion_protection), (80, 30, false));
        assert_eq!(stack.logs.retention_days, 30);
        assert!(!d.text.contains("fixture-value-not-a-secret"), "the secret's value never reaches the file");
        for used in [
            "aws_ecs_service.app",
            "aws_lb_target_group.app",
            "aws_lb_listener.http",
            "aws_subnet.public[1]",
            "aws_appautoscaling_policy.cpu",
        ] {
            assert!(d.from.iter().any(|f| f == used), "{used} not in {:?}", d.from);
        }
        assert_eq!(d.notes, Vec::<String>::new());
        // Every name AWS cannot change is recorded, found through what it is attached to.
        let want = [
            ("cluster", "konnichiwa"),
            ("service", "konnichiwa"),
            ("task_family", "konnichiwa"),
            ("load_balancer", "konnichiwa-alb"),
            ("target_group", "konnichiwa-tg"),
            ("launch_template", "konnichiwa-instances"),
            ("auto_scaling_group", "konnichiwa-instances"),
            ("capacity_provider", "konnichiwa-capacity"),
            ("log_group", "/ecs/konnichiwa"),
            ("instance_role", "konnichiwa-instance"),
            ("execution_role", "konnichiwa-execution"),
            ("task_role", "konnichiwa-task"),
            ("instance_profile", "konnichiwa-instance"),
            ("load_balancer_security_group", "konnichiwa-alb"),
            ("instance_security_group", "konnichiwa-instances"),
        ];
        assert_eq!(stack.adopted.entries().map(|(k, v)| (k, v.unwrap_or("-"))), want);
        assert_eq!(d.taken.from.get("launch_template").map(String::as_str), Some("aws_launch_template.instances"));
        let t = &d.taken;
        assert_eq!(t.vpc.as_deref(), Some("vpc-02044decd4be909de"));
        assert_eq!(t.subnets.len(), 2);
        assert_eq!(t.internet_gateway.as_deref(), Some("igw-c148e14c5b75d58ed"));
        assert_eq!(t.route_table.as_deref(), Some("rtb-451eebeb69ec8b33f"));
        assert!(d.from.iter().any(|f| f == "aws_route_table_association.public[1]"), "{:?}", d.from);
    }

    #[test]
    fn two_services_need_a_choice_and_none_is_described_with_notes() {
        let mut v: Value = serde_json::from_str(FIXTURE).expect("json");
        let resources = v["resources"].as_array_mut().expect("resources");
        let service = resources.iter().find(|r| r["type"] == "aws_ecs_service").cloned().expect("service");
        let mut second = service.clone();
        second["name"] = "worker".into();
        resources.push(second);
        let state = State::parse(&v.to_string(), "two").expect("parses");
        let e = describe(&state, None).expect_err("two services");
        assert!(
            e.to_string().contains("aws_ecs_service.app, aws_ecs_service.worker")
                && e.to_string().contains("--service")
        );
        assert!(describe(&state, Some("aws_ecs_service.worker")).is_ok());
        assert!(describe(&state, Some("aws_ecs_service.nope")).expect_err("no such").to_string().contains("it has:"));

        let resources = v["resources"].as_array_mut().expect("resources");
        resources.retain(|r| r["type"] != "aws_ecs_service");
        let state = State::parse(&v.to_string(), "no service").expect("parses");
        let d = describe(&state, None).expect("described without a service");
        assert!(d.notes.iter().any(|n| n.contains("no aws_ecs_service")), "{:?}", d.notes);
        assert_eq!(d.name, "konnichiwa", "named after the cluster");
        stack::Stack::from_yaml(&d.text, std::path::Path::new("adopted.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{}", d.text));

        let resources = v["resources"].as_array_mut().expect("resources");
        resources.retain(|r| r["type"] != "aws_ecs_cluster");
        let d = describe(&State::parse(&v.to_string(), "no cluster").expect("parses"), None).expect("described");
        assert_eq!(d.name, "adopted", "no name is guessed");
        assert!(d.notes.iter().any(|n| n.contains("rename it")), "{:?}", d.notes);
    }
}
