//! `run-local [--port N] [--env-file F] [--image REF] [--detach]`: the image the service runs, on
//! this machine under podman or docker (whichever is on PATH), as its task definition has ECS run
//! it — read-only root filesystem (writable tmpfs where ECS Exec's agent writes), its environment,
//! its memory and CPU, its health check, its stop timeout — with the API key read from Secrets
//! Manager with the caller's credentials (or taken from an env file), published on 127.0.0.1.
//! The dev/prod parity check before a deploy: Ctrl-C stops and removes the container. What can
//! be refused (no engine, the port taken) is refused before any AWS call; a pull that fails
//! leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::context;
use crate::cli::{Cli, RunLocalArgs};
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::reconcile::Mode;
use crate::resources::service::{self, task::TaskSpec};

/// The container engines tried, in order.
const ENGINES: &[&str] = &["podman", "docker"];

/// The first container engine on `path` (a PATH value).
pub fn find_engine(path: &str) -> Option<(&'static str, PathBuf)> {
    ENGINES.iter().find_map(|name| {
        std::env::split_paths(path).map(|dir| dir.join(name)).find(|p| p.is_file()).map(|p| (*name, p))
    })
}

/// Refuses a port something already listens on (before anything is started).
fn check_port(port: u16) -> Result<(), Error> {
    std::net::TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .map_err(|e| Error::Usage(format!("port {port} on 127.0.0.1 is not free ({e}): pass --port with a free one")))
}

pub async fn run(cli: &Cli, args: &RunLocalArgs) -> Result<u8, Error> {
    let (name, engine) = find_engine(&std::env::var("PATH").unwrap_or_default()).ok_or_else(|| {
        Error::Usage(
            "neither podman nor docker is on PATH: run-local runs the image in one of them. Install podman \
             (Debian/Ubuntu: sudo apt-get install podman) or Docker, then run this again. Nothing was started"
                .into(),
        )
    })?;
    check_port(args.port)?;
    let ctx = context(cli, Mode::Plan, Duration::from_secs(600)).await?;
    // With `image: build` and nothing deployed yet: the image built from the sources here, with
    // the settings the stack's task definition will have (its layout kept until pulled).
    let mut layout = None;
    let mut spec = match running_spec(&ctx).await? {
        Some(spec) => spec,
        None if ctx.stack.service.image == "build" && args.image.is_none() => {
            let (spec, dir) = build_here(&ctx, &crate::image::build::workspace_of(&cli.stack)).await?;
            layout = Some(dir);
            spec
        }
        None => {
            return Err(Error::Refused(format!(
                "stack {} has no task definition yet: run `provisioner up` first (run-local runs what the service \
                 runs; with `service.image: build` it builds one here)",
                ctx.stack.name
            )));
        }
    };
    if let Some(image) = &args.image {
        spec.image.clone_from(image);
    }
    let api_key = match &args.env_file {
        Some(file) => key_from_env_file(file)?,
        None => key_from_secrets_manager(&ctx, &spec).await?,
    };
    let engine = Engine { name, path: engine };
    spec.image = engine.pull(&ctx, &spec.image).await?;
    drop(layout);
    let container = format!("{}-local-{}", ctx.stack.name, std::process::id());
    let url = format!("http://127.0.0.1:{}", args.port);
    eprintln!(
        "Running {} under {name} as ECS runs it (read-only root, {} MiB, {} vCPU, API_KEY from {}) on {url}{}",
        spec.image,
        spec.memory,
        f64::from(spec.cpu) / 1024.0,
        args.env_file.as_ref().map_or_else(|| "Secrets Manager".to_owned(), |f| f.display().to_string()),
        if args.detach { "" } else { " — Ctrl-C stops and removes it" }
    );
    let checks = engine.health_checks();
    let run_args = run_arguments(&spec, &container, args.port, args.detach, checks);
    if args.detach {
        return engine.detached(&run_args, &api_key, &container, &url, cli.json, checks).await;
    }
    engine.foreground(&run_args, &api_key, &container, spec.stop_timeout, checks).await
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The app's image built from `workspace`'s sources (a release build, on a thread of its own), as
/// an OCI layout in a temporary directory, and the task definition the stack would give it.
async fn build_here(ctx: &crate::reconcile::Ctx, workspace: &Path) -> Result<(TaskSpec, TempDir), Error> {
    use crate::reconcile::Id;
    eprintln!("Building the app image (service.image: build, nothing deployed yet)…");
    let image = crate::image::build::build_app_in(workspace).await?;
    let dir = TempDir(std::env::temp_dir().join(format!("konnichiwa-run-local-image-{}", std::process::id())));
    crate::image::build::write_layout(&image, &dir.0, &image.tag)?;
    let reference = crate::image::reference::ImageRef::parse(&format!("oci:{}:{}", dir.0.display(), image.tag));
    let not_made = Id::Pending("made by `provisioner up`".into());
    let inputs = service::task::TaskInputs {
        image: &reference,
        secret_arn: &not_made,
        log_group: &crate::resources::logs::name(&ctx.stack),
        execution_role: &not_made,
        task_role: &not_made,
    };
    Ok((service::task::desired_task(&ctx.stack, &inputs), dir))
}

/// The task definition the service runs (else the family's newest revision); None before the
/// first `up`.
async fn running_spec(ctx: &crate::reconcile::Ctx) -> Result<Option<TaskSpec>, Error> {
    let cluster = crate::resources::cluster::name(&ctx.stack);
    let task = match service::observe_service(ctx, &cluster, &service::name(&ctx.stack)).await? {
        Some(running) => service::task::describe(ctx, &running.task_definition).await?,
        None => service::task::observe_latest(ctx, &service::family(&ctx.stack)).await?,
    };
    Ok(task.map(|t| t.spec))
}

/// `API_KEY=…` from an env file (the app's .env format: `KEY=VALUE` lines, `#` comments).
fn key_from_env_file(file: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Usage(format!("--env-file {}: cannot read it: {e}", file.display())))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("API_KEY="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .find(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!("--env-file {}: has no API_KEY=… line (the key the app requires)", file.display()))
        })
}

