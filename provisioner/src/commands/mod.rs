//! The commands: each loads the stack, runs the engine in the right mode and prints its result as
//! text or as the documented JSON shape. They return the process exit code.

mod adopt;
mod answer;
mod cost;
mod deploy;
mod down;
mod exec;
mod image;
mod loadtest;
mod logs;
mod plan;
pub(crate) mod rollback;
mod run_local;
mod saved_plan;
mod scale;
mod status;
mod take_over;
mod up;
mod verify;

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::aws::Clients;
use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Ctx, Mode};

/// A command line clap refused: `--help` and `--version` print and exit 0; anything else is an
/// error (1, never clap's 2, which `plan --detailed-exitcode` uses for "changes pending"), and
/// with `--json` it is one JSON object like every other error.
pub fn usage_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return exit::OK;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--json") {
        let known: Vec<String> =
            <Cli as clap::CommandFactory>::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
        let command = args.iter().find(|a| known.contains(a)).cloned();
        let message = e.render().to_string();
        let error = message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
        let answer = answer::Answer {
            command: command.as_deref(),
            stack: None,
            body: answer::Failure { error, causes: Vec::new(), problems: Vec::new() },
        };
        println!("{}", answer.to_pretty());
    }
    let _ = e.print();
    exit::ERROR
}

/// Runs the parsed command line; prints results and errors; returns the exit code.
pub async fn run(cli: Cli) -> u8 {
    let name = command_name(&cli.command);
    // Boxed: a command's future (the engine's concurrent kinds) is too large for the main stack.
    match Box::pin(dispatch(&cli)).await {
        Ok(code) => code,
        Err(Error::DeployFailed(message)) => {
            eprintln!("error: {message}");
            exit::DEPLOY_FAILED
        }
        Err(e) => {
            let causes = crate::error::causes(&e);
            if cli.json {
                let problems = match &e {
                    Error::Stack(se) => se.problems().iter().map(answer::Problem::from).collect(),
                    _ => Vec::new(),
                };
                let error = format!("{e:#}");
                answer::print(name, None, answer::Failure { error, causes: causes.clone(), problems });
            }
            eprintln!("error: {e:#}");
            for cause in &causes {
                eprintln!("  caused by: {cause}");
            }
            exit::ERROR
        }
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Validate => "validate",
        Command::Render => "render",
        Command::Schema => "schema",
        Command::Plan(_) => "plan",
        Command::Cost(_) => "cost",
        Command::Verify => "verify",
        Command::Up(_) => "up",
        Command::Down(_) => "down",
        Command::Logs(_) => "logs",
        Command::Exec(_) => "exec",
        Command::Loadtest(_) => "loadtest",
        Command::RunLocal(_) => "run-local",
        Command::Status => "status",
        Command::Outputs(_) => "outputs",
        Command::Scale(_) => "scale",
        Command::Wait(_) => "wait",
        Command::Deploy(_) => "deploy",
        Command::Rollback(_) => "rollback",
        Command::Unlock(_) => "unlock",
        Command::CiRole(_) => "ci-role",
        Command::Image(crate::cli::ImageCommand::Build { .. }) => "image build",
        Command::Image(crate::cli::ImageCommand::Push { .. }) => "image push",
        Command::Adopt(_) => "adopt",
    }
}

async fn dispatch(cli: &Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Schema => {
            // The schema document itself, not an answer about one.
            println!("{}", serde_json::to_string_pretty(&stack::json_schema()).unwrap_or_default());
            Ok(exit::OK)
        }
        Command::Validate => {
            let doc = stack::Document::load(&cli.stack)?;
            let s = stack::Stack::from_document(&doc)?;
            warn_about(cli, &s);
            let files: Vec<String> = doc.chain.iter().map(|f| f.display().to_string()).collect();
            if cli.json {
                let problems: Vec<answer::Problem> = Vec::new();
                answer::print("validate", Some(&s.name), Validated { valid: true, problems, files });
            } else {
                let over =
                    if files.len() > 1 { format!(" (over {})", files[1..].join(" over ")) } else { String::new() };
                println!("{}{over} is valid (stack {}, region {})", cli.stack.display(), s.name, s.region);
            }
            Ok(exit::OK)
        }
        Command::Render => render(cli),
        Command::Adopt(args) => adopt::run(cli, args).await,
        Command::Plan(args) => plan::run(cli, args).await,
        Command::Cost(args) => cost::run(cli, args).await,
        Command::Verify => verify::run(cli).await,
        Command::Up(args) => up::run(cli, args).await,
        Command::Deploy(args) => deploy::run(cli, args).await,
        Command::Image(cmd) => image::run(cli, cmd).await,
        Command::Down(args) => down::run(cli, args).await,
        Command::Unlock(args) => unlock(cli, args).await,
        Command::CiRole(args) => ci_role(cli, args).await,
        Command::Logs(args) => logs::run(cli, args).await,
        Command::Rollback(args) => rollback::run(cli, args).await,
        Command::Exec(args) => exec::run(cli, args).await,
        Command::Loadtest(args) => loadtest::run(cli, args).await,
        Command::RunLocal(args) => run_local::run(cli, args).await,
        Command::Status => status::run(cli, None).await,
        Command::Outputs(args) => status::run(cli, Some(args)).await,
        Command::Scale(args) => scale::scale(cli, args).await,
        Command::Wait(args) => scale::wait(cli, args).await,
    }
}

