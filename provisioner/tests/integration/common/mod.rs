//! Helpers for tests against the moto AWS emulator that the test harness (scripts/test) starts:
//! each test gets its own moto account, runs the real `provisioner` binary, and reads AWS back
//! with its own SDK client. Nothing here ever talks to a non-loopback endpoint.
#![allow(dead_code)]

pub mod authorization;
pub mod aws_rates;
pub mod census;
pub mod faults;
pub mod policy;
pub mod simulator;
pub mod terraform;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use provisioner::aws::{Clients, is_loopback_url};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_provisioner");

/// The emulator's URL; refuses anything but loopback so a test can never touch real AWS.
pub fn moto_url() -> String {
    let url = std::env::var("KONNICHIWA_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "KONNICHIWA_TEST_MOTO_URL is not set: these tests need the moto AWS emulator. Run the suite with \
             scripts/test (it installs and starts moto), or start `moto_server -H 127.0.0.1 -p 5000` and \
             export KONNICHIWA_TEST_MOTO_URL=http://127.0.0.1:5000"
        )
    });
    assert!(is_loopback_url(&url), "refusing a non-loopback emulator URL {url}");
    url
}

/// The build directory this test binary was built into (`…/debug/deps/integration-…` → `…`),
/// wherever CARGO_TARGET_DIR put it.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("target dir above debug/deps").to_owned()
}

/// A moto account of the test's own, and a stack file to run against it.
pub struct Account {
    pub id: String,
    pub dir: PathBuf,
}

impl Account {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let id = format!("{:06}{:03}{:03}", std::process::id() % 1_000_000, n % 1000, nanos % 1000);
        let dir = std::env::temp_dir().join(format!("konnichiwa-prov-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
        // An image by digest: these tests are about infrastructure, not about building the app
        // (image.rs builds and pushes for real).
        let text = std::fs::read_to_string(example).expect("read stack.yaml");
        let text =
            text.replace("image: build ", &format!("image: 127.0.0.1:5000/konnichiwa@sha256:{} ", "0".repeat(64)));
        std::fs::write(dir.join("stack.yaml"), text).expect("write stack.yaml");
        Self { id, dir }
    }

    pub fn stack_file(&self) -> PathBuf {
        self.dir.join("stack.yaml")
    }

    /// Rewrites the stack file with `edit` applied to its text.
    pub fn edit_stack(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.stack_file()).expect("read stack");
        std::fs::write(self.stack_file(), edit(text)).expect("write stack");
    }

