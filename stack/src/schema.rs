//! The types of stack.yaml. Unknown fields are rejected everywhere; defaults are the documented
//! ones. Values with units stay as written until validation (see `units`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{HumanDuration, Percent};

/// One deployment of the Konnichiwa service.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Prefix of every resource name and value of the `konnichiwa:stack` ownership tag:
    /// lowercase letters, digits and hyphens, at most 20 characters.
    pub name: String,
    /// AWS region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Tags added to every resource (besides `konnichiwa:stack`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub network: Network,
    pub capacity: Capacity,
    #[serde(default)]
    pub registry: Registry,
    #[serde(default)]
    pub secret: Secret,
    pub service: Service,
    pub load_balancer: LoadBalancer,
    #[serde(default)]
    pub logs: Logs,
    #[serde(default)]
    pub iam: Iam,
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub monitor: Monitor,
    #[serde(default)]
    pub loadtest: Option<Loadtest>,
    #[serde(default)]
    pub ci: Ci,
    #[serde(default)]
    pub cost: CostAssumptions,
    /// Names of resources the stack took over from another tool (`provisioner adopt` writes
    /// them); unset, a name is derived from `name`.
    #[serde(default, skip_serializing_if = "Adopted::is_empty")]
    pub adopted: Adopted,
}

/// The names of resources a stack took over (`provisioner adopt`): AWS cannot rename them, so
/// each kind uses the name given here instead of deriving one from the stack's `name`, and `up`
/// converges them in place. `secret.name` and `registry.repository` name the secret and the
/// repository already. The deploy role's policies name these resources as they are named here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Adopted {
    /// The ECS cluster (derived: `<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The ECS service (derived: `<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The task definition's family (derived: `<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_family: Option<String>,
    /// The Application Load Balancer (derived: `<name>-alb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    /// The service's target group (derived: `<name>-tg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// The instances' launch template (derived: `<name>-instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<String>,
    /// The instances' Auto Scaling group (derived: `<name>-instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<String>,
    /// The cluster's capacity provider (derived: `<name>-capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    /// The service's log group (derived: `/ecs/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// The instances' role (derived: `<name>-instance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<String>,
    /// The task execution role (derived: `<name>-execution`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role: Option<String>,
    /// The task role (derived: `<name>-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role: Option<String>,
    /// The instance profile (derived: `<name>-instance`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    /// The load balancer's security group (derived: `<name>-alb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_security_group: Option<String>,
    /// The instances' security group (derived: `<name>-instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_security_group: Option<String>,
}

impl Adopted {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Each name with its key as stack.yaml spells it (`adopted.<key>`), set or not.
    pub fn entries(&self) -> [(&'static str, Option<&str>); 15] {
        [
            ("cluster", self.cluster.as_deref()),
            ("service", self.service.as_deref()),
            ("task_family", self.task_family.as_deref()),
            ("load_balancer", self.load_balancer.as_deref()),
            ("target_group", self.target_group.as_deref()),
            ("launch_template", self.launch_template.as_deref()),
            ("auto_scaling_group", self.auto_scaling_group.as_deref()),
            ("capacity_provider", self.capacity_provider.as_deref()),
            ("log_group", self.log_group.as_deref()),
            ("instance_role", self.instance_role.as_deref()),
            ("execution_role", self.execution_role.as_deref()),
            ("task_role", self.task_role.as_deref()),
            ("instance_profile", self.instance_profile.as_deref()),
            ("load_balancer_security_group", self.load_balancer_security_group.as_deref()),
            ("instance_security_group", self.instance_security_group.as_deref()),
        ]
    }

    /// The slot of `key` (as `entries` spells it), to record a name in.
    pub fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "cluster" => &mut self.cluster,
            "service" => &mut self.service,
            "task_family" => &mut self.task_family,
            "load_balancer" => &mut self.load_balancer,
            "target_group" => &mut self.target_group,
            "launch_template" => &mut self.launch_template,
            "auto_scaling_group" => &mut self.auto_scaling_group,
            "capacity_provider" => &mut self.capacity_provider,
            "log_group" => &mut self.log_group,
            "instance_role" => &mut self.instance_role,
            "execution_role" => &mut self.execution_role,
            "task_role" => &mut self.task_role,
            "instance_profile" => &mut self.instance_profile,
            "load_balancer_security_group" => &mut self.load_balancer_security_group,
            "instance_security_group" => &mut self.instance_security_group,
            _ => return None,
        })
    }
}