/// The value of the secret the task definition names for API_KEY, with the caller's credentials.
async fn key_from_secrets_manager(ctx: &crate::reconcile::Ctx, spec: &TaskSpec) -> Result<String, Error> {
    // The task definition's ARN, else (nothing deployed yet) the stack's secret by name.
    let arn = spec.secrets.get("API_KEY").filter(|a| a.starts_with("arn:")).cloned();
    let id = arn.unwrap_or_else(|| ctx.stack.secret.name.clone());
    let read = ctx.clients.secrets.get_secret_value().secret_id(&id).send().await;
    let out = match read.ctx("read the API key from secret", &id) {
        Ok(out) => out,
        Err(e) => return Err(Error::Refused(format!("{e}: pass --env-file with an API_KEY=… line to run without it"))),
    };
    out.secret_string().map(str::to_owned).ok_or_else(|| {
        Error::Refused(format!("secret {id} holds no text value: `provisioner up` writes one (or pass --env-file)"))
    })
}

/// What `run` is given: the container as the task definition describes it. The key is passed by
/// name only (`--env API_KEY`), its value in the engine's environment, never on a command line.
fn run_arguments(spec: &TaskSpec, container: &str, port: u16, detach: bool, checks: HealthChecks) -> Vec<String> {
    let mut a: Vec<String> = ["run", "--rm", "--name", container, "--read-only"].map(str::to_owned).to_vec();
    if detach {
        a.push("--detach".into());
    }
    for dir in &spec.exec_dirs {
        a.extend(["--tmpfs".into(), dir.clone()]);
    }
    a.extend(["--memory".into(), format!("{}m", spec.memory)]);
    a.extend(["--cpus".into(), format!("{}", f64::from(spec.cpu) / 1024.0)]);
    a.extend(["--stop-timeout".into(), spec.stop_timeout.to_string()]);
    a.extend(["--publish".into(), format!("127.0.0.1:{port}:{}", spec.container_port)]);
    for (k, v) in &spec.environment {
        a.extend(["--env".into(), format!("{k}={v}")]);
    }
    a.extend(["--env".into(), "API_KEY".into()]);
    let health = spec.health_check.iter().skip_while(|w| *w == "CMD").cloned().collect::<Vec<_>>();
    if !health.is_empty() {
        a.extend(["--health-cmd".into(), serde_json::to_string(&health).unwrap_or_default()]);
        let t = service::task::HEALTH_CHECK;
        // `disable`: no timer of podman's (it needs systemd); the provisioner runs the check.
        let interval = match checks {
            HealthChecks::ByEngine => format!("--health-interval={}s", t.interval),
            HealthChecks::ByUs => "--health-interval=disable".to_owned(),
        };
        a.extend([
            interval,
            format!("--health-timeout={}s", t.timeout),
            format!("--health-retries={}", t.retries),
            format!("--health-start-period={}s", t.start_period),
        ]);
    }
    a.push(spec.image.clone());
    a
}

