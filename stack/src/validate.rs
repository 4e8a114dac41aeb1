//! Validation of a parsed stack: every problem at once, each with the path of the value at fault
//! and the fix, checked against what AWS and the app will accept.

use ipnet::Ipv4Net;

use crate::catalog;
use crate::limits;
use crate::schema::{Loadtest, Monitor, Request, Slo, Stack};
use crate::units::{HumanDuration, Percent};

/// The app's own memory need: it stays near 15 MiB resident under load; this leaves headroom.
pub const APP_MIN_MEMORY_MIB: u32 = 64;
/// The app's default keep-alive (HEADER_READ_TIMEOUT), which must outlast the ALB's idle timeout.
pub const APP_DEFAULT_KEEP_ALIVE_SECS: u64 = 75;
/// The stack's own tags at most: AWS allows 50 per resource, and the provisioner adds its
/// ownership tag, `Name` and the tags AWS services add themselves.
const MAX_STACK_TAGS: usize = 40;

/// One thing wrong with the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the value at fault, e.g. `network.cidr`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn check(&mut self, ok: bool, path: &str, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(path, message());
        }
    }

    fn duration(&mut self, path: &str, d: &HumanDuration) -> Option<std::time::Duration> {
        match d.error() {
            Some(e) => {
                self.fail(path, e);
                None
            }
            None => Some(d.get()),
        }
    }

    fn percent(&mut self, path: &str, p: &Percent, max: f64) -> Option<f64> {
        if let Some(e) = p.error() {
            self.fail(path, e);
            return None;
        }
        let v = p.get();
        self.check((0.0..=max).contains(&v), path, || format!("{v}% is out of range; use 0–{max}%"));
        Some(v)
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(&mut self, path: &str, v: T, lo: T, hi: T, unit: &str) {
        self.check(v >= lo && v <= hi, path, || format!("{v}{unit} is out of range; use {lo}–{hi}{unit}"));
    }
}

/// Checks everything; returns all problems (empty when the stack is valid).
/// What may be right but looks wrong, said without refusing the stack: an instance type the
/// catalogue (of EC2's types when it was made) lacks, though it is well formed.
pub fn warnings(stack: &Stack) -> Vec<Problem> {
    let it = &stack.capacity.instance_type;
    match catalog::unknown_instance_type(it) {
        Some(catalog::UnknownType::Unlisted { closest }) => {
            let hint = closest.map(|c| format!(" (did you mean {c}?)")).unwrap_or_default();
            vec![Problem {
                path: "capacity.instance_type".into(),
                message: format!(
                    "{it:?} is not among the {} instance types this version knows{hint}: if EC2 offers it, \
                     `provisioner verify` checks it in every zone; its vCPUs, memory and price are unknown here",
                    catalog::instance_type_count()
                ),
            }]
        }
        _ => Vec::new(),
    }
}

pub fn validate(stack: &Stack) -> Vec<Problem> {
    let mut c = Checker { problems: Vec::new() };
    identity(&mut c, stack);
    network(&mut c, stack);
    capacity(&mut c, stack);
    registry_and_secret(&mut c, stack);
    service(&mut c, stack);
    load_balancer(&mut c, stack);
    iam(&mut c, stack);
    observability(&mut c, stack);
    adopted(&mut c, stack);
    c.problems
}

fn identity(c: &mut Checker, s: &Stack) {
    let name = &s.name;
    let well_formed = !name.is_empty()
        && name.len() <= 20
        && name.starts_with(|ch: char| ch.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    c.check(well_formed, "name", || {
        format!("{name:?} is not a valid stack name: use 1–20 lowercase letters, digits and hyphens, starting with a letter (it prefixes names limited to 32 characters)")
    });
    // `<stack>-loadtest` is the stack's load-test family and group: a stack of that name would
    // share them (and its deploy role reach the other's load test).
    c.check(!name.ends_with("-loadtest"), "name", || {
        format!(
            "{name:?} ends with -loadtest, the suffix of another stack's load-test family and group; pick another name"
        )
    });
    // The capacity provider is named after the stack, and AWS reserves these prefixes for it.
    for reserved in ["aws", "ecs", "fargate"] {
        c.check(!name.starts_with(reserved), "name", || {
            format!(
                "{name:?} starts with {reserved:?}, which AWS reserves for capacity provider names; pick another name"
            )
        });
    }
    c.check(catalog::REGIONS.contains(&s.region.as_str()), "region", || {
        format!("{:?} is not an AWS region; use a code such as ap-northeast-1 or us-east-1", s.region)
    });
    c.check(s.tags.len() <= MAX_STACK_TAGS, "tags", || {
        format!(
            "{} tags; AWS allows {} user tags per resource and the provisioner adds its own: use at most {MAX_STACK_TAGS}",
            s.tags.len(),
            limits::TAGS_PER_RESOURCE.max
        )
    });
    for (k, v) in &s.tags {
        let path = format!("tags.{k}");
        c.check(!k.to_ascii_lowercase().starts_with("aws:"), &path, || {
            format!("tag key {k:?}: the aws: prefix is reserved by AWS")
        });
        c.check(!k.starts_with("konnichiwa:"), &path, || {
            format!("tag key {k:?}: the konnichiwa: prefix is the provisioner's own")
        });
        c.check(k != "Name", &path, || {
            "tag key \"Name\": the provisioner names each resource itself (<stack>-vpc, …); remove it from tags"
                .to_owned()
        });
        c.check(!k.is_empty() && k.chars().count() <= limits::TAG_KEY.max, &path, || {
            format!("tag key {k:?} must be 1–{} characters", limits::TAG_KEY.max)
        });
        c.check(v.chars().count() <= limits::TAG_VALUE.max, &path, || {
            format!("the value of tag {k:?} is longer than {} characters", limits::TAG_VALUE.max)
        });
        for (what, text) in [("key", k), ("value", v)] {
            if let Some(bad) = text.chars().find(|ch| !tag_char(*ch)) {
                c.fail(
                    &path,
                    format!(
                        "tag {what} {text:?} has {bad:?}, which AWS refuses in tags: use letters, digits, spaces and _ . : / = + - @"
                    ),
                );
            }
        }
    }
}

/// What every AWS service accepts in a tag key or value: letters and digits (of any script),
/// spaces, and `_ . : / = + - @`.
fn tag_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == ' ' || "_.:/=+-@".contains(ch)
}