/// Where `plan` and `up` take the service's image from: stack.yaml's reference, or (for
/// `image: build`) the sources of the workspace that holds the stack file, by their digest: `up`
/// builds only when the service does not already run an image built from them, and `plan` never
/// builds.
fn image_source(cli: &Cli, ctx: &Ctx, repository: Option<&str>) -> Result<crate::engine::ImageSource, Error> {
    use crate::engine::ImageSource;
    if ctx.stack.service.image != "build" {
        return Ok(ImageSource::Reference(ctx.stack.service.image.clone()));
    }
    // Before anything is read or built for an image the instances could not run.
    use crate::resources::capacity;
    capacity::check_architecture(&ctx.stack, capacity::image_arch(&ctx.stack))?;
    let workspace = crate::image::build::workspace_of(&cli.stack);
    let sources = crate::image::sources::fingerprint(&workspace, crate::image::Program::App)?;
    Ok(ImageSource::Build { sources, repository: repository.map(str::to_owned), workspace })
}

/// Loads the stack and builds the context for `mode`.
async fn context(cli: &Cli, mode: Mode, timeout: Duration) -> Result<Ctx, Error> {
    let stack = load_stack(cli)?;
    let clients = Clients::load(&stack.region).await?;
    clients.check_credentials().await?;
    Ok(Ctx { clients, stack, mode, deadline: Instant::now() + timeout, adopting: Default::default() })
}

/// Loads the stack, in the region `--region` names if it does (refused when it is not one).
fn load_stack(cli: &Cli) -> Result<stack::Stack, Error> {
    let mut stack = stack::Stack::load(&cli.stack)?;
    warn_about(cli, &stack);
    if let Some(region) = &cli.region {
        if !stack::catalog::REGIONS.contains(&region.as_str()) {
            return Err(Error::Usage(format!(
                "--region {region:?} is not an AWS region: use a code such as ap-northeast-1 or us-east-1 (or leave it \
                 out to use stack.yaml's region, {})",
                stack.region
            )));
        }
        stack.region = region.clone();
    }
    Ok(stack)
}

/// What looks wrong in the stack but may be right (`stack::validate::warnings`), on stderr.
fn warn_about(cli: &Cli, stack: &stack::Stack) {
    for w in stack::validate::warnings(stack) {
        eprintln!("warning: {}: {}: {}", cli.stack.display(), w.path, w.message);
    }
}

/// Asks on a terminal; refuses when stdin is not one (pass --yes).
fn confirm(question: &str, yes: bool) -> Result<bool, Error> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "{question} — stdin is not a terminal, so nobody can answer: pass --yes to go ahead"
        )));
    }
    eprint!("{question} Only 'yes' goes ahead: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Error::Usage(format!("cannot read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}

/// Runs `body` holding the stack's lease, which is released however `body` ends; returns what
/// `body` returned and the lease's report.
async fn holding_lease<T>(
    ctx: &mut Ctx,
    command: &str,
    wait: Duration,
    body: impl AsyncFnOnce(&mut Ctx) -> Result<T, Error>,
) -> Result<(T, crate::lease::LeaseReport), Error> {
    let lease = crate::lease::acquire(&ctx.clients, &ctx.stack.name, command, wait).await?;
    if lease.taken != "free" {
        eprintln!("Lease of stack {}: {}", ctx.stack.name, lease.taken);
    }
    // What the run waits on (a load balancer provisioning, a certificate being issued, at once),
    // named every 30 s while it lasts.
    let reporting = crate::progress::report_every(Duration::from_secs(30), |line| eprintln!("  {line}"));
    let result = body(ctx).await;
    drop(reporting);
    let released = lease.release().await;
    let value = result?;
    Ok((value, released?))
}

