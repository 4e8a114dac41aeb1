//! The app image built without Docker and pushed over the distribution API, checked with
//! independent tools: a real docker-registry and skopeo (started/installed by scripts/test), and
//! podman running the pushed image. Registry failures against a fake registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_provisioner");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace")
}

fn registry() -> String {
    let r = std::env::var("KONNICHIWA_TEST_REGISTRY").unwrap_or_else(|_| {
        panic!(
            "KONNICHIWA_TEST_REGISTRY is not set: these tests need a local OCI registry. Run the suite with scripts/test \
             (it installs docker-registry, skopeo and podman and starts the registry), or start one on 127.0.0.1 and \
             export KONNICHIWA_TEST_REGISTRY=127.0.0.1:PORT"
        )
    });
    assert!(provisioner::aws::is_loopback_url(&format!("http://{r}")), "the test registry must be on loopback: {r}");
    r
}

fn provisioner(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(workspace())
        .env_remove("KONNICHIWA_IMAGE_REPOSITORY")
        .output()
        .expect("run provisioner")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run scripts/test (it installs skopeo, podman and docker-registry), or apt-get install {name}"
    );
    name.to_owned()
}

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("konnichiwa-image-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn push(repo: &str) -> Value {
    let out = provisioner(&["image", "push", "--repository", repo, "--tag", "test", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).expect("json")["push"].clone()
}

#[test]
fn the_same_source_builds_the_same_image() {
    let (a, b) = (temp("layout-a"), temp("layout-b"));
    let build = |dir: &Path| -> Value {
        let out = provisioner(&["image", "build", "--output", &dir.to_string_lossy(), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let (first, second) = (build(&a), build(&b));
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(first["layer_digest"], second["layer_digest"]);
    assert_eq!(first["architecture"], "amd64");
    // skopeo reads the OCI layout and sees the same manifest.
    let raw = Command::new(tool("skopeo"))
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}", a.display()))
        .output()
        .expect("skopeo");
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(provisioner::image::digest(&raw.stdout), first["digest"].as_str().expect("digest"));

    // CI's build job hands the static binary to the deploy job, which assembles the same image
    // from it without a compiler (KONNICHIWA_PREBUILT_DIR).
    let prebuilt = temp("prebuilt");
    std::fs::create_dir_all(&prebuilt).expect("dir");
    let binary = provisioner::image::build::compile(&workspace(), provisioner::image::Program::App).expect("built");
    std::fs::copy(&binary, prebuilt.join("app")).expect("copy");
    let c = temp("layout-c");
    let handed = Command::new(BIN)
        .args(["image", "build", "--output", &c.to_string_lossy(), "--json"])
        .current_dir(workspace())
        .env(provisioner::image::build::PREBUILT_DIR, &prebuilt)
        .env("CARGO", "/nonexistent/cargo")
        .output()
        .expect("run provisioner");
    assert!(handed.status.success(), "{}", String::from_utf8_lossy(&handed.stderr));
    let handed: Value = serde_json::from_slice(&handed.stdout).expect("json");
    assert_eq!(handed["digest"], first["digest"], "the same image, without cargo");
    let _ = std::fs::remove_file(prebuilt.join("app"));
    let missing = Command::new(BIN)
        .args(["image", "build", "--output", &c.to_string_lossy()])
        .current_dir(workspace())
        .env(provisioner::image::build::PREBUILT_DIR, &prebuilt)
        .output()
        .expect("run provisioner");
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("holds no"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    for d in [a, b, c, prebuilt] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn push_is_verified_by_skopeo_pulled_back_byte_for_byte_and_a_second_push_uploads_nothing() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let repo = format!("{}/push-test-{}-{nanos}", registry(), std::process::id());
    let first = push(&repo);
    let digest = first["digest"].as_str().expect("digest").to_owned();
    assert_eq!(first["reference"], format!("{repo}@{digest}"));
    assert_eq!(first["blobs_uploaded"], 2);

    let skopeo = tool("skopeo");
    let inspect = Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{repo}:test"))
        .output()
        .expect("skopeo");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let info: Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!((info["Architecture"].as_str(), info["Os"].as_str()), (Some("amd64"), Some("linux")));
    assert!(info["Labels"]["org.opencontainers.image.revision"].as_str().is_some_and(|r| !r.is_empty()));
    let config = Command::new(&skopeo)
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}@{digest}"))
        .output()
        .expect("skopeo");
    let config: Value = serde_json::from_slice(&config.stdout).expect("config json");
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/app"]));
    assert!(config["config"]["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(config["config"]["Healthcheck"]["Test"], serde_json::json!(["CMD", "/app", "healthcheck"]));
    assert!(!config.to_string().contains("API_KEY"), "no secret in the image");

    // Pull it back with skopeo and compare the binary with the one cargo built.
    let pulled = temp("pulled");
    let copy = Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{repo}@{digest}"))
        .arg(format!("dir:{}", pulled.display()))
        .output()
        .expect("skopeo copy");
    assert!(copy.status.success(), "{}", String::from_utf8_lossy(&copy.stderr));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(pulled.join("manifest.json")).expect("manifest")).expect("json");
    let layer_file =
        pulled.join(manifest["layers"][0]["digest"].as_str().expect("layer digest").trim_start_matches("sha256:"));
    let gz = std::fs::read(layer_file).expect("layer");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
    let mut app = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut e = entry.expect("entry");
        if e.path().expect("path").to_string_lossy() == "app" {
            std::io::Read::read_to_end(&mut e, &mut app).expect("read app");
        }
    }
    let target_dir = crate::common::target_dir();
    let built = std::fs::read(target_dir.join(format!("{}-unknown-linux-gnu/release/app", std::env::consts::ARCH)))
        .expect("cargo's binary");
    assert!(!app.is_empty() && app == built, "the pulled binary differs from the built one");
    let _ = std::fs::remove_dir_all(pulled);

    let second = push(&repo);
    assert_eq!(second["blobs_uploaded"], 0);
    assert_eq!(second["bytes_uploaded"], 0);
    assert_eq!(second["digest"], digest.as_str());
}

/// podman with its storage in `root` (made here) and the settings that work on this machine (see
/// shared/testing-aws.md): runc, cgroupfs, vfs.
fn podman_in(root: &Path) -> Command {
    let conf = crate::common::podman_containers_conf(root);
    let mut c = Command::new(tool("podman"));
    c.args(["--storage-driver", "vfs", "--root"])
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("run"))
        .env("CONTAINERS_CONF", conf);
    c
}

/// Removes a podman root (vfs leaves read-only directories in it).
fn remove_podman_root(root: &Path) {
    let _ =
        Command::new("sh").arg("-c").arg(format!("chmod -R u+w {0} 2>/dev/null; rm -rf {0}", root.display())).status();
}

#[test]
fn podman_runs_the_pushed_image() {
    let repo = format!("{}/konnichiwa-run-test", registry());
    let reference = push(&repo)["reference"].as_str().expect("reference").to_owned();
    let root = temp("podman");
    let podman = |args: &[&str]| -> Output { podman_in(&root).args(args).output().expect("podman") };
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let key = "podman-test-key-0123456789";
    let name = format!("konnichiwa-test-{}", std::process::id());
    let run = podman(&[
        "run",
        "-d",
        "--rm",
        "--name",
        &name,
        "--memory",
        "256m",
        "--tls-verify=false",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
        "-e",
        &format!("API_KEY={key}"),
        &reference,
    ]);
    assert!(run.status.success(), "podman run: {}", String::from_utf8_lossy(&run.stderr));
    let get = |path: &str, auth: Option<&str>| -> (u16, String) {
        for _ in 0..100 {
            let mut c = Command::new("curl");
            c.args(["-s", "-w", "\n%{http_code}"]);
            if let Some(k) = auth {
                c.args(["-H", &format!("Authorization: Bearer {k}")]);
            }
            if let Ok(o) = c.arg(format!("http://127.0.0.1:{port}{path}")).output() {
                let text = stdout(&o);
                if let Some((body, code)) = text.rsplit_once('\n').filter(|(_, code)| *code != "000") {
                    return (code.parse().unwrap_or(0), body.to_owned());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        (0, String::new())
    };
    let health = get("/health", None);
    let unauthorized = get("/inspect", None);
    let inspect = get("/inspect", Some(key));
    let _ = podman(&["rm", "-f", &name]);
    remove_podman_root(&root);
    assert_eq!(health, (200, "ok".to_owned()));
    assert_eq!(unauthorized.0, 401);
    assert_eq!(inspect.0, 200, "{}", inspect.1);
    let report: Value = serde_json::from_str(&inspect.1).expect("inspect json");
    assert_eq!(report["container"]["memory_max_bytes"], 268435456, "the container's own limit is reported: {report}");
}

/// A registry that answers 401 to everything, or 500 to blob uploads; records what it saw.
async fn fake_registry(
    mode: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let seen = Arc::clone(&seen);
        async move {
            let length = headers.get("content-length").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
            seen.lock().expect("lock").push(format!("{method} {} content-length={length}", uri.path()));
            match (mode, method.as_str()) {
                ("401", _) => (StatusCode::UNAUTHORIZED, [("location", "")]),
                ("500", "HEAD") => (StatusCode::NOT_FOUND, [("location", "")]),
                ("500", "POST") => (StatusCode::ACCEPTED, [("location", "/v2/x/blobs/uploads/1?_state=abc")]),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, [("location", "")]),
            }
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    (addr.to_string(), stop)
}

#[tokio::test]
async fn registry_failures_are_clear_and_tag_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").to_string();
    let out =
        tokio::task::spawn_blocking(move || provisioner(&["image", "push", "--repository", &format!("{closed}/x")]))
            .await
            .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for (mode, expected) in [("401", "refused an anonymous push"), ("500", "nothing was tagged")] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (host, stop) = fake_registry(mode, Arc::clone(&seen)).await;
        let out =
            tokio::task::spawn_blocking(move || provisioner(&["image", "push", "--repository", &format!("{host}/x")]))
                .await
                .expect("join");
        let _ = stop.send(());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(err.contains(expected), "{mode}: {err}");
        let requests = seen.lock().expect("lock").clone();
        assert!(
            !requests.iter().any(|r| r.starts_with("PUT") && r.contains("/manifests/")),
            "{mode}: a manifest was put: {requests:?}"
        );
        if mode == "500" {
            // Registries behind proxies (ECR among them) refuse a POST without a length.
            let post = requests.iter().find(|r| r.starts_with("POST")).expect("an upload was started");
            assert!(post.ends_with("content-length=0"), "{post}");
        }
    }
}

use crate::common;

#[test]
fn up_builds_and_pushes_the_image_to_a_repository_override() {
    let account = common::Account::new();
    account.edit_stack(|t| {
        let line = t.lines().find(|l| l.trim_start().starts_with("image:")).unwrap_or_default().to_owned();
        t.replace(&line, "  image: build")
    });
    let repo = format!("{}/up-test-{}", registry(), account.id);
    let out = account.run_with(&["up", "--yes", "--json", "--image-repository", &repo], &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let reference = v["outputs"]["push"]["reference"].as_str().expect("image reference").to_owned();
    assert_eq!(v["outputs"]["service"]["image"], reference.as_str(), "the task definition runs the pushed digest");
    assert!(reference.starts_with(&format!("{repo}@sha256:")), "{reference}");
    let inspect = Command::new(tool("skopeo"))
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    plan_decides_without_building(&account, &repo, &reference);
}

/// After `up` built and pushed the image: `plan` (and an `up` with nothing to do) compare the
/// sources' digest with the one the task definition recorded and never run `cargo build`; other
/// sources (here: another prebuilt binary, which stands in for them) show the image to be built,
/// and `up` builds and pushes it.
fn plan_decides_without_building(account: &common::Account, repo: &str, running: &str) {
    let dir = temp(&format!("cargo-log-{}", account.id));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("calls");
    // A cargo that notes each subcommand it is asked for, then does it.
    let cargo = dir.join("cargo");
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    std::fs::write(&cargo, format!("#!/bin/sh\necho \"$1\" >> '{}'\nexec '{real}' \"$@\"\n", log.display()))
        .expect("write");
    Command::new("chmod").arg("+x").arg(&cargo).status().expect("chmod");
    let cargo_s = cargo.to_string_lossy().into_owned();
    let calls = || std::fs::read_to_string(&log).unwrap_or_default();
    let plan = account.run_with(&["plan", "--detailed-exitcode", "--image-repository", repo], &[("CARGO", &cargo_s)]);
    assert_eq!(plan.status.code(), Some(0), "the same sources: no change\n{}", common::text(&plan));
    let up = account.run_with(&["up", "--yes", "--json", "--image-repository", repo], &[("CARGO", &cargo_s)]);
    assert!(up.status.success(), "{}", common::text(&up));
    let v: Value = serde_json::from_slice(&up.stdout).expect("json");
    assert_eq!(v["applied"], false, "nothing to do: {v:#}");
    assert!(!calls().contains("build"), "no build to find that out: {}", calls());
    assert!(calls().contains("metadata"), "the sources were looked at: {}", calls());

    // Other sources: the plan says the image will be built, and shows their digest change.
    let prebuilt = dir.join("prebuilt");
    std::fs::create_dir_all(&prebuilt).expect("dir");
    let binary = provisioner::image::build::compile(&workspace(), provisioner::image::Program::App).expect("built");
    let mut bytes = std::fs::read(binary).expect("binary");
    bytes.extend_from_slice(b"\0another build");
    std::fs::write(prebuilt.join("app"), bytes).expect("write");
    let other = [("CARGO", cargo_s.as_str()), (provisioner::image::build::PREBUILT_DIR, &*prebuilt.to_string_lossy())];
    let plan = account.run_with(&["plan", "--detailed-exitcode", "--image-repository", repo], &other);
    let said = common::text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("image: {running} -> {repo}@(the image `up` builds from the sources)")), "{said}");
    assert!(said.contains("sources: sha256:"), "{said}");
    let up = account.run_with(&["up", "--yes", "--json", "--image-repository", repo], &other);
    assert!(up.status.success(), "{}", common::text(&up));
    let v: Value = serde_json::from_slice(&up.stdout).expect("json");
    let pushed = v["outputs"]["push"]["reference"].as_str().expect("built and pushed").to_owned();
    assert_ne!(pushed, running);
    assert_eq!(v["outputs"]["service"]["image"], pushed.as_str());
    let plan = account.run_with(&["plan", "--detailed-exitcode", "--image-repository", repo], &other);
    assert_eq!(plan.status.code(), Some(0), "{}", common::text(&plan));
    assert!(!calls().contains("build"), "never a cargo build: {}", calls());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `provisioner loadtest`'s worker image, built and pushed like the app's, run for real: it loads
/// a server on this machine and prints its result as the lines the provisioner collects (and
/// resolves a host name, as it must for a load balancer's: the binary is static, the image has
/// no libraries to look names up with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_runs_the_loadtest_image_and_it_prints_its_result_as_lines() {
    let repo = format!("{}/konnichiwa-loadtest-run-test", registry());
    let out =
        provisioner(&["image", "push", "--program", "loadtest", "--repository", &repo, "--tag", "test", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = serde_json::from_slice::<Value>(&out.stdout).expect("json")["push"]["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    let root = temp("podman-loadtest");
    let host = format!("http://localhost:{port}");
    let run = tokio::process::Command::from(podman_in(&root))
        .args(["run", "--rm", "--network", "host", "--read-only", "--memory", "256m", "--tls-verify=false"])
        .arg(&reference)
        .args(["--host", &host, "--endpoint", "/", "--rate", "50/s", "--duration", "2s", "--slo", "rps>=1"])
        .args(["--quiet", "--result-lines"])
        .output()
        .await
        .expect("podman");
    let _ = stop.send(());
    let _ = server.await;
    remove_podman_root(&root);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let doc = loadtest::report::lines::decode(stdout.lines()).expect("result lines").expect("a whole document");
    assert_eq!(doc.total.requests, 100, "every arrival of 50/s × 2 s: {stdout}");
    assert_eq!(doc.total.failures, 0);
    assert_eq!(doc.target, host);
    assert!(doc.generator.is_some_and(|g| g.cpu_seconds > 0.0), "the image's own figures");
}