/// The region of an ARN (`arn:PARTITION:SERVICE:REGION:…`).
fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

fn network(c: &mut Checker, s: &Stack) {
    let n = &s.network;
    c.range("network.availability_zones", n.availability_zones, 2, 6, "");
    let vpc = match n.cidr.parse::<Ipv4Net>() {
        Ok(net) => net,
        Err(_) => {
            c.fail("network.cidr", format!("{:?} is not an IPv4 CIDR block; write e.g. 10.40.0.0/16", n.cidr));
            return;
        }
    };
    c.check((16..=24).contains(&vpc.prefix_len()), "network.cidr", || {
        format!("/{} is outside the sizes a VPC may have; use a prefix from /16 to /24", vpc.prefix_len())
    });
    c.check(vpc.addr() == vpc.network(), "network.cidr", || {
        format!("{} has host bits set; the block starts at {}", n.cidr, vpc.trunc())
    });
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        .iter()
        .filter_map(|p| p.parse::<Ipv4Net>().ok())
        .any(|p| p.contains(&vpc));
    c.check(private, "network.cidr", || {
        format!("{} is not a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16", n.cidr)
    });

    if n.subnets.is_empty() {
        c.check(vpc.prefix_len() + 4 <= 28, "network.cidr", || {
            format!(
                "{} is too small to carve {} subnets of /{}; use a larger block or list `subnets`",
                n.cidr,
                n.availability_zones,
                vpc.prefix_len() + 4
            )
        });
        return;
    }
    c.check(n.subnets.len() == usize::from(n.availability_zones), "network.subnets", || {
        format!("{} subnets for {} availability zones; give one per zone", n.subnets.len(), n.availability_zones)
    });
    let mut parsed: Vec<(usize, Ipv4Net)> = Vec::new();
    for (i, text) in n.subnets.iter().enumerate() {
        let path = format!("network.subnets[{i}]");
        match text.parse::<Ipv4Net>() {
            Err(_) => c.fail(&path, format!("{text:?} is not an IPv4 CIDR block; write e.g. 10.40.0.0/20")),
            Ok(sub) => {
                c.check(vpc.contains(&sub), &path, || {
                    format!("{sub} does not fit in the VPC {vpc}; pick a block inside it")
                });
                c.check(sub.prefix_len() <= 28, &path, || {
                    format!("{sub} is smaller than /28, the smallest subnet AWS allows")
                });
                if let Some((j, other)) =
                    parsed.iter().find(|(_, o)| o.contains(&sub.network()) || sub.contains(&o.network()))
                {
                    c.fail(&path, format!("{sub} overlaps subnets[{j}] ({other}); subnets must not overlap"));
                }
                parsed.push((i, sub));
            }
        }
    }
}

/// The subnet blocks of the stack: the listed ones, or `availability_zones` blocks carved from
/// the VPC with 4 more prefix bits. Call on a validated stack.
pub fn subnet_blocks(s: &Stack) -> Vec<Ipv4Net> {
    if !s.network.subnets.is_empty() {
        return s.network.subnets.iter().filter_map(|t| t.parse().ok()).collect();
    }
    let Ok(vpc) = s.network.cidr.parse::<Ipv4Net>() else { return Vec::new() };
    vpc.subnets(vpc.prefix_len() + 4)
        .map(|it| it.take(usize::from(s.network.availability_zones)).collect())
        .unwrap_or_default()
}

fn capacity(c: &mut Checker, s: &Stack) {
    let cap = &s.capacity;
    c.check(cap.min <= cap.desired && cap.desired <= cap.max, "capacity.desired", || {
        format!("desired {} must lie between min {} and max {}", cap.desired, cap.min, cap.max)
    });
    c.check(cap.min <= cap.max, "capacity.min", || {
        format!("min {} is greater than max {}; swap them", cap.min, cap.max)
    });
    c.range("capacity.max", cap.max, 1, 100, " instances");
    let it = &cap.instance_type;
    let shaped = it.split_once('.').is_some_and(|(f, sz)| {
        !f.is_empty()
            && !sz.is_empty()
            && f.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    });
    c.check(shaped, "capacity.instance_type", || format!("{it:?} is not an EC2 instance type; write e.g. t3.small"));
    if let Some(catalog::UnknownType::Mistyped { closest }) = catalog::unknown_instance_type(it).filter(|_| shaped) {
        let hint = closest.map_or_else(|| "; write e.g. t3.small".to_owned(), |c| format!(": did you mean {c}?"));
        c.check(false, "capacity.instance_type", || format!("unknown instance type {it:?}{hint}"));
    }
    let ami_ok = matches!(cap.ami.as_str(), "ecs-optimized-al2023" | "ecs-optimized-al2")
        || cap
            .ami
            .strip_prefix("ami-")
            .is_some_and(|h| (8..=17).contains(&h.len()) && h.chars().all(|ch| ch.is_ascii_hexdigit()));
    c.check(ami_ok, "capacity.ami", || {
        format!("{:?} is not an AMI choice; use ecs-optimized-al2023, ecs-optimized-al2 or an id like ami-0123456789abcdef0", cap.ami)
    });
    c.range("capacity.root_volume_gib", cap.root_volume_gib, 30, 16384, " GiB");
}