/// How CI deploys this stack.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ci {
    /// The GitHub environment whose deploy job deploys this stack: `provisioner ci-role` makes the
    /// stack's deploy role trust exactly that job's token (`repo:OWNER/NAME:environment:ENV`).
    #[serde(default = "default_ci_environment")]
    pub environment: String,
}

fn default_ci_environment() -> String {
    "production".to_owned()
}

impl Default for Ci {
    fn default() -> Self {
        Self { environment: default_ci_environment() }
    }
}

fn default_region() -> String {
    "ap-northeast-1".to_owned()
}

/// The VPC and its public subnets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The VPC's IPv4 block, /16 to /24 (e.g. 10.40.0.0/16).
    pub cidr: String,
    /// How many availability zones (one public subnet each); an ALB needs at least 2.
    #[serde(default = "default_azs")]
    pub availability_zones: u8,
    /// Explicit subnet blocks, one per zone; default: carved from `cidr` (4 more prefix bits).
    #[serde(default)]
    pub subnets: Vec<String>,
}

fn default_azs() -> u8 {
    2
}

/// The EC2 capacity the ECS cluster runs on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    pub instance_type: String,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    /// `ecs-optimized-al2023` (default), `ecs-optimized-al2`, or an explicit `ami-…` id.
    #[serde(default = "default_ami")]
    pub ami: String,
    /// With an `ecs-optimized-…` family: move the instances to each new recommended AMI on the
    /// next `up` (an instance refresh). Off by default: the stack keeps the AMI it runs, `plan`
    /// and `status` say when a newer one is out, and `up --update-ami` moves to it.
    #[serde(default)]
    pub follow_recommended_ami: bool,
    /// Root volume size in GiB (encrypted).
    #[serde(default = "default_root_volume")]
    pub root_volume_gib: u32,
    /// Attach the SSM managed-instance policy (Session Manager access to instances).
    #[serde(default)]
    pub ssm_access: bool,
    /// CloudWatch Container Insights on the cluster.
    #[serde(default)]
    pub container_insights: bool,
}

fn default_ami() -> String {
    "ecs-optimized-al2023".to_owned()
}

fn default_root_volume() -> u32 {
    30
}

/// The ECR repository the app's images go to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Lowercase repository name (default: the stack's name, so another stack never shares it).
    #[serde(default)]
    pub repository: String,
    /// The lifecycle policy keeps this many newest images.
    #[serde(default = "default_keep_images")]
    pub keep_images: u32,
    #[serde(default = "yes")]
    pub scan_on_push: bool,
    /// Tags cannot be overwritten (deploys go by digest anyway).
    #[serde(default = "yes")]
    pub immutable_tags: bool,
}

fn default_keep_images() -> u32 {
    20
}

fn yes() -> bool {
    true
}

impl Default for Registry {
    fn default() -> Self {
        Self { repository: String::new(), keep_images: default_keep_images(), scan_on_push: true, immutable_tags: true }
    }
}

/// The Secrets Manager secret that holds the API key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// The secret's name (default: `<stack name>/api-key`).
    #[serde(default)]
    pub name: String,
    /// Days a deleted secret can be restored (7–30); `down --purge` deletes at once.
    #[serde(default = "default_recovery_window")]
    pub recovery_window_days: u32,
    /// When set, the secret's resource policy denies every principal but these role or user
    /// ARNs, the task execution role and the CI deploy role (include whoever runs `up` by hand).
    /// Unset: only principals of other accounts are denied, and IAM decides within the account.
    #[serde(default)]
    pub only_principals: Vec<String>,
}