/// Who runs the container's health check on its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HealthChecks {
    /// The engine (docker).
    ByEngine,
    /// The provisioner, with `podman healthcheck run`: podman schedules checks with systemd
    /// timers, which rootless podman, a container or WSL often cannot make (it says so, and no
    /// check ever runs), whatever /run/systemd says.
    ByUs,
}

/// A container engine found on PATH.
struct Engine {
    name: &'static str,
    path: PathBuf,
}

impl Engine {
    fn health_checks(&self) -> HealthChecks {
        if self.name == "podman" { HealthChecks::ByUs } else { HealthChecks::ByEngine }
    }

    /// Runs the container's health check once (`podman healthcheck run`): None when it passed,
    /// else what it said.
    async fn check_health(&self, container: &str) -> Option<String> {
        let out = self.command().args(["healthcheck", "run", container]).stdin(Stdio::null()).output().await;
        match out {
            Ok(o) if o.status.success() => None,
            Ok(o) => {
                let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
                Some(said.trim().lines().last().unwrap_or("unhealthy").to_owned())
            }
            Err(e) => Some(format!("cannot run {} healthcheck: {e}", self.name)),
        }
    }

    /// The health check on the task definition's schedule, for as long as the container runs:
    /// a line when its state changes, and "unhealthy" after as many failures in a row as ECS
    /// allows (ECS would then replace the task).
    async fn keep_checking(&self, container: &str) {
        let t = service::task::HEALTH_CHECK;
        let seconds = |s: i32| Duration::from_secs(u64::try_from(s).unwrap_or(10));
        tokio::time::sleep(seconds(t.start_period)).await;
        let (mut failures, mut healthy) = (0_i32, None::<bool>);
        loop {
            match self.check_health(container).await {
                None => {
                    failures = 0;
                    if healthy != Some(true) {
                        eprintln!("health check (run by the provisioner, not podman's systemd timer): healthy");
                        healthy = Some(true);
                    }
                }
                Some(why) => {
                    failures += 1;
                    if failures >= t.retries && healthy != Some(false) {
                        eprintln!(
                            "health check: UNHEALTHY after {failures} failures ({why}): ECS would replace the task"
                        );
                        healthy = Some(false);
                    }
                }
            }
            tokio::time::sleep(seconds(t.interval)).await;
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.path);
        c.kill_on_drop(true);
        c
    }

    /// Pulls `image` (a loopback registry over plain HTTP, ECR with its token, an OCI layout
    /// `oci:DIR:TAG` under podman) and returns what to run; an image that cannot be had is
    /// refused with what the engine said.
    async fn pull(&self, ctx: &crate::reconcile::Ctx, image: &str) -> Result<String, Error> {
        if image.starts_with("oci:") && self.name != "podman" {
            return Err(Error::Refused(
                "an image built here runs under podman only (docker cannot read an OCI layout): push it with \
                 `provisioner image push --repository HOST/NAME` and pass --image HOST/NAME@sha256:…"
                    .into(),
            ));
        }
        let host = image.split('/').next().unwrap_or_default();
        let auth = if crate::image::is_ecr(host) { Some(EcrAuth::write(ctx, host).await?) } else { None };
        let mut c = self.command();
        c.args(pull_arguments(self.name, auth.as_ref().map(|a| a.dir.0.as_path()), image));
        let out = c
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Refused(format!("cannot run {}: {e}", self.path.display())))?;
        if out.status.success() {
            // A layout has no name to run it by: podman prints the image's id.
            let id = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_owned();
            return Ok(if image.starts_with("oci:") && !id.is_empty() { id } else { image.to_owned() });
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no reason given").trim();
        Err(Error::Refused(format!("cannot pull {image} with {}: {last}. Nothing was started", self.name)))
    }