fn registry_and_secret(c: &mut Checker, s: &Stack) {
    let repo = &s.registry.repository;
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && seg.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && seg.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
    };
    c.check((2..=256).contains(&repo.len()) && repo.split('/').all(segment_ok), "registry.repository", || {
        format!(
            "{repo:?} is not an ECR repository name: use 2–256 lowercase letters, digits and . _ - / (e.g. konnichiwa)"
        )
    });
    c.range("registry.keep_images", s.registry.keep_images, 1, 1000, " images");
    let name = &s.secret.name;
    c.check(
        (1..=512).contains(&name.len()) && name.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch)),
        "secret.name",
        || format!("{name:?} is not a Secrets Manager name: use 1–512 of A-Z a-z 0-9 / _ + = . @ -"),
    );
    c.range("secret.recovery_window_days", s.secret.recovery_window_days, 7, 30, " days");
    for (i, arn) in s.secret.only_principals.iter().enumerate() {
        let shaped = arn.starts_with("arn:aws")
            && arn.split(':').nth(2) == Some("iam")
            && arn.split(':').nth(5).is_some_and(|r| r.starts_with("role/") || r.starts_with("user/"))
            && !arn.contains('*');
        c.check(shaped, &format!("secret.only_principals[{i}]"), || {
            format!("{arn:?} is not the ARN of an IAM role or user (no wildcards), e.g. arn:aws:iam::123456789012:role/Admin")
        });
    }
}

fn service(c: &mut Checker, s: &Stack) {
    let svc = &s.service;
    c.check(!svc.image.trim().is_empty() && !svc.image.contains(char::is_whitespace), "service.image", || {
        format!("{:?} is not an image reference; use `build` or e.g. 123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:…", svc.image)
    });
    c.check(svc.container_port > 0, "service.container_port", || {
        "port 0 cannot be mapped; the image listens on 8080".to_owned()
    });
    c.range("service.cpu", svc.cpu, 128, 10240, " CPU units");
    deployment(c, s);
    c.check(svc.memory >= APP_MIN_MEMORY_MIB, "service.memory", || {
        format!("{} MiB is below what the app needs; give at least {APP_MIN_MEMORY_MIB} MiB", svc.memory)
    });
    if let Some(it) = catalog::lookup(&s.capacity.instance_type) {
        let usable = f64::from(it.memory_mib) * catalog::TASK_USABLE_MEMORY;
        c.check(f64::from(svc.memory) <= usable, "service.memory", || {
            format!("{} MiB does not fit on a {} ({} MiB, about {} MiB usable by tasks); lower it or pick a larger instance type", svc.memory, s.capacity.instance_type, it.memory_mib, usable as u32)
        });
        c.check(svc.cpu <= it.vcpus * 1024, "service.cpu", || {
            format!(
                "{} CPU units do not fit on a {} ({} vCPUs = {} units)",
                svc.cpu,
                s.capacity.instance_type,
                it.vcpus,
                it.vcpus * 1024
            )
        });
    }
    c.check(svc.health_check_path.starts_with('/'), "service.health_check_path", || {
        format!("{:?} must be a path starting with /, e.g. /health", svc.health_check_path)
    });
    if let Some(grace) = c.duration("service.health_check_grace_period", &svc.health_check_grace_period) {
        c.range("service.health_check_grace_period", grace.as_secs(), 0, 2_147_483_647, "s");
    }
    environment(c, svc);
    autoscaling(c, svc);
}

/// How the service rolls out and whom its alarms notify.
fn deployment(c: &mut Checker, s: &Stack) {
    let svc = &s.service;
    for (i, arn) in svc.deployment.alarm_actions.iter().enumerate() {
        let path = format!("service.deployment.alarm_actions[{i}]");
        c.check(arn.starts_with("arn:aws:sns:") && arn_region(arn) == Some(s.region.as_str()), &path, || {
            format!(
                "{arn:?} is not an SNS topic of {}: CloudWatch alarms notify topics in their own region \
                 (arn:aws:sns:{}:ACCOUNT:TOPIC)",
                s.region, s.region
            )
        });
        c.check(svc.deployment.slo_alarms, &path, || {
            "alarm_actions notify through the SLO alarms: set slo_alarms: true too".to_owned()
        });
    }
    // The stack's own topic is one more action of each alarm state.
    let actions = svc.deployment.alarm_actions.len() + usize::from(svc.deployment.alarm_topic);
    c.check(actions <= limits::ALARM_ACTIONS.max, "service.deployment.alarm_actions", || {
        format!(
            "{actions} actions for each alarm state ({}alarm_actions): CloudWatch allows {}; notify one topic and \
             subscribe the others to it",
            if svc.deployment.alarm_topic { "the stack's alarm_topic and " } else { "" },
            limits::ALARM_ACTIONS.max
        )
    });
    c.check(!svc.deployment.alarm_topic || svc.deployment.slo_alarms, "service.deployment.alarm_topic", || {
        "the topic is notified by the SLO alarms: set slo_alarms: true too".to_owned()
    });
    let d = &svc.deployment;
    if let Some(t) = c.duration("service.deployment.timeout", &d.timeout) {
        c.check(t.as_secs() >= 30, "service.deployment.timeout", || {
            format!("{} is too short for a rollout; use at least 30s", d.timeout.text())
        });
    }
    c.range("service.deployment.minimum_healthy_percent", d.minimum_healthy_percent, 0, 100, "%");
    match d.failure_threshold {
        crate::FailureThreshold::Count(n) => c.range("service.deployment.failure_threshold.count", n, 1, 200, " tasks"),
        crate::FailureThreshold::Percent(p) => c.range("service.deployment.failure_threshold.percent", p, 1, 100, "%"),
        crate::FailureThreshold::UnboundedPercent(p) => {
            c.range("service.deployment.failure_threshold.unbounded_percent", p, 1, 1000, "%");
        }
    }
    c.range("service.deployment.maximum_percent", d.maximum_percent, 100, 200, "%");
    strategy(c, s);
}