fn default_recovery_window() -> u32 {
    7
}

impl Default for Secret {
    fn default() -> Self {
        Self { name: String::new(), recovery_window_days: default_recovery_window(), only_principals: Vec::new() }
    }
}

impl Stack {
    /// Fills in the names stack.yaml leaves out, from the stack's name: the repository is
    /// `<name>`, the secret `<name>/api-key`. Every other name (log group, roles, load balancer, …)
    /// is always derived. A copy of the file with another `name:` therefore never collides.
    pub fn derive_names(&mut self) {
        if self.registry.repository.is_empty() {
            self.registry.repository = self.name.clone();
        }
        if self.secret.name.is_empty() {
            self.secret.name = format!("{}/api-key", self.name);
        }
    }
}

/// The ECS service and its task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `build` (build app/ and push it) or an image reference, ideally by digest.
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default = "default_container_port")]
    pub container_port: u16,
    /// CPU units (1024 = one vCPU).
    pub cpu: u32,
    /// Memory hard limit in MiB.
    pub memory: u32,
    pub desired_count: u32,
    #[serde(default = "default_health_path")]
    pub health_check_path: String,
    /// Time after a task starts during which failed load-balancer health checks are ignored.
    #[serde(default = "default_grace")]
    pub health_check_grace_period: HumanDuration,
    /// Plain environment of the container (never the API key: it comes from the secret).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
    #[serde(default)]
    pub deployment: Deployment,
    /// ECS Exec (`provisioner exec`): the service's tasks accept ExecuteCommand, their role gets
    /// the Session Manager channel permissions, and the agent's directories are writable volumes
    /// (the root filesystem stays read-only). Off by default.
    #[serde(default)]
    pub exec: bool,
}

fn default_image() -> String {
    "build".to_owned()
}

fn default_container_port() -> u16 {
    8080
}

fn default_health_path() -> String {
    "/health".to_owned()
}

fn default_grace() -> HumanDuration {
    HumanDuration::parse("30s")
}

/// Service auto scaling (target tracking).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    pub target_cpu_percent: Percent,
    /// Optional second policy: requests per target per minute (ALB request count).
    #[serde(default)]
    pub requests_per_target: Option<u32>,
}

/// How a new task definition rolls out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub circuit_breaker: CircuitBreaker,
    /// How many failed tasks make the circuit breaker fail a rolling deployment (ECS's
    /// thresholdConfiguration): `{ count: 2 }` that many; `{ percent: 50 }` that share of the
    /// desired count, at least 3 and at most 200 (ECS's default); `{ unbounded_percent: 50 }`
    /// without those bounds. Default `{ count: 2 }`: a two-task service fails a bad deployment
    /// after two failed tasks, not three.
    #[serde(default)]
    pub failure_threshold: FailureThreshold,
    /// How long `up`/`deploy` wait for the new deployment to complete.
    #[serde(default = "default_deploy_timeout")]
    pub timeout: HumanDuration,
    #[serde(default = "default_min_healthy")]
    pub minimum_healthy_percent: u32,
    #[serde(default = "default_max_percent")]
    pub maximum_percent: u32,
    /// CloudWatch alarms from `slo:` (p95 latency, 5xx share, no healthy target) that make ECS
    /// roll back a deployment breaking the SLO.
    #[serde(default = "yes")]
    pub slo_alarms: bool,
    /// SNS topic ARNs the SLO alarms notify when they fire (besides rolling the deploy back).
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    /// Make an SNS topic `<name>-alarms` that the SLO alarms notify too (subscribe to it by email,
    /// chat or a pager outside the stack; `down` deletes it).
    #[serde(default)]
    pub alarm_topic: bool,
    /// How traffic moves to a new revision: `rolling` (tasks replaced in place, the default),
    /// `canary`, `linear` or `blue_green` (ECS shifts traffic between two target groups, and the
    /// gate judges the new revision against `slo:` before any production traffic reaches it).
    #[serde(default)]
    pub strategy: Strategy,
    /// `strategy: canary`: the share of production traffic the new revision takes first, and for
    /// how long before the rest moves (ECS's defaults: 5%, 10m).
    #[serde(default)]
    pub canary: Canary,
    /// `strategy: linear`: the share moved at each step and the wait between steps (ECS's
    /// defaults: 10%, 6m).
    #[serde(default)]
    pub linear: Linear,
    /// `strategy: blue_green`: how long the old revision keeps running, idle, after all traffic
    /// moved (the window in which `rollback` is instant). Also the time the old revision stays
    /// after a canary or linear shift ends.
    #[serde(default)]
    pub blue_green: BlueGreen,
    /// What the gate of a canary, linear or blue/green deployment measures before production
    /// traffic moves.
    #[serde(default)]
    pub gate: Gate,
}