    /// Runs in the foreground until the container ends or Ctrl-C, which stops it (then `--rm`
    /// removes it).
    async fn foreground(
        &self,
        args: &[String],
        key: &str,
        container: &str,
        stop_timeout: i32,
        checks: HealthChecks,
    ) -> Result<u8, Error> {
        let mut child = self
            .command()
            .args(args)
            .env("API_KEY", key)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Error::Refused(format!("cannot run {}: {e}", self.path.display())))?;
        let checking = async {
            if checks == HealthChecks::ByUs {
                self.keep_checking(container).await;
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = checking => unreachable!("the checks run until the container ends"),
            status = child.wait() => {
                let status = status.map_err(|e| Error::Refused(format!("{}: {e}", self.name)))?;
                Ok(if status.success() { exit::OK } else { exit::ERROR })
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nStopping {container}…");
                let _ = self.command().args(["stop", "--time", &stop_timeout.to_string(), container]).output().await;
                let _ = child.wait().await;
                let _ = self.command().args(["rm", "--force", container]).output().await;
                eprintln!("Stopped and removed {container}.");
                Ok(exit::INTERRUPTED)
            }
        }
    }

    /// Starts the container in the background and returns once it answers /health (removing it
    /// when it never does).
    async fn detached(
        &self,
        args: &[String],
        key: &str,
        container: &str,
        url: &str,
        json: bool,
        checks: HealthChecks,
    ) -> Result<u8, Error> {
        let out = self
            .command()
            .args(args)
            .env("API_KEY", key)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Refused(format!("cannot run {}: {e}", self.path.display())))?;
        if !out.status.success() {
            let _ = self.command().args(["rm", "--force", container]).output().await;
            return Err(Error::Refused(format!(
                "{} run failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        if !answers_health(url).await {
            let _ = self.command().args(["rm", "--force", container]).output().await;
            return Err(Error::Refused(format!("{container} did not answer {url}/health within 30s; it was removed")));
        }
        // The task definition's own check, run once here where podman cannot schedule it.
        let health_check = match checks {
            HealthChecks::ByEngine => "run by the engine",
            HealthChecks::ByUs => match self.check_health(container).await {
                None => {
                    "passed (run once by the provisioner: podman's own schedule needs systemd; `podman healthcheck run` runs it again)"
                }
                Some(why) => {
                    let _ = self.command().args(["rm", "--force", container]).output().await;
                    return Err(Error::Refused(format!(
                        "{container} answers {url}/health, but its task definition's health check fails ({why}): ECS \
                         would replace the task; it was removed"
                    )));
                }
            },
        };
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "command": "run-local", "container": container, "url": url, "engine": self.name,
                    "health_check": health_check,
                })
            );
        } else {
            println!("{url}");
            eprintln!(
                "{container} answers on {url} (health check: {health_check}); stop it with: {} rm --force {container}",
                self.name
            );
        }
        Ok(exit::OK)
    }
}

/// `pull IMAGE` for `engine`, with the credentials in `auth_dir` (docker reads the directory, a
/// global flag before the command; podman pull the file in it, its own flag) and, for a registry
/// on this machine, podman's plain HTTP.
fn pull_arguments(engine: &str, auth_dir: Option<&Path>, image: &str) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = Vec::new();
    let podman = engine == "podman";
    if let (Some(dir), false) = (auth_dir, podman) {
        a.extend(["--config".into(), dir.into()]);
    }
    a.push("pull".into());
    if let (Some(dir), true) = (auth_dir, podman) {
        a.extend(["--authfile".into(), dir.join(EcrAuth::FILE).into()]);
    }
    let host = image.split('/').next().unwrap_or_default();
    if podman && crate::aws::is_loopback_url(&format!("http://{host}")) {
        a.push("--tls-verify=false".into());
    }
    a.push(image.into());
    a
}

