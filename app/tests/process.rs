//! The `app` binary as a process: refusing to start without a key, serving on port 0, the
//! `healthcheck` subcommand, exit 0 on SIGTERM, and a key that never reaches the logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_app");
const KEY: &str = "process-test-key-0123456789";

fn command() -> Command {
    let mut c = Command::new(BIN);
    // A clean environment: no key or port from the developer's shell, no .env in the working dir.
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(std::env::temp_dir());
    c
}

/// A running `app` and the port it printed.
struct Running {
    child: Child,
    port: u16,
    log: std::sync::mpsc::Receiver<String>,
}

impl Running {
    // The child is waited for in `terminate` or in Drop, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    fn start() -> Self {
        Self::start_with(&[])
    }

    #[allow(clippy::zombie_processes)]
    fn start_with(env: &[(&str, &str)]) -> Self {
        let (child, rx) = spawn_logging(
            command()
                .env("API_KEY", KEY)
                .env("PORT", "0")
                .env("BIND", "127.0.0.1")
                .env("LOG_FORMAT", "json")
                .envs(env.iter().copied()),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("app logs `listening`");
            let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            if v["message"] == "listening" {
                let addr: std::net::SocketAddr = v["addr"].as_str().expect("addr").parse().expect("socket addr");
                return Self { child, port: addr.port(), log: rx };
            }
        }
    }

    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "app did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.log.try_iter().collect())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `c` with its stdout's lines sent to the receiver as they come.
// The child is waited for by the caller, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn spawn_logging(c: &mut Command) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn app");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// One HTTP/1.1 GET over a plain socket; returns the whole answer.
fn get(port: u16, path: &str, key: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn a_second_app_on_the_same_port_is_refused_unless_it_asks_to_share() {
    let first = Running::start();
    let port = first.port.to_string();
    let mut second = command()
        .env("API_KEY", "another-key-0123456789")
        .env("PORT", &port)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a second app");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second app serves on port {port} beside the first");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("port {port} is in use")) && stderr.contains("--share-port"), "{stderr}");
    // Asked to share (SHARE_PORT takes 1/yes/true), it listens beside the first.
    let shared = Running::start_with(&[("PORT", &port), ("SHARE_PORT", "yes")]);
    assert_eq!(shared.port, first.port);
    assert!(get(first.port, "/health", None).ends_with("ok"));
    let _ = shared.terminate();
    let _ = first.terminate();
}

#[test]
fn refuses_to_start_without_a_key() {
    let out = command().env("PORT", "0").output().expect("run app");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("API_KEY is not set") && stderr.contains(".env"), "{stderr}");
}

#[test]
fn refuses_a_short_key() {
    let out = command().env("PORT", "0").env("API_KEY", "short").output().expect("run app");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("too short") && !stderr.contains("short\n"), "{stderr}");
}