/// `service.deployment.strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// New tasks replace old ones behind the one target group; the SLO alarms and the circuit
    /// breaker roll a bad revision back.
    #[default]
    Rolling,
    /// A slice of production traffic first, then the rest.
    Canary,
    /// Production traffic in equal steps.
    Linear,
    /// All production traffic at once, the old revision kept for `blue_green.bake`.
    BlueGreen,
}

impl Strategy {
    /// The word stack.yaml spells it with.
    pub fn word(self) -> &'static str {
        match self {
            Self::Rolling => "rolling",
            Self::Canary => "canary",
            Self::Linear => "linear",
            Self::BlueGreen => "blue_green",
        }
    }

    /// Whether ECS shifts traffic between two target groups (every strategy but rolling).
    pub fn shifts_traffic(self) -> bool {
        self != Self::Rolling
    }
}

/// `service.deployment.canary`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Multiples of 0.1% from 0.1% to 100%.
    #[serde(default = "default_canary_percent")]
    pub percent: Percent,
    /// Whole minutes, 0–1440.
    #[serde(default = "default_canary_bake")]
    pub bake: HumanDuration,
}

impl Default for Canary {
    fn default() -> Self {
        Self { percent: default_canary_percent(), bake: default_canary_bake() }
    }
}

fn default_canary_percent() -> Percent {
    Percent::parse("5%")
}

fn default_canary_bake() -> HumanDuration {
    HumanDuration::parse("10m")
}

/// `service.deployment.linear`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    /// Multiples of 0.1% from 3% to 100%.
    #[serde(default = "default_linear_step")]
    pub step: Percent,
    /// Whole minutes, 0–1440: the wait after each step but the last.
    #[serde(default = "default_linear_bake")]
    pub step_bake: HumanDuration,
}

impl Default for Linear {
    fn default() -> Self {
        Self { step: default_linear_step(), step_bake: default_linear_bake() }
    }
}

fn default_linear_step() -> Percent {
    Percent::parse("10%")
}

fn default_linear_bake() -> HumanDuration {
    HumanDuration::parse("6m")
}

/// `service.deployment.blue_green`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreen {
    /// Whole minutes, 0–1440 (ECS's bakeTimeInMinutes).
    #[serde(default = "default_blue_green_bake")]
    pub bake: HumanDuration,
}

impl Default for BlueGreen {
    fn default() -> Self {
        Self { bake: default_blue_green_bake() }
    }
}

fn default_blue_green_bake() -> HumanDuration {
    HumanDuration::parse("10m")
}

