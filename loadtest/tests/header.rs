//! `--header` against a real server on 127.0.0.1 (port 0) that answers 200 only to requests that
//! carry the header (as a load balancer's test listener rule routes on it) and 404 otherwise:
//! every request of the run carries it, the key is filled in where it is referenced, and a key
//! written in a header itself is refused without being shown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use app::testing::Server;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadtest");
const KEY: &str = "header-test-key-0123456789";

/// Requests that carried `X-Canary: green` (and `Authorization: Bearer KEY`), and the others.
#[derive(Debug, Default)]
struct Seen {
    with: AtomicU64,
    without: AtomicU64,
}

/// Answers any path: 200 to a request with both headers, 404 to the rest.
async fn canary() -> (Server, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    let router = Router::new().fallback(move |headers: HeaderMap| {
        let counts = Arc::clone(&counts);
        async move {
            let has = |name: &str, value: &str| headers.get_all(name).iter().any(|v| v == value);
            if has("x-canary", "green") && has("authorization", &format!("Bearer {KEY}")) {
                counts.with.fetch_add(1, Ordering::Relaxed);
                StatusCode::OK
            } else {
                counts.without.fetch_add(1, Ordering::Relaxed);
                StatusCode::NOT_FOUND
            }
        }
    });
    (Server::start(router).await, seen)
}

/// Runs the binary quietly in an empty directory with API_KEY set: its exit code and output.
async fn loadtest(args: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .arg("--quiet")
        .env_clear()
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("run loadtest");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn every_request_carries_the_headers_and_the_key_where_it_is_referenced() {
    let (server, seen) = canary().await;
    let json = std::env::temp_dir().join(format!("konnichiwa-header-{}.json", std::process::id()));
    let json_path = json.to_string_lossy().into_owned();
    let url = server.url();
    let run = [
        "--host",
        &url,
        "--rate",
        "100/s",
        "--duration",
        "1s",
        "--endpoint",
        "/a",
        "--endpoint",
        "/b",
        "--header",
        "X-Canary: green",
        "--header",
        "Authorization: Bearer ${API_KEY}",
        "--slo",
        "errors<1%",
        "--json",
        &json_path,
    ];
    let (code, said) = loadtest(&run).await;
    assert_eq!(code, Some(0), "{said}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    let _ = std::fs::remove_file(&json);
    let total = v["total"]["requests"].as_u64().expect("requests");
    assert_eq!(total, 100, "{v:#}");
    assert_eq!(v["total"]["failures"].as_u64(), Some(0), "{v:#}");
    assert_eq!((seen.with.load(Ordering::Relaxed), seen.without.load(Ordering::Relaxed)), (total, 0));
    assert!(!said.contains(KEY), "the key appears in no output: {said}");

    // Without the flag, the same run reaches nothing: the server does tell them apart.
    let (code, said) = loadtest(&run[..10]).await;
    assert_eq!(code, Some(3), "{said}");
    assert_eq!(seen.without.load(Ordering::Relaxed), 100, "{said}");
}

#[tokio::test]
async fn a_key_written_in_a_header_itself_is_refused_without_saying_it() {
    let (server, seen) = canary().await;
    let header = format!("X-Key: {KEY}");
    let (code, said) =
        loadtest(&["--host", &server.url(), "--rate", "10/s", "--duration", "1s", "--header", &header]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("--header X-Key holds the API key itself: write ${API_KEY} in its place (e.g. --header 'X-Key: Bearer ${API_KEY}')"),
        "{said}"
    );
    assert!(!said.contains(KEY), "{said}");
    let (code, said) = loadtest(&["--host", &server.url(), "--duration", "1s", "--header", "Connection: close"]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("error: --header Connection: the load generator writes Connection itself"), "{said}");
    assert_eq!(
        seen.with.load(Ordering::Relaxed) + seen.without.load(Ordering::Relaxed),
        0,
        "refused before any request"
    );
}