/// ECS's bounds on a bake time: whole minutes, 0–1440.
const MAX_BAKE_MINUTES: u64 = 1440;
/// ECS's bounds on a lifecycle hook's timeout, in minutes (14 days).
const MAX_HOOK_TIMEOUT_MINUTES: u64 = 20160;

/// A strategy's shares and times as ECS takes them, the gate's, and room for both revisions.
fn strategy(c: &mut Checker, s: &Stack) {
    let d = &s.service.deployment;
    if !d.strategy.shifts_traffic() {
        return;
    }
    let word = d.strategy.word();
    match d.strategy {
        crate::Strategy::Canary => {
            tenths(c, "service.deployment.canary.percent", &d.canary.percent, 0.1);
            minutes(c, "service.deployment.canary.bake", &d.canary.bake, 0, MAX_BAKE_MINUTES);
        }
        crate::Strategy::Linear => {
            tenths(c, "service.deployment.linear.step", &d.linear.step, 3.0);
            minutes(c, "service.deployment.linear.step_bake", &d.linear.step_bake, 0, MAX_BAKE_MINUTES);
        }
        crate::Strategy::BlueGreen | crate::Strategy::Rolling => {}
    }
    minutes(c, "service.deployment.blue_green.bake", &d.blue_green.bake, 0, MAX_BAKE_MINUTES);
    if let Some(share) = c.percent("service.deployment.gate.share", &d.gate.share, 100.0) {
        c.check(share >= 1.0, "service.deployment.gate.share", || {
            format!("{share}% of the SLO rate is too little load to judge; use 1–100%")
        });
        let rate = s.slo.requests_per_second * share / 100.0;
        c.check(rate >= 1.0, "service.deployment.gate.share", || {
            format!(
                "{share}% of slo.requests_per_second ({}) is {rate:.2} requests per second: raise the share so that \
                 the gate sends at least one a second",
                s.slo.requests_per_second
            )
        });
    }
    let measured = c.duration("service.deployment.gate.duration", &d.gate.duration);
    if let Some(t) = measured {
        c.range("service.deployment.gate.duration", t.as_secs(), 2, 1800, "s");
    }
    let floor = measured.map_or(0, |t| t.as_secs().div_ceil(60) + 5);
    minutes(c, "service.deployment.gate.timeout", &d.gate.timeout, floor.max(1), MAX_HOOK_TIMEOUT_MINUTES);
    if let Some(h) = &s.load_balancer.https {
        c.check(h.redirect_http, "service.deployment.strategy", || {
            format!(
                "{word} moves traffic through one listener, and both the HTTP and the HTTPS listener forward: set \
                 load_balancer.https.redirect_http: true"
            )
        });
    }
    room_for_two_revisions(c, s);
    gate_mix(c, s);
    let per_target = s.service.autoscaling.as_ref().and_then(|a| a.requests_per_target);
    c.check(per_target.is_none(), "service.autoscaling.requests_per_target", || {
        format!(
            "it scales on the requests of one target group, and {word} swaps the service's two groups at every \
             deployment: after one, the policy would count an idle group and scale in to service.autoscaling.min. \
             Drop requests_per_target (target_cpu_percent stays), or keep strategy: rolling"
        )
    });
}

/// The gate sends the load-test mix without what needs the API key (it sends no key): something
/// must be left.
fn gate_mix(c: &mut Checker, s: &Stack) {
    let Some(section) = &s.loadtest else { return };
    let keyed = |r: &Request| r.headers.values().chain(&r.body).any(|v| v.contains("${API_KEY}"));
    if !section.scenario.is_empty() {
        c.check(!section.scenario.iter().all(keyed), "loadtest.scenario", || {
            "every request sends the API key, and the deployment gate sends none: add a request without it (e.g. \
             GET /) for the gate to send"
                .to_owned()
        });
    } else if !section.endpoints.is_empty() {
        c.check(!section.endpoints.iter().all(|e| e.auth), "loadtest.endpoints", || {
            "every endpoint needs the API key, and the deployment gate sends none: add one without it (e.g. \
             { path: /, weight: 1 }) for the gate to send"
                .to_owned()
        });
    }
}

/// A share ECS takes in multiples of 0.1%, from `lo` to 100%.
fn tenths(c: &mut Checker, path: &str, p: &Percent, lo: f64) {
    let Some(v) = c.percent(path, p, 100.0) else { return };
    let whole_tenths = ((v * 10.0).round() - v * 10.0).abs() < 1e-6;
    c.check(v >= lo && whole_tenths, path, || {
        format!("{} is not a share ECS takes: use a multiple of 0.1% from {lo}% to 100%", p.text())
    });
}

/// A time ECS takes in whole minutes, from `lo` to `hi`.
fn minutes(c: &mut Checker, path: &str, d: &HumanDuration, lo: u64, hi: u64) {
    let Some(t) = c.duration(path, d) else { return };
    let secs = t.as_secs();
    c.check(t.subsec_nanos() == 0 && secs % 60 == 0 && (lo..=hi).contains(&(secs / 60)), path, || {
        format!("{} is not a time ECS takes: use whole minutes from {lo}m to {hi}m", d.text())
    });
}