/// `service.deployment.gate`: the load the new revision takes on its test route, while the old
/// one takes the same on the production route, before production traffic moves.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The share of `slo.requests_per_second` sent to each revision (1–100%).
    #[serde(default = "default_gate_share")]
    pub share: Percent,
    /// How long each revision is driven (2s–30m; a short gate judges few requests: a minute
    /// at 100 requests a second gives a p95 worth trusting).
    #[serde(default = "default_gate_duration")]
    pub duration: HumanDuration,
    /// How long ECS holds the deployment at the gate before rolling it back by itself: what
    /// undoes a deploy that died while judging (whole minutes, at least the duration plus 5m).
    #[serde(default = "default_gate_timeout")]
    pub timeout: HumanDuration,
}

impl Default for Gate {
    fn default() -> Self {
        Self { share: default_gate_share(), duration: default_gate_duration(), timeout: default_gate_timeout() }
    }
}

fn default_gate_share() -> Percent {
    Percent::parse("10%")
}

fn default_gate_duration() -> HumanDuration {
    HumanDuration::parse("1m")
}

fn default_gate_timeout() -> HumanDuration {
    HumanDuration::parse("30m")
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            circuit_breaker: CircuitBreaker::default(),
            failure_threshold: FailureThreshold::default(),
            timeout: default_deploy_timeout(),
            minimum_healthy_percent: default_min_healthy(),
            maximum_percent: default_max_percent(),
            slo_alarms: true,
            alarm_actions: Vec::new(),
            alarm_topic: false,
            strategy: Strategy::default(),
            canary: Canary::default(),
            linear: Linear::default(),
            blue_green: BlueGreen::default(),
            gate: Gate::default(),
        }
    }
}

/// `service.deployment.failure_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FailureThreshold {
    Count(u32),
    Percent(u32),
    UnboundedPercent(u32),
}

impl Default for FailureThreshold {
    fn default() -> Self {
        Self::Count(2)
    }
}

fn default_deploy_timeout() -> HumanDuration {
    HumanDuration::parse("10m")
}

fn default_min_healthy() -> u32 {
    100
}

fn default_max_percent() -> u32 {
    200
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CircuitBreaker {
    /// Stop a failing deployment and roll back to the last good one.
    #[default]
    Rollback,
    /// Stop a failing deployment, leave it failed.
    Enabled,
    Disabled,
}

/// The Application Load Balancer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    #[serde(default = "default_lb_port")]
    pub port: u16,
    /// Time the target group drains a deregistered task (AWS default 300s).
    #[serde(default = "default_dereg")]
    pub deregistration_delay: HumanDuration,
    /// The ALB's idle timeout; the app's keep-alive (HEADER_READ_TIMEOUT) must be longer.
    #[serde(default = "default_idle")]
    pub idle_timeout: HumanDuration,
    #[serde(default)]
    pub https: Option<Https>,
    /// Refuse deletion of the load balancer outside the provisioner (`down` switches it off
    /// first).
    #[serde(default)]
    pub deletion_protection: bool,
    /// Write the load balancer's access logs to an S3 bucket the stack owns (and deletes).
    #[serde(default)]
    pub access_logs: Option<AccessLogs>,
}

/// The load balancer's access logs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogs {
    /// Days the bucket keeps each log file.
    #[serde(default = "default_access_log_days")]
    pub retention_days: u32,
}

fn default_access_log_days() -> u32 {
    90
}

fn default_lb_port() -> u16 {
    80
}

fn default_dereg() -> HumanDuration {
    HumanDuration::parse("30s")
}

fn default_idle() -> HumanDuration {
    HumanDuration::parse("60s")
}

/// HTTPS on the service's own domain: with `domain`, the provisioner requests an ACM certificate
/// for it, validates it in Route 53 and points the domain at the load balancer; with only
/// `certificate_arn`, the listener uses that certificate and the load balancer's own name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Https {
    /// The name the service answers on, e.g. `api.example.com` (the URL becomes
    /// `https://api.example.com`).
    #[serde(default)]
    pub domain: Option<String>,
    /// The Route 53 public hosted zone that holds `domain` (default: the longest public hosted
    /// zone whose name is a suffix of the domain).
    #[serde(default)]
    pub hosted_zone: Option<String>,
    /// An existing ACM certificate (in the stack's region) instead of one the stack requests.
    #[serde(default)]
    pub certificate_arn: Option<String>,
    #[serde(default = "default_https_port")]
    pub port: u16,
    /// Answer plain HTTP with a redirect to HTTPS.
    #[serde(default = "yes")]
    pub redirect_http: bool,
}

