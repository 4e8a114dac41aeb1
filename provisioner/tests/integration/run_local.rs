//! `provisioner run-local` under podman: the image the service runs (pushed to the local
//! registry, deployed to moto), run as its task definition says, with the API key from the
//! emulated Secrets Manager or from an env file; and what it refuses (no engine, a port in use,
//! an image that does not exist), leaving nothing running.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, Account, text};

/// podman's settings on this machine (shared/testing-aws.md): runc, cgroupfs, vfs storage in a
/// directory of the test's own, given as the environment podman reads them from.
fn podman_env(root: &Path) -> Vec<(String, String)> {
    let conf = common::podman_containers_conf(root);
    let storage = root.join("storage.conf");
    std::fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            root.join("root").display(),
            root.join("run").display()
        ),
    )
    .expect("storage.conf");
    vec![
        ("CONTAINERS_CONF".into(), conf.to_string_lossy().into_owned()),
        ("CONTAINERS_STORAGE_CONF".into(), storage.to_string_lossy().into_owned()),
    ]
}

/// A podman root of the test's own: whatever the test leaves in it (a failed assertion midway)
/// is removed with it.
struct PodmanRoot {
    root: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl PodmanRoot {
    fn new(root: std::path::PathBuf) -> Self {
        let env = podman_env(&root);
        Self { root, env }
    }
}

impl Drop for PodmanRoot {
    fn drop(&mut self) {
        podman(&self.env, &["rm", "--all", "--force"]);
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("chmod -R u+w {0} 2>/dev/null; rm -rf {0}", self.root.display()))
            .status();
    }
}