/// During a bake both revisions run in full: the instances at `capacity.max` must hold twice the
/// most tasks the service may run.
fn room_for_two_revisions(c: &mut Checker, s: &Stack) {
    let (svc, cap) = (&s.service, &s.capacity);
    let Some(it) = catalog::lookup(&cap.instance_type) else { return };
    if svc.memory == 0 || svc.cpu == 0 {
        return;
    }
    let per_instance = it.tasks_that_fit(svc.cpu, svc.memory);
    let most = svc.autoscaling.as_ref().map_or(svc.desired_count, |a| a.max.max(svc.desired_count));
    let room = per_instance * cap.max;
    c.check(room >= 2 * most, "capacity.max", || {
        let need = (2 * most).div_ceil(per_instance.max(1));
        format!(
            "{} during a {} bake both revisions run: {} tasks, and {} {} instances hold {room} ({per_instance} \
             each); raise capacity.max to at least {need}",
            cap.max,
            s.service.deployment.strategy.word(),
            2 * most,
            cap.max,
            cap.instance_type
        )
    });
}

/// The service's environment: names a shell takes, never the API key, PORT only as the port.
fn environment(c: &mut Checker, svc: &crate::Service) {
    let size = limits::environment_size(&svc.environment);
    c.check(size <= limits::ENVIRONMENT_BUDGET, "service.environment", || {
        format!(
            "{size} bytes of environment; the task definition that carries it is limited ({}), which leaves the \
             environment {} bytes: move large values to a file in the image or to a secret",
            limits::TASK_DEFINITION.describe(),
            limits::ENVIRONMENT_BUDGET
        )
    });
    for (key, value) in &svc.environment {
        let path = format!("service.environment.{key}");
        c.check(key != "API_KEY", &path, || {
            "API_KEY must not be a plain environment value: it is injected from the secret (secret.name)".to_owned()
        });
        c.check(
            key.starts_with(|ch: char| ch.is_ascii_alphabetic() || ch == '_')
                && key.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'),
            &path,
            || format!("{key:?} is not a valid environment variable name"),
        );
        if key == "PORT" {
            c.check(value.parse::<u16>().ok() == Some(svc.container_port), &path, || {
                format!(
                    "PORT={value} differs from service.container_port {}; set only container_port",
                    svc.container_port
                )
            });
        }
    }
}

/// Service auto scaling's bounds and targets.
fn autoscaling(c: &mut Checker, svc: &crate::Service) {
    if let Some(a) = &svc.autoscaling {
        c.check(a.min <= a.max, "service.autoscaling.min", || format!("min {} is greater than max {}", a.min, a.max));
        c.range("service.autoscaling.max", a.max, 1, 1000, " tasks");
        c.check(a.min <= svc.desired_count && svc.desired_count <= a.max, "service.desired_count", || {
            format!(
                "desired_count {} is outside autoscaling's {}–{}; autoscaling would move it at once",
                svc.desired_count, a.min, a.max
            )
        });
        if let Some(target) = c.percent("service.autoscaling.target_cpu_percent", &a.target_cpu_percent, 100.0) {
            c.check((10.0..=90.0).contains(&target), "service.autoscaling.target_cpu_percent", || {
                format!("{target}% leaves no room to react; use 10–90%")
            });
        }
        if let Some(r) = a.requests_per_target {
            c.check(r >= 1, "service.autoscaling.requests_per_target", || "must be at least 1".to_owned());
        }
    }
}

fn load_balancer(c: &mut Checker, s: &Stack) {
    let lb = &s.load_balancer;
    c.check(lb.port > 0, "load_balancer.port", || "port 0 is not a listener port; use 80".to_owned());
    if let Some(logs) = &lb.access_logs {
        c.range("load_balancer.access_logs.retention_days", logs.retention_days, 1, 3650, " days");
    }
    if let Some(d) = c.duration("load_balancer.deregistration_delay", &lb.deregistration_delay) {
        c.range("load_balancer.deregistration_delay", d.as_secs(), 0, 3600, "s");
    }
    if let Some(idle) = c.duration("load_balancer.idle_timeout", &lb.idle_timeout) {
        c.range("load_balancer.idle_timeout", idle.as_secs(), 1, 4000, "s");
        let keep_alive = s
            .service
            .environment
            .get("HEADER_READ_TIMEOUT")
            .and_then(|t| humantime::parse_duration(t).ok())
            .map_or(APP_DEFAULT_KEEP_ALIVE_SECS, |d| d.as_secs());
        c.check(idle.as_secs() < keep_alive, "load_balancer.idle_timeout", || {
            format!("the ALB idle timeout ({}s) must be shorter than the app's keep-alive ({keep_alive}s), or the ALB reuses closed connections and clients see 502s: lower it or set service.environment.HEADER_READ_TIMEOUT higher", idle.as_secs())
        });
    }
    if let Some(h) = &lb.https {
        https(c, s, h);
        c.check(h.port != lb.port && h.port > 0, "load_balancer.https.port", || {
            format!("port {} is taken by the HTTP listener; use 443", h.port)
        });
    }
}