/// Whether GET /health answers 200 within 30 s.
async fn answers_health(url: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        let answer = client.get(format!("{url}/health")).timeout(Duration::from_secs(2)).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// ECR's credentials for one pull, in a private temporary directory (removed when dropped): as
/// podman's --authfile and docker's --config read them, never on a command line.
struct EcrAuth {
    dir: TempDir,
}

impl EcrAuth {
    async fn write(ctx: &crate::reconcile::Ctx, host: &str) -> Result<Self, Error> {
        use base64::Engine as _;
        let credentials = crate::image::ecr_credentials(&ctx.clients).await?;
        let dir = std::env::temp_dir().join(format!("konnichiwa-run-local-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Refused(format!("cannot make {}: {e}", dir.display())))?;
        let auth = Self { dir: TempDir(dir) };
        let body = serde_json::json!({ "auths": { host: {
            "auth": base64::engine::general_purpose::STANDARD.encode(credentials) } } });
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(auth.file())
            .map_err(|e| Error::Refused(format!("cannot write {}: {e}", auth.file().display())))?;
        std::io::Write::write_all(&mut f, body.to_string().as_bytes())
            .map_err(|e| Error::Refused(format!("cannot write {}: {e}", auth.file().display())))?;
        Ok(auth)
    }

    /// The file in `dir` both engines read.
    const FILE: &str = "config.json";

    fn file(&self) -> PathBuf {
        self.dir.0.join(Self::FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_is_run_as_the_task_definition_says_and_the_key_never_on_the_command_line() {
        let stack = crate::resources::test_stack();
        let image = crate::image::reference::ImageRef::parse("127.0.0.1:5000/konnichiwa@sha256:ab");
        let id = crate::reconcile::Id::Known("arn:secret".into());
        let inputs = service::task::TaskInputs {
            image: &image,
            secret_arn: &id,
            log_group: "/ecs/konnichiwa",
            execution_role: &id,
            task_role: &id,
        };
        let spec = service::task::desired_task(&stack, &inputs);
        let a = run_arguments(&spec, "konnichiwa-local-1", 4000, false, HealthChecks::ByEngine).join(" ");
        for wanted in [
            "run --rm --name konnichiwa-local-1 --read-only",
            "--memory 256m",
            "--cpus 0.25",
            "--stop-timeout 30",
            "--publish 127.0.0.1:4000:8080",
            "--env PORT=8080",
            "--env LOG_FORMAT=json",
            "--env API_KEY --health-cmd [\"/app\",\"healthcheck\"]",
        ] {
            assert!(a.contains(wanted), "{wanted}: {a}");
        }
        assert!(a.ends_with(" 127.0.0.1:5000/konnichiwa@sha256:ab"), "{a}");
        assert!(!a.contains("API_KEY="), "{a}");
        assert!(a.contains("--health-interval=10s"), "{a}");
        // Podman without systemd: no timer of its own (it would say it cannot make one and never
        // check); the provisioner runs the check.
        let ours = run_arguments(&spec, "konnichiwa-local-1", 4000, false, HealthChecks::ByUs).join(" ");
        assert!(ours.contains("--health-cmd") && ours.contains("--health-interval=disable"), "{ours}");
    }

    #[test]
    fn ecr_credentials_go_where_each_engine_reads_them_and_a_local_registry_is_plain_http() {
        let join = |a: Vec<std::ffi::OsString>| {
            a.iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
        };
        let ecr = "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa@sha256:ab";
        let dir = Path::new("/tmp/auth");
        assert_eq!(
            join(pull_arguments("podman", Some(dir), ecr)),
            format!("pull --authfile /tmp/auth/config.json {ecr}")
        );
        assert_eq!(join(pull_arguments("docker", Some(dir), ecr)), format!("--config /tmp/auth pull {ecr}"));
        let local = "127.0.0.1:5000/konnichiwa@sha256:ab";
        assert_eq!(join(pull_arguments("podman", None, local)), format!("pull --tls-verify=false {local}"));
        assert_eq!(join(pull_arguments("docker", None, local)), format!("pull {local}"));
    }

    #[test]
    fn an_env_file_gives_the_key_or_says_it_lacks_one() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-run-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(".env");
        std::fs::write(&file, "# local\nLOG_LEVEL=debug\nAPI_KEY=local-key-0123456789\n").expect("write");
        assert_eq!(key_from_env_file(&file).expect("key"), "local-key-0123456789");
        std::fs::write(&file, "LOG_LEVEL=debug\n").expect("write");
        let err = key_from_env_file(&file).expect_err("no key").to_string();
        assert!(err.contains("has no API_KEY=… line"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(find_engine("/nonexistent").is_none());
    }
}