fn default_https_port() -> u16 {
    443
}

impl Https {
    /// The hosted zone's name as written, without a trailing dot.
    pub fn zone_name(&self) -> Option<&str> {
        self.hosted_zone.as_deref().map(|z| z.trim_end_matches('.'))
    }

    /// True when the stack requests and owns the certificate (a domain and no certificate ARN).
    pub fn requests_certificate(&self) -> bool {
        self.domain.is_some() && self.certificate_arn.is_none()
    }
}

/// CloudWatch Logs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    #[serde(default = "default_retention")]
    pub retention_days: u32,
}

impl Default for Logs {
    fn default() -> Self {
        Self { retention_days: default_retention() }
    }
}

fn default_retention() -> u32 {
    30
}

/// What the monthly estimate (`provisioner cost`, the end of `plan`) assumes about use: the
/// figures AWS bills by use rather than by the hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostAssumptions {
    /// Requests per second averaged over the month (not the SLO's peak): load balancer capacity
    /// units, data transfer out and access logs scale with it.
    #[serde(default = "default_cost_rps")]
    pub requests_per_second: f64,
    /// Average response size in KiB: data transfer out and the load balancer's processed bytes.
    #[serde(default = "default_response_kib")]
    pub response_kib: f64,
    /// Container logs ingested into CloudWatch Logs per month, in GiB.
    #[serde(default = "default_log_gib")]
    pub log_gib_per_month: f64,
    /// Size of one image in the registry, in MiB (times `registry.keep_images`).
    #[serde(default = "default_image_mib")]
    pub image_mib: f64,
    /// Deployments a month: a canary, linear or blue/green strategy runs both revisions during
    /// each (nothing under `rolling`).
    #[serde(default = "default_deploys_per_month")]
    pub deploys_per_month: u32,
}

impl Default for CostAssumptions {
    fn default() -> Self {
        Self {
            requests_per_second: default_cost_rps(),
            response_kib: default_response_kib(),
            log_gib_per_month: default_log_gib(),
            image_mib: default_image_mib(),
            deploys_per_month: default_deploys_per_month(),
        }
    }
}

fn default_cost_rps() -> f64 {
    10.0
}

fn default_response_kib() -> f64 {
    1.0
}

fn default_log_gib() -> f64 {
    1.0
}

fn default_image_mib() -> f64 {
    50.0
}

fn default_deploys_per_month() -> u32 {
    20
}

/// IAM additions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    /// Statements of the task role (the app's own AWS permissions); empty by default.
    #[serde(default)]
    pub task_role_statements: Vec<serde_json::Value>,
}

/// Service-level objectives the loadtest gates on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default = "default_rps")]
    pub requests_per_second: f64,
    #[serde(default = "default_p95")]
    pub p95_latency: HumanDuration,
    #[serde(default = "default_error_rate")]
    pub max_error_rate: Percent,
    /// The share of requests answered without a 5xx over 30 days (e.g. 99.9%): its error budget
    /// is watched by multiwindow, multi-burn-rate alarms. None (the default): no budget alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Percent>,
    /// The share of requests the targets answer within `p95_latency` over 30 days (e.g. 95%):
    /// its budget of slow answers is watched by the same kind of alarms. It counts answered
    /// requests only (a timeout has no response time), so it needs `availability` beside it.
    /// None (the default): no latency budget alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Percent>,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            requests_per_second: default_rps(),
            p95_latency: default_p95(),
            max_error_rate: default_error_rate(),
            availability: None,
            latency: None,
        }
    }
}