fn https(c: &mut Checker, s: &Stack, h: &crate::Https) {
    const PATH: &str = "load_balancer.https";
    c.check(h.domain.is_some() || h.certificate_arn.is_some(), PATH, || {
        "HTTPS needs a domain (https: { domain: api.example.com }: the certificate is requested and validated for \
         you) or an existing certificate (https: { certificate_arn: arn:aws:acm:… })"
            .into()
    });
    if let Some(arn) = &h.certificate_arn {
        c.check(arn.starts_with("arn:aws:acm:"), "load_balancer.https.certificate_arn", || {
            format!("{arn:?} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)")
        });
        if let Some(region) = arn_region(arn).filter(|r| *r != s.region) {
            c.fail(
                "load_balancer.https.certificate_arn",
                format!(
                    "the certificate is in {region} but the load balancer in {}: an ALB takes a certificate from its own \
                     region; leave certificate_arn out and set https.domain (the stack then requests one in {}), or \
                     request or import one there (CloudFront's us-east-1 certificates do not work here)",
                    s.region, s.region
                ),
            );
        }
    }
    if let Some(domain) = &h.domain {
        const KEY: &str = "load_balancer.https.domain";
        if let Some(parent) = domain.strip_prefix("*.") {
            c.fail(
                KEY,
                format!(
                    "{domain:?} is a wildcard: the service needs one name to answer on (the URL and the alias record \
                     point at it); name the host, e.g. {:?}",
                    format!("api.{parent}")
                ),
            );
        } else if let Err(why) = dns_name(domain) {
            c.fail(KEY, format!("{domain:?} is not a domain name: {why}; write e.g. api.example.com"));
        } else if h.requests_certificate() && domain.len() > 64 {
            c.fail(
                KEY,
                format!(
                    "{domain} has {} characters: ACM writes the domain into the certificate's common name, which \
                     holds at most 64; use a shorter name, or request the certificate yourself and set certificate_arn",
                    domain.len()
                ),
            );
        }
        match h.zone_name() {
            Some(zone) if dns_name(zone).is_err() => {
                c.fail(
                    "load_balancer.https.hosted_zone",
                    format!("{zone:?} is not a domain name; write e.g. example.com"),
                );
            }
            Some(zone) if !(domain == zone || domain.ends_with(&format!(".{zone}"))) => c.fail(
                "load_balancer.https.hosted_zone",
                format!(
                    "{domain} is not inside the zone {zone}: Route 53 can only hold names that end in .{zone}; name \
                     the zone the domain belongs to (e.g. {}) or leave hosted_zone out to find it",
                    domain.split_once('.').map_or(domain.as_str(), |(_, parent)| parent)
                ),
            ),
            _ => {}
        }
    } else if h.hosted_zone.is_some() {
        c.fail("load_balancer.https.hosted_zone", "hosted_zone is used only with https.domain: set the domain too");
    }
}

/// Checks a DNS host name as ACM and Route 53 take it: lowercase labels of letters, digits and
/// hyphens, each 1–63 characters, at least two labels, at most 253 characters.
fn dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!("{} characters, more than DNS allows (253)", name.len()));
    }
    if name.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("write it in lowercase ({})", name.to_ascii_lowercase()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("a single label is not a public name".into());
    }
    for label in labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("the label {label:?} must have 1–63 characters"));
        }
        if !label.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
            return Err(format!("the label {label:?} may hold only letters, digits and hyphens"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} may not start or end with a hyphen"));
        }
    }
    Ok(())
}

/// The app's own IAM statements: the boundary (a managed policy) carries them beside its own.
fn iam(c: &mut Checker, s: &Stack) {
    let size = limits::policy_size(&serde_json::Value::from(s.iam.task_role_statements.clone()));
    let shifts = s.service.deployment.strategy.shifts_traffic();
    let budget = limits::task_role_statements_budget(shifts);
    c.check(size <= budget, "iam.task_role_statements", || {
        let strategy = if shifts {
            format!(
                " (with `strategy: {}`, which adds ECS's traffic shifts to it)",
                s.service.deployment.strategy.word()
            )
        } else {
            String::new()
        };
        format!(
            "{size} characters of statements; the permissions boundary that carries them is one managed policy ({}), \
             of which the stack's own statements leave {budget}{strategy}: merge statements that share resources, or \
             use wildcards in actions (s3:Get*)",
            limits::IAM_MANAGED_POLICY.describe(),
        )
    });
}

/// What AWS allows in each adopted name: its most characters and the characters besides ASCII
/// letters and digits (each API's reference, `Name`/`…Name` parameter).
const ADOPTED_NAME_RULES: &[(&str, usize, &str)] = &[
    ("cluster", 255, "-_"),
    ("service", 255, "-_"),
    ("task_family", 255, "-_"),
    ("load_balancer", 32, "-"),
    ("target_group", 32, "-"),
    ("launch_template", 128, "().-/_"),
    ("auto_scaling_group", 255, "-_.+=,@/()[] "),
    ("capacity_provider", 255, "-_"),
    ("log_group", 512, "._-/#"),
    ("instance_role", 64, "+=,.@-_"),
    ("execution_role", 64, "+=,.@-_"),
    ("task_role", 64, "+=,.@-_"),
    ("instance_profile", 128, "+=,.@-_"),
    ("load_balancer_security_group", 255, " ._-:/()#,@[]+=&;{}!$*"),
    ("instance_security_group", 255, " ._-:/()#,@[]+=&;{}!$*"),
];

/// Names taken over (`adopted:`): as AWS allows them, since `adopt` reads them from what AWS
/// holds and a hand edit should fail here rather than at AWS.
fn adopted(c: &mut Checker, s: &Stack) {
    for (key, name) in s.adopted.entries() {
        let Some(name) = name else { continue };
        let Some((_, max, also)) = ADOPTED_NAME_RULES.iter().find(|(k, _, _)| *k == key) else { continue };
        let allowed = |ch: char| ch.is_ascii_alphanumeric() || also.contains(ch);
        let ok = !name.is_empty() && name.len() <= *max && name.chars().all(allowed);
        c.check(ok, &format!("adopted.{key}"), || {
            format!(
                "{name:?} is not a name AWS gives this resource: 1–{max} ASCII letters, digits and {also:?}; \
                 write it as AWS shows it, or remove the line to derive one from `name`"
            )
        });
    }
    // Each role has its own policies: one role in two places would carry both, and the kinds
    // would rewrite each other's.
    let a = &s.adopted;
    let roles =
        [("instance_role", &a.instance_role), ("execution_role", &a.execution_role), ("task_role", &a.task_role)];
    for (i, (key, name)) in roles.iter().enumerate() {
        let Some(name) = name else { continue };
        if let Some((first, _)) = roles[..i].iter().find(|(_, other)| other.as_ref() == Some(name)) {
            c.fail(
                format!("adopted.{key}"),
                format!(
                    "{name:?} is adopted.{first} already: the stack's roles are three, each with its own policies; \
                     remove this line, and the stack makes its own"
                ),
            );
        }
    }
}