/// `validate --json`: the files read (the stack, then each overlay).
#[derive(serde::Serialize)]
struct Validated {
    valid: bool,
    problems: Vec<answer::Problem>,
    files: Vec<String>,
}

/// `render --json`: the stack with every default filled in, and the names its resources get.
#[derive(serde::Serialize)]
struct Rendered<'a> {
    stack: &'a stack::Stack,
    derived_names: Vec<DerivedName>,
}

/// One name the provisioner derives from the stack, with the kind of resource it names.
#[derive(serde::Serialize)]
struct DerivedName {
    kind: &'static str,
    name: String,
}

/// `render`: the stack as YAML (still a loadable stack file), the derived names after it as
/// comments; with --json both as fields.
fn render(cli: &Cli) -> Result<u8, Error> {
    let s = stack::Stack::load(&cli.stack)?;
    let names = crate::engine::walk::derived_names(&s);
    if cli.json {
        let derived_names = names.into_iter().map(|(kind, name)| DerivedName { kind: kind.as_str(), name }).collect();
        // `stack` here is the whole rendered stack, not its name.
        answer::print("render", None, Rendered { stack: &s, derived_names });
        return Ok(exit::OK);
    }
    let yaml = serde_saphyr::to_string(&s).map_err(|e| Error::Usage(format!("cannot print the stack as YAML: {e}")))?;
    print!("{yaml}");
    println!("# The names of what the stack makes, derived from `name` (<…>: known once AWS answers):");
    let width = names.iter().map(|(kind, _)| kind.as_str().len()).max().unwrap_or(0);
    for (kind, name) in names {
        println!("#   {kind:width$}  {name}");
    }
    Ok(exit::OK)
}

/// `unlock --json`: the holders whose lease was broken.
#[derive(serde::Serialize)]
struct Unlocked {
    broken: Vec<crate::lease::Holder>,
}

/// `ci-role --json`.
#[derive(serde::Serialize)]
struct CiRoleAnswer<'a> {
    plan: answer::PlanView<'a>,
    outputs: &'a crate::resources::ci_role::CiRoleOutputs,
    #[serde(flatten)]
    spent: answer::Spent,
}

/// `unlock`: says who holds the lease, confirms, deletes it.
async fn unlock(cli: &Cli, &crate::cli::UnlockArgs { yes }: &crate::cli::UnlockArgs) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, Duration::from_secs(120)).await?;
    let records = crate::lease::records(&ctx.clients, &ctx.stack.name).await?;
    let holders: Vec<String> = records
        .iter()
        .map(|(_, name, h)| format!("{name}: {}", h.as_ref().map_or_else(|| "(unreadable)".into(), |h| h.describe())))
        .collect();
    if records.is_empty() {
        if cli.json {
            answer::print("unlock", Some(&ctx.stack.name), Unlocked { broken: Vec::new() });
        } else {
            println!("Stack {} has no lease: nothing to unlock.", ctx.stack.name);
        }
        return Ok(exit::OK);
    }
    if !cli.json {
        println!("Stack {} is leased:\n  {}", ctx.stack.name, holders.join("\n  "));
    }
    if !confirm("Break this lease? Only if that run is gone: two runs at once can leave duplicates.", yes)? {
        eprintln!("The lease was left in place.");
        return Ok(exit::ERROR);
    }
    let broken = crate::lease::unlock(&ctx.clients, &ctx.stack.name).await?;
    if cli.json {
        answer::print("unlock", Some(&ctx.stack.name), Unlocked { broken });
    } else {
        println!("Broke the lease of stack {}.", ctx.stack.name);
    }
    Ok(exit::OK)
}

/// The repository settings the trust relies on, to apply by hand in GitHub: for an environment,
/// the branches that may deploy to it (GitHub gives any branch's job in that environment a token
/// with the environment's subject) and its own API_KEY; for a branch, nothing more.
fn github_settings(trust: &crate::resources::ci_role::Trust) -> String {
    use crate::resources::ci_role::Trust;
    match trust {
        Trust::Environment(env) => format!(
            "\nIn GitHub, Settings → Environments → {env}:\n  - Deployment branches and tags: Selected branches and \
             tags, with main alone. Without it, a workflow of any branch that names `{env}` gets a token this role \
             trusts: whoever can push a branch can deploy.\n  - Environment secret API_KEY: this stack's own key (a \
             repository or organization secret of that name would be every environment's).\n  - Required reviewers, for an environment whose \
             deploys a person approves (production).\n"
        ),
        Trust::Branch(branch) => format!(
            "\nThe token subject names the branch {branch}: only jobs of that branch (without an environment) can \
             assume the role; protect the branch (Settings → Branches) so that only reviewed changes reach it.\n"
        ),
    }
}