fn default_rps() -> f64 {
    1000.0
}

fn default_p95() -> HumanDuration {
    HumanDuration::parse("300ms")
}

fn default_error_rate() -> Percent {
    Percent::from_value(1.0)
}

/// Thresholds of the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    #[serde(default = "seventy")]
    pub cpu_warning_percent: f64,
    #[serde(default = "ninety")]
    pub cpu_critical_percent: f64,
    #[serde(default = "seventy")]
    pub memory_warning_percent: f64,
    #[serde(default = "ninety")]
    pub memory_critical_percent: f64,
    #[serde(default = "default_latency_warning")]
    pub latency_warning: HumanDuration,
    #[serde(default = "default_latency_critical")]
    pub latency_critical: HumanDuration,
    /// Days before the served certificate expires at which the certificate check (https URLs)
    /// is WARNING.
    #[serde(default = "default_certificate_warning_days")]
    pub certificate_warning_days: u32,
    /// Days before expiry at which it is CRITICAL.
    #[serde(default = "default_certificate_critical_days")]
    pub certificate_critical_days: u32,
    /// When `monitor watch` sends: thresholds against flapping, reminders, recoveries, quiet
    /// windows (`monitor check` and monitor.sh stay one pass, one result).
    #[serde(default)]
    pub alerting: Alerting,
}

/// `monitor.alerting` (Gatus's alerting rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alerting {
    /// Results in a row, worse than a check's state, before it changes and is sent.
    #[serde(default = "one")]
    pub failure_threshold: u32,
    /// Results in a row, better than a check's state, before it recovers.
    #[serde(default = "one")]
    pub success_threshold: u32,
    /// While a check is not OK, send it again this often (none: once).
    #[serde(default)]
    pub reminder: Option<HumanDuration>,
    /// Send recoveries (a check back to OK).
    #[serde(default = "yes")]
    pub send_on_resolved: bool,
    /// Weekly windows in UTC in which nothing is sent: `Sun 02:00-04:00`, `daily 03:00-03:30`.
    #[serde(default)]
    pub maintenance: Vec<String>,
}

impl Default for Alerting {
    fn default() -> Self {
        Self {
            failure_threshold: 1,
            success_threshold: 1,
            reminder: None,
            send_on_resolved: true,
            maintenance: Vec::new(),
        }
    }
}

fn one() -> u32 {
    1
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            cpu_warning_percent: seventy(),
            cpu_critical_percent: ninety(),
            memory_warning_percent: seventy(),
            memory_critical_percent: ninety(),
            latency_warning: default_latency_warning(),
            latency_critical: default_latency_critical(),
            certificate_warning_days: default_certificate_warning_days(),
            certificate_critical_days: default_certificate_critical_days(),
            alerting: Alerting::default(),
        }
    }
}

fn default_certificate_warning_days() -> u32 {
    21
}

fn default_certificate_critical_days() -> u32 {
    7
}

fn seventy() -> f64 {
    70.0
}

fn ninety() -> f64 {
    90.0
}

fn default_latency_warning() -> HumanDuration {
    HumanDuration::parse("500ms")
}

fn default_latency_critical() -> HumanDuration {
    HumanDuration::parse("2s")
}

/// Defaults of the loadtest (its flags override them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Loadtest {
    /// The request mix as weighted GET paths; default: GET /, /health and /inspect (with the
    /// key), weighted. Give either `endpoints` or `scenario`.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// The requests users send, each with its method, headers, body, weight, think time and the
    /// check that counts it a success (`loadtest --scenario FILE` takes the same list). Replaces
    /// `endpoints`.
    #[serde(default)]
    pub scenario: Vec<Request>,
    #[serde(default)]
    pub users: Option<u32>,
    #[serde(default)]
    pub spawn_rate: Option<f64>,
    #[serde(default)]
    pub duration: Option<HumanDuration>,
    /// `[NAME=]DURATION:TARGET` stages, as `loadtest --stage` takes them (e.g. `warmup=30s:100/s`,
    /// `hold=2m:1000/s`); they replace users, spawn_rate and duration.
    #[serde(default)]
    pub stages: Vec<String>,
    /// The stage the SLOs are judged on (default: the whole run).
    #[serde(default)]
    pub slo_stage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub path: String,
    #[serde(default = "one")]
    pub weight: u32,
    /// Send the bearer key (API_KEY).
    #[serde(default)]
    pub auth: bool,
}