#[test]
fn reads_the_key_from_dot_env() {
    let dir = std::env::temp_dir().join(format!("konnichiwa-dotenv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(".env"), format!("API_KEY={KEY}\nPORT=0\nBIND=127.0.0.1\n")).expect("write");
    let mut child = command().current_dir(&dir).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    let still_running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    assert!(still_running, "app exited although .env holds a key");
}

#[test]
fn help_documents_every_setting_without_showing_the_key() {
    let out = command().env("API_KEY", KEY).arg("--help").output().expect("run app");
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "PORT",
        "BIND",
        "API_KEY",
        "WORKER_THREADS",
        "REQUEST_TIMEOUT",
        "HEADER_READ_TIMEOUT",
        "MAX_CONNECTIONS",
        "SHUTDOWN_GRACE",
        "SAMPLE_INTERVAL",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "ACCESS_LOG",
        "healthcheck",
        "Exit codes",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    assert!(!help.contains(KEY), "--help printed the key");
}

#[test]
fn serves_then_exits_zero_on_sigterm_and_never_logs_the_key() {
    let app = Running::start();
    let port = app.port;
    let healthy = command().env("PORT", port.to_string()).arg("healthcheck").status().expect("healthcheck");
    assert!(healthy.success(), "healthcheck against a running app");
    assert!(get(port, "/inspect", Some(KEY)).starts_with("HTTP/1.1 200"), "authorized /inspect");
    assert!(get(port, "/inspect", Some("wrong-key-wrong-key")).starts_with("HTTP/1.1 401"));
    let (status, log) = app.terminate();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    let all = log.join("\n");
    assert!(all.contains("shutdown complete"), "{all}");
    assert!(all.contains(r#""route":"/health""#), "access log has the route: {all}");
    assert!(!all.contains(KEY), "the key reached the log");
}

#[test]
fn access_logs_are_sampled_by_default_and_can_be_all_or_off() {
    for (setting, lines) in [(None, 3), (Some("all"), 201), (Some("off"), 0), (Some("1/50"), 5)] {
        let env: Vec<(&str, &str)> = setting.map(|s| ("ACCESS_LOG", s)).into_iter().collect();
        let app = Running::start_with(&env);
        for _ in 0..201 {
            assert!(get(app.port, "/health", None).starts_with("HTTP/1.1 200"));
        }
        let (status, log) = app.terminate();
        assert_eq!(status.code(), Some(0));
        let access = log.iter().filter(|l| l.contains(r#""target":"access""#)).count();
        assert_eq!(access, lines, "ACCESS_LOG={setting:?}: the first of each N of 201 requests");
    }
    let out = command().env("API_KEY", KEY).env("ACCESS_LOG", "sometimes").output().expect("run app");
    assert_eq!(out.status.code(), Some(2), "a bad setting is a configuration error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("write all, off, or 1/N"));
}

#[test]
fn a_local_run_listens_on_loopback_and_logs_plain_text_to_a_pipe() {
    // No BIND, as `cargo run -p app` with the example .env: this machine only.
    let (mut child, rx) = spawn_logging(command().env("API_KEY", KEY).env("PORT", "0").env("LOG_FORMAT", "pretty"));
    let next = |what: &str| {
        loop {
            let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no {what} line"));
            if line.contains(what) {
                break line;
            }
        }
    };
    let listening = next("listening");
    let port = listening.split("addr=127.0.0.1:").nth(1).and_then(|p| p.split_whitespace().next()?.parse::<u16>().ok());
    let port = port.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("not on loopback: {listening}")
    });
    assert!(get(port, "/", None).starts_with("HTTP/1.1 200"));
    let access = next("latency_ms=");
    let _ = child.kill();
    let _ = child.wait();
    for line in [&listening, &access] {
        assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
    }
    let latency = access.split("latency_ms=").nth(1).and_then(|v| v.split_whitespace().next()).expect("latency");
    let decimals = latency.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 3, "latency_ms rounded to microseconds: {latency}");
}

#[test]
fn healthcheck_asks_where_the_server_listens_and_its_help_says_which_options_it_reads() {
    // 127.0.0.2 is this machine too, but not 127.0.0.1: a probe of the fixed loopback would fail.
    let app = Running::start_with(&[("BIND", "127.0.0.2")]);
    let port = app.port.to_string();
    let out = command().env("BIND", "127.0.0.2").env("PORT", &port).arg("healthcheck").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(app);

    let help = command().args(["healthcheck", "--help"]).output().expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    let words: Vec<&str> = help.split_whitespace().collect();
    assert!(words.join(" ").contains("--bind <BIND> The address `serve` listens on and `healthcheck` asks"), "{help}");
    let (own, serve_only) =
        help.split_once("Options of serve (healthcheck ignores them):").expect("a heading for the rest");
    assert!(own.contains("--port") && own.contains("--timeout"), "{help}");
    assert!(serve_only.contains("--worker-threads") && !serve_only.contains("--port"), "{help}");
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let out = command().env("PORT", port.to_string()).arg("healthcheck").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}