    /// Runs `provisioner --stack <ours> ARGS` against moto in this account; stdin is empty.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Like `run`, with extra environment variables (e.g. API_KEY).
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(&moto_url(), args, env).output().expect("run provisioner")
    }

    /// `provisioner --stack <ours> ARGS` against `endpoint` (moto, or a proxy in front of it),
    /// in this account, with an empty stdin and the extra environment `env`.
    pub fn command(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        self.command_for(&self.stack_file(), endpoint, args, env)
    }

    /// Like `command`, with another stack file of this account (an overlay, a second stack).
    pub fn command_for(&self, stack_file: &Path, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        assert!(is_loopback_url(endpoint), "refusing a non-loopback endpoint {endpoint}");
        let mut c = Command::new(BIN);
        // moto never completes a rollout (shared/testing-aws.md), so `up` does not follow it here;
        // following is tested against scripted responses in src/rollout.rs.
        let args: Vec<&str> = if args.first() == Some(&"up") {
            args.iter().copied().chain(["--no-wait"]).collect()
        } else {
            args.to_vec()
        };
        c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
        c.arg("--stack")
            .arg(stack_file)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KONNICHIWA_MOTO_ACCOUNT_ID", &self.id)
            // These stacks name an image by a digest no registry has (they are about the
            // infrastructure): `up` skips the pre-flight checks, whose own tests (verify.rs) turn
            // them back on with KONNICHIWA_SKIP_VERIFY=false.
            .env("KONNICHIWA_SKIP_VERIFY", "true")
            // Prices from the shipped snapshot, or what this account's own `cost --refresh-prices`
            // kept: never a copy the machine's user fetched.
            .env("KONNICHIWA_PRICE_CACHE", self.dir.join("prices"))
            // `verify`'s DNS questions go to a resolver of the test's own, or to nothing.
            .env("KONNICHIWA_DNS_RESOLVER", "127.0.0.1:9")
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .stdin(Stdio::null());
        // `up` and `run-local` with `image: build` run cargo: let them reuse the suite's build
        // directory and its release settings (scripts/test's), so that they build what the image
        // tests built instead of a second, optimized release build.
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_OPT_LEVEL",
            "CARGO_PROFILE_RELEASE_LTO",
            "CARGO_PROFILE_RELEASE_CODEGEN_UNITS",
        ] {
            if let Ok(value) = std::env::var(var) {
                c.env(var, value);
            }
        }
        c.envs(env.iter().copied());
        c
    }

    /// Runs through `endpoint` without blocking the test's runtime (a proxy may run on it).
    pub async fn run_at(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        tokio::process::Command::from(self.command(endpoint, args, env)).output().await.expect("run provisioner")
    }

    /// Like `run_at` with --json: parses stdout and asserts the exit code.
    pub async fn json_at(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)], expected_code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run_at(endpoint, &all, env).await;
        parse(args, &out, expected_code)
    }

    /// Writes `text` as the stack file `name` in this account's directory; returns its path.
    pub fn write_stack(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write stack file");
        path
    }

    /// `provisioner --stack FILE ARGS --json` against moto; parses stdout, asserts the exit code.
    pub fn json_for(&self, stack_file: &Path, args: &[&str], expected_code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.command_for(stack_file, &moto_url(), &all, &[]).output().expect("run provisioner");
        parse(args, &out, expected_code)
    }

    /// Runs with --json and parses stdout, asserting the exit code.
    pub fn json(&self, args: &[&str], expected_code: i32) -> Value {
        self.json_with(args, &[], expected_code)
    }

    pub fn json_with(&self, args: &[&str], env: &[(&str, &str)], expected_code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run_with(&all, env);
        parse(args, &out, expected_code)
    }

    /// SDK clients of the test itself, in this account.
    pub async fn clients(&self) -> Clients {
        self.clients_at(&moto_url(), ("test", "test", None)).await
    }

    /// SDK clients in this account, through `endpoint` (moto, or a proxy in front of it), with
    /// these credentials (key id, secret, session token).
    pub async fn clients_at(&self, endpoint: &str, (id, secret, token): (&str, &str, Option<&str>)) -> Clients {
        assert!(is_loopback_url(endpoint), "refusing a non-loopback endpoint {endpoint}");
        let credentials = aws_sdk_ec2::config::Credentials::new(id, secret, token.map(str::to_owned), None, "tests");
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        Clients::with_interceptor(&sdk, MotoAccount(self.id.clone()))
    }
}

/// Sends moto's per-request account header, so that a test's own clients see its account (the
/// binary is given it by `KONNICHIWA_MOTO_ACCOUNT_ID`).
#[derive(Debug)]
pub struct MotoAccount(pub String);

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Only to the emulator, whatever endpoint a client was given.
        if provisioner::aws::is_loopback_url(context.request().uri()) {
            context.request_mut().headers_mut().insert("x-moto-account-id", self.0.clone());
        }
        Ok(())
    }
}

impl Account {
    /// Credentials of a session of the role `name` of this account, as CI's job assumes the
    /// deploy role: the environment a run gets so that AWS (moto) sees that role as the caller.
    /// moto checks no trust while IAM enforcement is off.
    pub async fn session_of(&self, name: &str) -> Vec<(&'static str, String)> {
        let c = self.clients().await;
        let out = c
            .sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{}:role/{name}", self.id))
            .role_session_name("ci")
            .send()
            .await
            .unwrap_or_else(|e| panic!("assume {name}: {e:?}"));
        let creds = out.credentials().expect("credentials");
        vec![
            ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_owned()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key().to_owned()),
            ("AWS_SESSION_TOKEN", creds.session_token().to_owned()),
        ]
    }
}

