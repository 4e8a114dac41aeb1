//! The command line. This interface is fixed: tests, CI and the README depend on it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Reconciles AWS to stack.yaml: finds what exists by tags, shows what it will change, and changes
/// exactly that. No state file.
///
/// Region and credentials: `--region`, else stack.yaml's `region`; credentials from the standard
/// AWS chain (environment, profile, SSO, instance role). `AWS_ENDPOINT_URL` points every client at
/// an emulator.
///
/// Exit codes: 0 ok; 1 error (including a refused or incomplete run); 2 changes pending
/// (`plan --detailed-exitcode`); 3 the deployment failed, was rolled back or timed out.
#[derive(Debug, Parser)]
#[command(name = "provisioner", version, about, long_about)]
pub struct Cli {
    /// The stack file.
    #[arg(long, global = true, default_value = stack::DEFAULT_FILE, env = "KONNICHIWA_STACK")]
    pub stack: PathBuf,

    /// AWS region (default: stack.yaml's `region`).
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// Machine-readable output on stdout (a stable shape, documented in the README).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate stack.yaml; no AWS call.
    Validate,
    /// Print the stack as every tool sees it: the files it extends merged, defaults and derived
    /// names filled in (YAML; JSON with --json). No AWS call.
    Render,
    /// Print the JSON Schema of stack.yaml (for editors).
    Schema,
    /// Observe and diff; never changes anything. Ends with the monthly estimate after the change
    /// and its difference from now.
    Plan(PlanArgs),
    /// The monthly estimate of the stack as stack.yaml describes it, per line item, with the
    /// assumptions it makes (`cost:` in stack.yaml) and where its prices come from. No AWS call
    /// unless --refresh-prices.
    Cost(CostArgs),
    /// Pre-flight: what would stop `up` half-way, checked before any change: credentials and the
    /// caller's permissions, quotas against what the stack adds, the instance type in every zone,
    /// the AMI, the image, the secret, the domain's hosted zone, delegation and CAA records. Each
    /// check says what it found and the fix; exit 0 when none failed (some may be "not checked":
    /// the reason is given), 1 when one failed. `up` runs the same checks first.
    Verify,
    /// Plan, confirm (on a terminal; otherwise --yes is required), apply in dependency order.
    Up(UpArgs),
    /// Delete everything the stack owns in reverse order, then sweep by tag and fail naming anything left.
    Down(DownArgs),
    /// The fast path CI uses: register a revision with IMAGE, update the service, follow the new
    /// deployment to COMPLETED (exit 3 when it fails, rolls back or times out).
    Deploy(DeployArgs),
    /// Put the service back on the revision before the one it runs (or `--to` one), and follow
    /// the rollout as `deploy` does (exit 3 when it fails, rolls back or times out).
    Rollback(RollbackArgs),
    /// Set the service's running task count now (ecspresso's `scale`), without a plan, and follow
    /// it until the service is steady (exit 0; 3 when it fails or times out, as `deploy`). With
    /// auto scaling, a count outside service.autoscaling's min–max is refused; without it, the
    /// next `up` sets stack.yaml's desired_count again (said).
    Scale(ScaleArgs),
    /// Wait until the service is steady: its deployment COMPLETED and the only one, running what
    /// it wants (exit 0); exit 3 when it fails, is rolled back, is stuck or times out, as `deploy`.
    Wait(WaitArgs),
    /// Break the stack's lease (one run at a time per stack), like `terraform force-unlock`:
    /// only when the run that holds it is gone. Says who held it.
    Unlock(UnlockArgs),
    /// Create or update the GitHub OIDC identity provider and this stack's deploy role, which only
    /// OWNER/NAME's deploy job in the stack's GitHub environment (`ci.environment`, or
    /// `--environment`) can assume, or with `--branch` its jobs on that branch; prints the role
    /// ARN to store as that environment's AWS_DEPLOY_ROLE_ARN. `--plan` shows the changes only.
    CiRole(CiRoleArgs),
    /// The service's log lines, oldest first, each with its time and task.
    Logs(LogsArgs),
    /// Run a command (default /bin/sh) in a running task through ECS Exec (`service.exec: true`;
    /// needs session-manager-plugin on PATH).
    Exec(ExecArgs),
    /// Run the load test from ECS in the stack's region: WORKERS Fargate tasks in its VPC share
    /// the load (each 1/N of the rate or the users), start together and hand back their results,
    /// which are merged exactly, reported and gated like one run (exit 0 SLOs met, 3 missed, 1
    /// the run failed, 130 interrupted). loadtest's own flags come after this command's:
    /// `provisioner loadtest --workers 3 --stage 1m:1500/s --stage hold=2m:3000/s --json run.json`.
    Loadtest(LoadtestArgs),
    /// Run the image the service runs on this machine, under podman or docker, as ECS runs it:
    /// read-only root, its environment, memory, CPU and health check, the API key from Secrets
    /// Manager (or --env-file), published on 127.0.0.1:PORT. Ctrl-C stops and removes it
    /// (exit 130); --detach returns once it answers /health.
    RunLocal(RunLocalArgs),
    /// What exists, per resource (in sync, drifted or missing), and the outputs.
    Status,
    /// Ids, ARNs and URLs other tools need (all, as JSON; or one by its dotted name, e.g.
    /// `outputs load_balancer.url --raw` for a script).
    Outputs(OutputsArgs),
    /// Build the app's OCI image and push it, without a Docker daemon.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Come from Terraform: take over a stack Terraform made, without recreating it. With
    /// --write-stack-file, write a stack file that describes what the state (format version 4, as
    /// `terraform state pull` prints it) says runs, each value with the resource it came from and
    /// the names AWS cannot change under `adopted:`; no AWS call. Without it, plan taking over
    /// stack.yaml's stack: each resource of the state taken over as it is (tags to add), taken
    /// over and changed in place by `up`, only replaceable (downtime), or left alone (why), and
    /// what `up` would then create. --yes (an administrator's, never the deploy role's) records
    /// the names in stack.yaml and adds the stack's tags, under the lease; nothing is ever deleted,
    /// and `down` then deletes what was taken over. The state's secret values are never read out.
    /// Exit 0 nothing to take over (or written / applied); 2 tags or names to add (the plan);
    /// 1 the state is unusable, of another account or region, or the file does not validate.
    Adopt(AdoptArgs),
}