/// How full each deploy policy is of IAM's limits, for the review: one line each, then the count
/// against what a role may have attached.
fn policy_fill(policies: &[crate::resources::ci_role::PolicyFill]) -> String {
    let attached = stack::limits::IAM_ROLE_MANAGED_POLICIES;
    let mut out = format!(
        "\nThe deploy role's policies, against IAM's limits ({} managed policies a role, {} characters each):\n",
        attached.max,
        stack::limits::IAM_MANAGED_POLICY.max
    );
    let width = policies.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in policies {
        let share = 100.0 * p.characters as f64 / p.limit as f64;
        out.push_str(&format!("  {:width$}  {:>5} of {} characters ({share:.0}%)\n", p.name, p.characters, p.limit));
    }
    out.push_str(&format!("  {} of {} managed policies attached\n", policies.len(), attached.max));
    out
}

/// What `ci-role` says when nobody can answer its question: the plan above was the review.
fn review_hint(question: &str) -> Error {
    Error::Usage(format!(
        "{question} Nobody can answer (stdin is not a terminal), so nothing was changed: the plan above \
         is the review. Apply it with --yes; --plan reviews without asking."
    ))
}

/// `ci-role`: plan, confirm, apply the OIDC provider and the deploy role (or delete the role).
/// The trust is the job that deploys this stack: `--branch`, `--environment`, else the stack's
/// `ci.environment`.
async fn ci_role(cli: &Cli, args: &crate::cli::CiRoleArgs) -> Result<u8, Error> {
    use crate::resources::ci_role::{self, Trust};
    let crate::cli::CiRoleArgs { github_repo: repo, environment, branch, delete, plan: review, yes } = args;
    let (environment, branch, delete, yes) = (environment.as_deref(), branch.as_deref(), *delete, *yes);
    if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
        return Err(Error::Usage(format!("--github-repo {repo:?}: write OWNER/NAME, e.g. octo-org/konnichiwa")));
    }
    let mut ctx = context(cli, Mode::Plan, Duration::from_secs(600)).await?;
    let trust = &match (environment, branch) {
        (_, Some(b)) => Trust::Branch(b.to_owned()),
        (Some(e), None) => Trust::Environment(e.to_owned()),
        (None, None) => Trust::Environment(ctx.stack.ci.environment.clone()),
    };
    if !delete {
        take_over::adopted_names_are_the_stacks(cli, &ctx).await?;
    }
    let permissions = crate::engine::walk::permission_sources();
    let mut plan = crate::reconcile::Plan::default();
    let mut outputs = if delete {
        ci_role::teardown(&ctx, &mut plan).await?;
        ci_role::CiRoleOutputs::default()
    } else {
        ci_role::reconcile(&ctx, &mut plan, &permissions, repo, trust).await?
    };
    if !cli.json {
        print!("{}", crate::reconcile::render::plan(&plan, crate::reconcile::render::colour_wanted()));
        if !delete {
            print!("{}", policy_fill(&outputs.policies));
            if outputs.group_subnets.is_empty() {
                println!(
                    "  The Auto Scaling group is not held to the stack's subnets yet (the first `up` makes them): run \
                     ci-role again after it."
                );
            }
        }
    }
    if plan.has_changes() && !review {
        let question = if delete { "Delete the deploy role?" } else { "Apply these changes?" };
        if !confirm(question, yes).map_err(|_| review_hint(question))? {
            return Ok(exit::ERROR);
        }
        ctx.mode = Mode::Apply;
        let mut applied = crate::reconcile::Plan::default();
        if delete {
            ci_role::teardown(&ctx, &mut applied).await?;
        } else {
            outputs = ci_role::reconcile(&ctx, &mut applied, &permissions, repo, trust).await?;
        }
    }
    if cli.json {
        let spent = answer::Spent::calls(ctx.clients.calls.counts());
        answer::print("ci-role", None, CiRoleAnswer { plan: answer::PlanView::all(&plan), outputs: &outputs, spent });
    } else if *review {
        println!("\nNothing was changed (--plan): apply with --yes, or without --plan to be asked.");
    } else if !delete {
        println!(
            "\nThe role trusts the token subject {} (audience {}).\nStore this as the variable \
             AWS_DEPLOY_ROLE_ARN of that GitHub environment:\n{}",
            outputs.subject,
            ci_role::AUDIENCE,
            outputs.role_arn.clone().unwrap_or_default()
        );
        print!("{}", github_settings(trust));
    }
    Ok(exit::OK)
}