/// Every statement a role holds — its attached managed policies' default versions and its inline
/// policies — as one policy document (what IAM evaluates for it), read with `c`.
pub async fn role_policy(c: &Clients, role: &str) -> Value {
    let decode = provisioner::resources::iam::decode_policy;
    let mut statements = Vec::new();
    let attached = c.iam.list_attached_role_policies().role_name(role).send().await.expect("attached policies");
    for arn in attached.attached_policies().iter().filter_map(|p| p.policy_arn()) {
        let got = c.iam.get_policy().policy_arn(arn).send().await.expect("policy");
        let version = got.policy().and_then(|p| p.default_version_id()).expect("default version").to_owned();
        let v = c.iam.get_policy_version().policy_arn(arn).version_id(version).send().await.expect("version");
        let doc = decode(v.policy_version().and_then(|v| v.document()).expect("document"));
        statements.extend(doc["Statement"].as_array().cloned().unwrap_or_default());
    }
    let inline = c.iam.list_role_policies().role_name(role).send().await.expect("inline policies");
    for name in inline.policy_names() {
        let p = c.iam.get_role_policy().role_name(role).policy_name(name).send().await.expect("inline policy");
        statements.extend(decode(p.policy_document())["Statement"].as_array().cloned().unwrap_or_default());
    }
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}

/// `[(name, value)]` as the `&[(&str, &str)]` the runners take.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts the exit code and parses stdout as JSON.
pub fn parse(args: &[&str], out: &Output, expected_code: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "provisioner {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// podman's engine settings on this machine (shared/testing-aws.md: runc, cgroupfs, file events,
/// ulimits it can set), written as `root/containers.conf` for CONTAINERS_CONF; its path.
pub fn podman_containers_conf(root: &Path) -> PathBuf {
    std::fs::create_dir_all(root).expect("podman dir");
    let conf = root.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1000:1000\"]\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .expect("containers.conf");
    conf
}

/// The object of the JSON array `list` whose `key` is `value` (a check of `verify`, a line item
/// of an estimate); panics naming what is missing.
pub fn entry<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {key} {value}: {list}"))
}

/// The mutating calls of a `--json` result, in call order (`api_calls.mutations`).
pub fn mutations(v: &Value) -> Vec<String> {
    v["api_calls"]["mutations"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A moto server of this test's own: IAM enforcement is a switch for the whole server.
pub struct OwnMoto {
    pub url: String,
    child: std::process::Child,
}

impl OwnMoto {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        // The suite's moto, with its AWS-faithful patches (scripts/moto-server).
        let server = std::env::var("KONNICHIWA_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = std::process::Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}): run the suite with scripts/test, which installs it, or `pip install 'moto[server]>=5.2,<5.3'`")
            });
        // Dropped (and so stopped) if it never answers.
        let moto = Self { url: format!("http://127.0.0.1:{port}"), child };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not start on {}", moto.url);
    }

    /// Turns moto's IAM enforcement on (every call from now on is checked against the caller's
    /// policies; the dummy `test` keys then fail) or off.
    pub async fn enforce_iam(&self, on: bool) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.url))
            .header("content-type", "text/plain")
            .body(if on { "0" } else { "inf" })
            .send()
            .await;
        assert!(r.is_ok_and(|r| r.status().is_success()), "moto's reset-auth did not answer");
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Moves this account's ECS test clock on by `minutes` (scripts/moto_aws.py, "Time":
/// `POST /moto-api/ecs/clock`).
pub async fn advance_ecs_clock(account: &Account, minutes: u32) {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/ecs/clock", moto_url()))
        .header("x-moto-account-id", &account.id)
        .header("content-type", "application/json")
        .body(format!("{{\"minutes\": {minutes}}}"))
        .send()
        .await
        .expect("the emulator's test clock");
    assert!(r.status().is_success(), "clock: {}", r.status());
    let answer: serde_json::Value = r.json().await.expect("the clock's answer");
    assert_eq!(answer["account"], account.id.as_str(), "the clock of this test's account");
}