/// `adopt`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdoptArgs {
    /// The Terraform state: a path, or `-` for standard input (`terraform state pull |
    /// provisioner adopt --from-tfstate - --write-stack-file stack.yaml`).
    #[arg(long = "from-tfstate", value_name = "PATH")]
    pub from_tfstate: PathBuf,
    /// Write the stack file describing the state here (`-`: standard output) instead of
    /// planning; refused when the file exists, unless --force.
    #[arg(long, value_name = "FILE", conflicts_with = "yes")]
    pub write_stack_file: Option<PathBuf>,
    /// The service to describe when the state runs several: its address, e.g. aws_ecs_service.app.
    #[arg(long, value_name = "ADDRESS")]
    pub service: Option<String>,
    /// Overwrite an existing --write-stack-file.
    #[arg(long, requires = "write_stack_file")]
    pub force: bool,
    /// Take over: record the names in stack.yaml and add the stack's tags.
    #[arg(long)]
    pub yes: bool,
    /// When another run holds the stack's lease, wait this long for it (default: refuse at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the static app (or loadtest) and its image; write it as an OCI image layout; print
    /// the digest.
    Build {
        /// Which program's image.
        #[arg(long, value_enum, default_value_t = ProgramArg::App)]
        program: ProgramArg,
        /// The workspace to build (holds Cargo.toml and app/).
        #[arg(long, default_value = ".")]
        source: PathBuf,
        /// Where to write the OCI image layout (skopeo: `oci:DIR:TAG`).
        #[arg(long, default_value = "target/konnichiwa-image")]
        output: PathBuf,
    },
    /// Build and push to a registry; the last line on stdout is `HOST/NAME@sha256:…`.
    Push {
        /// Which program's image (`loadtest` for `provisioner loadtest --image`).
        #[arg(long, value_enum, default_value_t = ProgramArg::App)]
        program: ProgramArg,
        /// `HOST[:PORT]/NAME`; ECR hosts get credentials from GetAuthorizationToken.
        #[arg(long, env = "KONNICHIWA_IMAGE_REPOSITORY")]
        repository: String,
        /// Tag (default: the git revision).
        #[arg(long)]
        tag: Option<String>,
        /// The workspace to build (holds Cargo.toml and app/).
        #[arg(long, default_value = ".")]
        source: PathBuf,
    },
}