fn observability(c: &mut Checker, s: &Stack) {
    c.check(catalog::LOG_RETENTION_DAYS.contains(&s.logs.retention_days), "logs.retention_days", || {
        format!(
            "{} is not a retention CloudWatch offers; use one of {:?}",
            s.logs.retention_days,
            catalog::LOG_RETENTION_DAYS
        )
    });
    tools(c, &s.slo, &s.monitor, s.loadtest.as_ref());
    cost_assumptions(c, &s.cost);
}

/// The estimate's assumptions: finite and not negative (0 is a stack nobody uses).
fn cost_assumptions(c: &mut Checker, a: &crate::schema::CostAssumptions) {
    for (path, value, example) in [
        ("cost.requests_per_second", a.requests_per_second, "10"),
        ("cost.response_kib", a.response_kib, "1"),
        ("cost.log_gib_per_month", a.log_gib_per_month, "1"),
        ("cost.image_mib", a.image_mib, "50"),
    ] {
        c.check(value >= 0.0 && value.is_finite(), path, || {
            format!("{value} is not a figure the estimate can use; give a number of 0 or more, e.g. {example}")
        });
    }
}

/// The lowest share an error or latency budget can have: below it, the fast page's 14.4× burn
/// (the provisioner's budget alarms) would need more than every request to go wrong.
pub const LOWEST_BUDGETED_SHARE: f64 = 93.1;

/// Whether a budget of `100% − share` leaves the fast page something to fire on, and is a budget.
fn budget_can_page(share: f64) -> bool {
    (LOWEST_BUDGETED_SHARE..100.0).contains(&share) && share <= 99.999
}

/// Problems of the sections the loadtest and the monitor read, alone.
pub fn tool_sections(slo: &Slo, monitor: &Monitor, loadtest: Option<&Loadtest>) -> Vec<Problem> {
    let mut c = Checker::default();
    tools(&mut c, slo, monitor, loadtest);
    c.problems
}

fn tools(c: &mut Checker, slo: &Slo, m: &Monitor, loadtest: Option<&Loadtest>) {
    let a = &m.alerting;
    c.check(a.failure_threshold >= 1, "monitor.alerting.failure_threshold", || "must be at least 1".to_owned());
    c.check(a.success_threshold >= 1, "monitor.alerting.success_threshold", || "must be at least 1".to_owned());
    if let Some(reminder) = &a.reminder
        && let Some(every) = c.duration("monitor.alerting.reminder", reminder)
    {
        c.check(every.as_secs() >= 60, "monitor.alerting.reminder", || {
            format!("{every:?} would page every pass: give at least 1m, e.g. reminder: 30m")
        });
    }
    for (i, w) in a.maintenance.iter().enumerate() {
        if let Err(e) = crate::schedule::Window::parse(w) {
            c.check(false, &format!("monitor.alerting.maintenance[{i}]"), || e.clone());
        }
    }
    c.check(slo.requests_per_second > 0.0 && slo.requests_per_second.is_finite(), "slo.requests_per_second", || {
        format!("{} must be a positive rate", slo.requests_per_second)
    });
    if let Some(p95) = c.duration("slo.p95_latency", &slo.p95_latency) {
        c.check(!p95.is_zero(), "slo.p95_latency", || "a zero latency objective can never be met".to_owned());
    }
    c.percent("slo.max_error_rate", &slo.max_error_rate, 100.0);
    c.check(slo.latency.is_none() || slo.availability.is_some(), "slo.latency", || {
        "the latency budget counts answered requests only (a request that timed out has no response time); \
         set slo.availability too (e.g. 99.9%), so that timeouts and 5xx answers spend the error budget"
            .to_owned()
    });
    for (path, share) in [("slo.availability", &slo.availability), ("slo.latency", &slo.latency)] {
        if let Some(v) = share.as_ref().and_then(|a| c.percent(path, a, 100.0)) {
            c.check(budget_can_page(v), path, || {
                format!(
                    "{v}% leaves no budget the fast page can burn (14.4× its rate within an hour must be \
                     a share of the requests, and 100% leaves none); use {LOWEST_BUDGETED_SHARE}–99.999% \
                     (e.g. 99.9%)"
                )
            });
        }
    }

    for (path, v) in [
        ("monitor.cpu_warning_percent", m.cpu_warning_percent),
        ("monitor.cpu_critical_percent", m.cpu_critical_percent),
        ("monitor.memory_warning_percent", m.memory_warning_percent),
        ("monitor.memory_critical_percent", m.memory_critical_percent),
    ] {
        c.check(v > 0.0 && v <= 100.0, path, || format!("{v}% is out of range; use 1–100%"));
    }
    c.check(m.cpu_warning_percent <= m.cpu_critical_percent, "monitor.cpu_warning_percent", || {
        format!("warning {}% is above critical {}%", m.cpu_warning_percent, m.cpu_critical_percent)
    });
    c.check(m.memory_warning_percent <= m.memory_critical_percent, "monitor.memory_warning_percent", || {
        format!("warning {}% is above critical {}%", m.memory_warning_percent, m.memory_critical_percent)
    });
    let warn = c.duration("monitor.latency_warning", &m.latency_warning);
    let crit = c.duration("monitor.latency_critical", &m.latency_critical);
    if let (Some(w), Some(cr)) = (warn, crit) {
        c.check(w <= cr, "monitor.latency_warning", || format!("warning {w:?} is above critical {cr:?}"));
    }
    c.check(m.certificate_warning_days >= m.certificate_critical_days, "monitor.certificate_warning_days", || {
        format!(
            "warning at {} days is below critical at {} days: the warning must come first (more days left)",
            m.certificate_warning_days, m.certificate_critical_days
        )
    });

    if let Some(lt) = loadtest {
        loadtest_section(c, lt);
    }
}