fn podman(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    Command::new("podman").args(args).envs(env.iter().map(|(k, v)| (k, v))).output().expect("podman")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// (status, body) of GET `url` with an optional bearer key.
fn get(url: &str, key: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-w", "\n%{http_code}"]);
    if let Some(k) = key {
        c.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    let out = c.arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn run_local_runs_what_the_service_runs_with_the_emulators_key_or_an_env_files() {
    let registry = std::env::var("KONNICHIWA_TEST_REGISTRY").expect("scripts/test starts a registry");
    let account = Account::new();
    let repo = format!("{registry}/run-local-{}", account.id);
    let pushed = Command::new(common::BIN)
        .args(["image", "push", "--repository", &repo, "--tag", "test", "--json"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("image push");
    assert!(pushed.status.success(), "{}", text(&pushed));
    let reference = serde_json::from_slice::<Value>(&pushed.stdout).expect("json")["push"]["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    account.edit_stack(|t| {
        let line = t.lines().find(|l| l.trim_start().starts_with("image:")).unwrap_or_default().to_owned();
        t.replace(&line, &format!("  image: {reference}"))
    });
    let key = "run-local-key-0123456789";
    account.json_with(&["up", "--yes"], &[("API_KEY", key)], 0);

    let podman_root = PodmanRoot::new(std::env::temp_dir().join(format!("konnichiwa-run-local-{}", account.id)));
    let (root, env) = (&podman_root.root, &podman_root.env);
    let with: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let started = run_detached(&account, &with, &[]);
    let url = started["url"].as_str().expect("url").to_owned();
    let container = started["container"].as_str().expect("container").to_owned();
    assert_eq!(get(&format!("{url}/health"), None), (200, "ok".to_owned()));
    assert_eq!(get(&format!("{url}/inspect"), Some(key)).0, 200, "the key from the emulated Secrets Manager");
    // The task definition's health check ran (podman's own schedule needs systemd).
    let health = started["health_check"].as_str().expect("health_check");
    assert!(health.starts_with("passed (run once by the provisioner"), "{started}");
    let inspected = podman(env, &["inspect", &container]);
    let inspected: Value = serde_json::from_slice(&inspected.stdout).expect("podman inspect");
    let host = &inspected[0]["HostConfig"];
    assert_eq!(host["ReadonlyRootfs"], true, "{host}");
    assert_eq!(host["Memory"], 268_435_456, "the task definition's 256 MiB");
    assert_eq!(inspected[0]["ImageName"], reference.as_str());
    // Passed by name, its value in the engine's environment: not on any command line.
    let command = inspected[0]["Config"]["CreateCommand"].to_string();
    assert!(command.contains("--env API_KEY") || command.contains("\"API_KEY\""), "{command}");
    assert!(!command.contains(key), "the key is not in the recorded command: {command}");
    podman(env, &["rm", "--force", &container]);

    let env_file = root.join("local.env");
    std::fs::write(&env_file, "API_KEY=env-file-key-0123456789\n").expect("env file");
    let started = run_detached(&account, &with, &["--env-file", &env_file.to_string_lossy()]);
    let url = started["url"].as_str().expect("url").to_owned();
    assert_eq!(get(&format!("{url}/inspect"), Some("env-file-key-0123456789")).0, 200);
    assert_eq!(get(&format!("{url}/inspect"), Some(key)).0, 401, "the file's key, not the secret's");
    podman(env, &["rm", "--force", started["container"].as_str().expect("container")]);

    interrupted(&account, &with);
    refusals(&account, &with, &registry);
    built_here(&with, &env_file);
    let left = podman(env, &["ps", "--all", "--format", "{{.Names}}"]);
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "nothing left running: {}", text(&left));
    let _ =
        Command::new("sh").arg("-c").arg(format!("chmod -R u+w {0} 2>/dev/null; rm -rf {0}", root.display())).status();
}

/// `run-local --detach --json` on a free port; its answer.
fn run_detached(account: &Account, env: &[(&str, &str)], extra: &[&str]) -> Value {
    let port = free_port().to_string();
    let mut args = vec!["run-local", "--port", &port, "--detach", "--json"];
    args.extend(extra);
    let out = account.run_with(&args, env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// `image: build` and nothing deployed: the image built from the sources here runs with the
/// settings the task definition will have; the key must then come from an env file.
fn built_here(env: &[(&str, &str)], env_file: &Path) {
    let account = Account::new();
    account.edit_stack(|t| {
        let line = t.lines().find(|l| l.trim_start().starts_with("image:")).unwrap_or_default().to_owned();
        t.replace(&line, "  image: build")
    });
    let port = free_port().to_string();
    let out = account.run_with(&["run-local", "--port", &port, "--detach"], env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("pass --env-file with an API_KEY=… line"), "{}", text(&out));
    let started = run_detached(&account, env, &["--env-file", &env_file.to_string_lossy()]);
    let url = started["url"].as_str().expect("url").to_owned();
    assert_eq!(get(&format!("{url}/health"), None), (200, "ok".to_owned()));
    assert_eq!(get(&format!("{url}/inspect"), Some("env-file-key-0123456789")).0, 200);
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    podman(&env, &["rm", "--force", started["container"].as_str().expect("container")]);
}

/// In the foreground, Ctrl-C (SIGINT) stops the container and removes it: exit 130.
fn interrupted(account: &Account, env: &[(&str, &str)]) {
    let port = free_port().to_string();
    let child = account
        .command(&common::moto_url(), &["run-local", "--port", &port], env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run-local");
    let url = format!("http://127.0.0.1:{port}/health");
    let up = (0..300).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        get(&url, None).0 == 200
    });
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("wait");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(up, "it answered before the interrupt: {said}");
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(said.contains("Stopped and removed"), "{said}");
    assert_ne!(get(&url, None).0, 200, "nothing answers any more");
}

/// No engine, a port in use, an image that does not exist: each a clear error, exit 1.
fn refusals(account: &Account, env: &[(&str, &str)], registry: &str) {
    let empty = std::env::temp_dir().join(format!("konnichiwa-no-engine-{}", account.id));
    std::fs::create_dir_all(&empty).expect("dir");
    let mut no_engine = env.to_vec();
    let path = empty.to_string_lossy().into_owned();
    no_engine.push(("PATH", &path));
    let out = account.run_with(&["run-local"], &no_engine);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("neither podman nor docker is on PATH") && text(&out).contains("apt-get install podman")
    );
    let _ = std::fs::remove_dir(&empty);

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = account.run_with(&["run-local", "--port", &port], env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("port {port} on 127.0.0.1 is not free")), "{}", text(&out));
    drop(taken);

    let missing = format!("{registry}/no-such-image@sha256:{}", "0".repeat(64));
    let port = free_port().to_string();
    let out = account.run_with(&["run-local", "--port", &port, "--image", &missing, "--detach"], env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("cannot pull {missing} with podman")), "{}", text(&out));
    assert!(text(&out).contains("Nothing was started"), "{}", text(&out));
}