/// `outputs`' arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputsArgs {
    /// One output by its dotted name (`load_balancer.url`, `service.service`); an unknown name is
    /// refused with the names there are.
    pub name: Option<String>,
    /// The value alone, without JSON quotes (a string or a number; refused for an object, a
    /// list, or an output not known yet), as `terraform output -raw` prints it.
    #[arg(long, requires = "name")]
    pub raw: bool,
}

/// `plan`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Exit 2 when changes are pending (0 when none), like `terraform plan`.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// With `service.image: build`, compare with an image for this `HOST[:PORT]/NAME` (as
    /// `up --image-repository` pushes) instead of the stack's ECR repository.
    #[arg(long, env = "KONNICHIWA_IMAGE_REPOSITORY")]
    pub image_repository: Option<String>,
    /// Move the instances to the AMI AWS recommends now (an instance refresh), when
    /// capacity.ami is an `ecs-optimized-…` family: otherwise they keep the AMI they run.
    #[arg(long)]
    pub update_ami: bool,
    /// Save the plan to FILE (no secret value is in it) for `up --plan FILE`, which applies exactly
    /// it or refuses.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `cost`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CostArgs {
    /// Fetch the region's current prices from the AWS Price List API (pricing:GetProducts, in
    /// us-east-1) and keep them for `plan` and `cost` (in $KONNICHIWA_PRICE_CACHE, else
    /// ~/.cache/konnichiwa/prices); without it, the last fetched prices or the shipped snapshot.
    #[arg(long)]
    pub refresh_prices: bool,
}

/// `up`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
    /// Apply the plan `plan --out FILE` saved, without asking: exactly it, or nothing when the
    /// stack file or AWS has changed since (the plan made now differs; it says how).
    #[arg(long = "plan", value_name = "FILE")]
    pub saved_plan: Option<PathBuf>,
    /// With `service.image: build`, push to this `HOST[:PORT]/NAME` instead of the stack's
    /// ECR repository (e.g. a local registry next to an emulator).
    #[arg(long, env = "KONNICHIWA_IMAGE_REPOSITORY")]
    pub image_repository: Option<String>,
    /// Apply and return without following the rollout (it goes on in ECS; a canary, linear or
    /// blue/green deployment waits at the gate for `deploy`, and rolls back after gate.timeout).
    #[arg(long)]
    pub no_wait: bool,
    /// Where the gate of a canary, linear or blue/green deployment sends its load (default: the
    /// stack's URL).
    #[arg(long, value_name = "URL")]
    pub gate_url: Option<String>,
    /// Give up (exit 1, naming what was awaited) after this long.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// When another run holds the stack's lease, wait this long for it (default: refuse at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Move the instances to the AMI AWS recommends now (an instance refresh), when
    /// capacity.ami is an `ecs-optimized-…` family: otherwise they keep the AMI they run.
    #[arg(long)]
    pub update_ami: bool,
    /// Do not run the pre-flight checks (`provisioner verify`) before planning
    /// (KONNICHIWA_SKIP_VERIFY: 1/0, yes/no, true/false, on/off).
    #[arg(long, env = "KONNICHIWA_SKIP_VERIFY", value_parser = clap::builder::BoolishValueParser::new())]
    pub skip_verify: bool,
}

/// `down`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    /// Delete the API-key secret at once instead of scheduling its deletion (recovery window
    /// from stack.yaml, default 7 days, during which `up` restores it).
    #[arg(long)]
    pub purge: bool,
    /// Give up (exit 1, naming what was awaited) after this long.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// When another run holds the stack's lease, wait this long for it (default: refuse at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

/// `deploy`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// Image reference, ideally `HOST/NAME@sha256:…` (a tag can move under a running service).
    #[arg(long)]
    pub image: String,
    /// Where the gate of a canary, linear or blue/green deployment sends its load (default: the
    /// stack's URL); its test requests carry the header the test listener rule matches.
    #[arg(long, value_name = "URL")]
    pub gate_url: Option<String>,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `scale`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// The number of tasks the service runs.
    #[arg(long)]
    pub tasks: u32,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `wait`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// How long to wait (default: stack.yaml's service.deployment.timeout).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// `rollback`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    /// A revision (`7` or `FAMILY:7`) or an image reference; `status` lists the recent ones.
    #[arg(long)]
    pub to: Option<String>,
    #[command(flatten)]
    pub rollout: RolloutArgs,
}

/// `unlock`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UnlockArgs {
    /// Break it without asking.
    #[arg(long)]
    pub yes: bool,
}