/// One request of a scenario: what a user sends, how often, and what counts as success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The name the reports count it under (default `METHOD path`); unique in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// GET (the default), HEAD, POST, PUT, PATCH, DELETE or OPTIONS.
    #[serde(default = "default_method")]
    pub method: String,
    /// The path under the target's URL, starting with `/` (a query string may follow).
    pub path: String,
    /// Header fields to send. `${API_KEY}` in a value is replaced, at run time, by the API key
    /// from the environment (API_KEY, or .env): write `Authorization: Bearer ${API_KEY}`, never
    /// the key itself. Host, Content-Length, Transfer-Encoding and Connection are the
    /// generator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body, sent as written with its Content-Length (set Content-Type in headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// How often it is picked, relative to the other requests' weights.
    #[serde(default = "one")]
    pub weight: u32,
    /// A user's pause after this request (closed model), `500ms` or a range `1s..3s`; default:
    /// `--think-time`, else none. An arrival rate (open model) sets its own pace and ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<String>,
    /// What counts as a success; default: a status of 200–399.
    #[serde(default, skip_serializing_if = "Check::is_default")]
    pub check: Check,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl Request {
    /// The name the reports use: the one given, else `METHOD path`.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("{} {}", self.method.to_ascii_uppercase(), self.path))
    }
}

/// What counts as a success: the status, and optionally a text of the body. A request that fails
/// its check counts as an error (for the SLOs too), by reason: status or body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The statuses that pass: a code (`201`), a class (`2xx`), or a list of them
    /// (`[200, 304]`); default: 200–399.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Statuses>,
    /// Text the response body must contain (the body is read only when this is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

impl Check {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One status pattern or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Statuses {
    One(StatusPattern),
    Many(Vec<StatusPattern>),
}

impl Statuses {
    /// The patterns, one or many.
    pub fn patterns(&self) -> &[StatusPattern] {
        match self {
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(ps) => ps,
        }
    }
}

/// A status code (`201`) or a class (`2xx`), as written; validation checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPattern(pub String);

impl StatusPattern {
    /// The statuses it stands for, from and to, or why it stands for none.
    pub fn range(&self) -> Result<(u16, u16), String> {
        let t = self.0.trim();
        if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX"))
            && let Ok(c @ 1..=5) = class.parse::<u16>()
        {
            return Ok((c * 100, c * 100 + 99));
        }
        match t.parse::<u16>() {
            Ok(code @ 100..=599) => Ok((code, code)),
            _ => Err(format!("{t:?} is not a status: write a code from 100 to 599 (e.g. 201) or a class (e.g. 2xx)")),
        }
    }
}

impl<'de> Deserialize<'de> for StatusPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u64),
            Text(String),
        }
        Ok(Self(match Raw::deserialize(d)? {
            Raw::Code(c) => c.to_string(),
            Raw::Text(t) => t,
        }))
    }
}

/// A code is written as a number, a class as text.
impl Serialize for StatusPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.trim().parse::<u16>() {
            Ok(code) => s.serialize_u16(code),
            Err(_) => s.serialize_str(&self.0),
        }
    }
}

impl JsonSchema for StatusPattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusPattern".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An HTTP status (201) or a class of them (2xx)",
            "oneOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string", "pattern": "^[1-5](xx|XX)$"}
            ]
        })
    }
}