/// The `loadtest:` section: its endpoints or scenario, and its load.
fn loadtest_section(c: &mut Checker, lt: &Loadtest) {
    for (i, e) in lt.endpoints.iter().enumerate() {
        c.check(e.path.starts_with('/'), &format!("loadtest.endpoints[{i}].path"), || {
            format!("{:?} must start with /", e.path)
        });
        c.check(e.weight >= 1, &format!("loadtest.endpoints[{i}].weight"), || "weight must be at least 1".to_owned());
    }
    c.check(lt.endpoints.is_empty() || lt.scenario.is_empty(), "loadtest.scenario", || {
        "give either endpoints (weighted GET paths) or scenario (requests), not both: the scenario replaces \
         the endpoints; write each endpoint in it as `- path: /health` with its weight"
            .to_owned()
    });
    requests(c, &lt.scenario, "loadtest.scenario");
    if let Some(u) = lt.users {
        c.check(u >= 1, "loadtest.users", || "at least 1 user".to_owned());
    }
    if let Some(r) = lt.spawn_rate {
        c.check(r > 0.0 && r.is_finite(), "loadtest.spawn_rate", || format!("{r} must be a positive rate"));
    }
    if let Some(d) = &lt.duration {
        c.duration("loadtest.duration", d);
    }
}

/// The methods a scenario's request may use.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Header fields the load generator writes itself (it frames every request).
pub const GENERATOR_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];
/// What a header value writes for the API key, replaced at run time.
pub const API_KEY_REFERENCE: &str = "${API_KEY}";

/// Problems of a scenario's requests, each at `PREFIX[i].field` (`loadtest.scenario[0].path`; an
/// empty prefix for a scenario file: `[0].path`).
pub fn scenario(list: &[Request], prefix: &str) -> Vec<Problem> {
    let mut c = Checker::default();
    requests(&mut c, list, prefix);
    c.problems
}

fn requests(c: &mut Checker, requests: &[Request], prefix: &str) {
    let mut names: Vec<String> = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let at = |field: &str| format!("{prefix}[{i}].{field}");
        let method = r.method.to_ascii_uppercase();
        c.check(METHODS.contains(&method.as_str()), &at("method"), || {
            format!("{:?} is not a method the loadtest sends; use one of {}", r.method, METHODS.join(", "))
        });
        c.check(r.path.starts_with('/'), &at("path"), || {
            format!("{:?} must start with /, e.g. /orders?page=2", r.path)
        });
        c.check(!r.path.contains(|ch: char| ch.is_whitespace() || ch.is_control()), &at("path"), || {
            format!("{:?} holds a space or control character: write a space as %20", r.path)
        });
        let name = r.name();
        if r.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            c.fail(at("name"), "an empty name: drop it to use METHOD path");
        } else if let Some(j) = names.iter().position(|n| *n == name) {
            let field = if r.name.is_some() { at("name") } else { format!("{prefix}[{i}]") };
            c.fail(field, format!("{name:?} is also request [{j}]'s name: the reports count by name, so give each a name of its own (name: …)"));
        }
        names.push(name);
        for (key, value) in &r.headers {
            header(c, &format!("{prefix}[{i}].headers.{key}"), key, value);
        }
        c.check(!r.body.as_deref().unwrap_or_default().contains(API_KEY_REFERENCE), &at("body"), || {
            format!("{API_KEY_REFERENCE} is replaced in headers only: send the key in a header, e.g. Authorization: Bearer {API_KEY_REFERENCE}")
        });
        c.check(r.weight >= 1, &at("weight"), || {
            "a weight of 0 never sends: at least 1, or drop the request".to_owned()
        });
        if let Some(pause) = &r.think_time
            && let Err(e) = crate::units::parse_duration_range(pause)
        {
            c.fail(at("think_time"), e);
        }
        check(c, r, &at("check"));
    }
}

/// A header field: a name HTTP allows and the generator does not write itself, and a value a
/// header can carry whose only reference is to the API key.
fn header(c: &mut Checker, path: &str, key: &str, value: &str) {
    let token = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    c.check(token, path, || format!("{key:?} is not a header name: letters, digits and -, e.g. Content-Type"));
    c.check(!GENERATOR_HEADERS.contains(&key.to_ascii_lowercase().as_str()), path, || {
        format!("{key} is the load generator's to write (it frames every request itself): drop it")
    });
    c.check(!value.chars().any(|ch| ch.is_control() && ch != '\t'), path, || {
        "the value holds a line break or control character, which a header cannot carry".to_owned()
    });
    c.check(!value.replace(API_KEY_REFERENCE, "").contains("${"), path, || {
        format!(
            "only {API_KEY_REFERENCE} is replaced (by the API key from the environment): write other values as they are"
        )
    });
}

fn check(c: &mut Checker, r: &Request, path: &str) {
    if let Some(statuses) = &r.check.status {
        c.check(!statuses.patterns().is_empty(), &format!("{path}.status"), || {
            "an empty list passes no answer: give a status (e.g. 201) or drop status for 200–399".to_owned()
        });
        for p in statuses.patterns() {
            if let Err(e) = p.range() {
                c.fail(format!("{path}.status"), e);
            }
        }
    }
    if let Some(text) = &r.check.body_contains {
        c.check(!text.is_empty(), &format!("{path}.body_contains"), || {
            "an empty text is in every body: give the text to look for, or drop body_contains".to_owned()
        });
        c.check(!r.method.eq_ignore_ascii_case("HEAD"), &format!("{path}.body_contains"), || {
            "an answer to HEAD has no body: check the body with GET, or drop body_contains".to_owned()
        });
    }
}