/// `ci-role`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CiRoleArgs {
    /// OWNER/NAME of the GitHub repository.
    #[arg(long)]
    pub github_repo: String,
    /// Trust the deploy job that runs in this GitHub environment (its token's subject is
    /// `repo:OWNER/NAME:environment:ENV`; default: the stack's `ci.environment`).
    #[arg(long, conflicts_with = "branch")]
    pub environment: Option<String>,
    /// Instead, trust jobs without an environment on this branch
    /// (`repo:OWNER/NAME:ref:refs/heads/BRANCH`).
    #[arg(long)]
    pub branch: Option<String>,
    /// Delete the deploy role instead (the OIDC provider, shared by every stack, stays).
    #[arg(long)]
    pub delete: bool,
    /// Show the plan (the trust and every policy document) and stop: nothing changes.
    #[arg(long, conflicts_with = "yes")]
    pub plan: bool,
    /// Apply without asking.
    #[arg(long)]
    pub yes: bool,
}

/// `logs`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// Keep printing new lines (new tasks' streams included) until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// From this long ago (`10m`, `2h`) or this time (`2026-11-28T09:00:00Z`).
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Only lines containing this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only this task's lines (its id, or the first characters of it).
    #[arg(long)]
    pub task: Option<String>,
}

/// `run-local`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RunLocalArgs {
    /// The port on 127.0.0.1 the container's port is published on.
    #[arg(long, default_value_t = 4000)]
    pub port: u16,
    /// Take API_KEY from this file (`KEY=VALUE` lines, as .env) instead of Secrets Manager.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Run this image instead of the one the service runs (the task definition's settings stay).
    #[arg(long)]
    pub image: Option<String>,
    /// Start it in the background and return once it answers /health (stop it with the engine's
    /// `rm --force NAME`, which it prints).
    #[arg(long)]
    pub detach: bool,
}

/// `exec`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// The task (its id, or the first characters of it; default: the first running one).
    #[arg(long)]
    pub task: Option<String>,
    /// The container (default: the app's).
    #[arg(long)]
    pub container: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// The programs that ship as images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgramArg {
    App,
    Loadtest,
}

impl From<ProgramArg> for crate::image::Program {
    fn from(p: ProgramArg) -> Self {
        match p {
            ProgramArg::App => Self::App,
            ProgramArg::Loadtest => Self::Loadtest,
        }
    }
}

/// `provisioner loadtest`: where and how the workers run; the load itself is loadtest's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadtestArgs {
    /// Tasks that share the load.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub workers: u32,
    /// CPU units of each worker (Fargate: 256, 512, 1024, 2048, 4096); its loadtest runs one
    /// thread per vCPU.
    #[arg(long, default_value_t = 1024)]
    pub worker_cpu: u32,
    /// Memory of each worker in MiB (default: twice the CPU units).
    #[arg(long)]
    pub worker_memory: Option<u32>,
    /// How long the workers have to start (Fargate: pull and start, usually 30–60 s) before the
    /// load begins, at the same moment on each.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub start_in: Duration,
    /// Give up (stop every worker, exit 1) after this long (default: the start, the load and 5
    /// minutes).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// A loadtest image already pushed (`HOST/NAME@sha256:…`); default: build it here and push
    /// it to the stack's repository.
    #[arg(long)]
    pub image: Option<String>,
    /// Push the built image to this `HOST[:PORT]/NAME` instead of the stack's ECR repository.
    #[arg(long, env = "KONNICHIWA_IMAGE_REPOSITORY")]
    pub image_repository: Option<String>,
    /// How often the workers and their log streams are polled.
    #[arg(long, default_value = "2s", value_parser = parse_duration, hide = true)]
    pub poll_interval: Duration,
    /// loadtest's flags: --rate/--users/--stage, --duration, --slo, --slo-stage, --abort-on-fail,
    /// --endpoint, --json/--csv/--html FILE (written here), --host (default: the stack's URL).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "LOADTEST FLAGS")]
    pub load: Vec<String>,
}

/// Durations on the command line follow stack.yaml's rules.
/// How `deploy` and `rollback` follow what they start.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RolloutArgs {
    /// How long to follow the rollout (default: stack.yaml's service.deployment.timeout).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Return once the service is updated, without following the rollout (it goes on in ECS).
    #[arg(long)]
    pub no_wait: bool,
    /// When another run holds the stack's lease, wait this long for it (default: refuse at once).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    stack::parse_duration(s)
}
