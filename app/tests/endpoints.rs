//! Every endpoint and every auth failure mode, driven in-process with `oneshot`.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn send(method: Method, path: &str, auth: Option<&str>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let app = app::router(common::state());
    let mut request = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let response = app.oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, headers, body)
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON body")
}

fn bearer() -> String {
    format!("Bearer {}", common::KEY)
}

#[tokio::test]
async fn greeting_is_json() {
    let (status, headers, body) = send(Method::GET, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let body = json(&body);
    assert_eq!(body["message"], "Konnichiwa");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn health_is_plain_ok_without_auth() {
    let (status, headers, body) = send(Method::GET, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().expect("ascii").starts_with("text/plain"));
    assert_eq!(body, b"ok");
}

#[tokio::test]
async fn protected_routes_refuse_every_bad_credential() {
    let cases: &[(Option<&str>, &str, bool)] = &[
        (None, "missing_credentials", false),
        (Some("Bearer"), "malformed_credentials", true),
        (Some("Basic dXNlcjpwYXNz"), "unsupported_scheme", false),
        (Some("Bearer not-the-key-at-all"), "invalid_token", true),
        (Some("Bearer test-key-0123456789abcdeX"), "invalid_token", true),
    ];
    for path in ["/inspect", "/metrics"] {
        for (auth, code, invalid_token) in cases {
            let (status, headers, body) = send(Method::GET, path, *auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
            let challenge = headers[header::WWW_AUTHENTICATE].to_str().expect("ascii");
            assert!(challenge.starts_with("Bearer realm=\"konnichiwa\""), "{challenge}");
            assert_eq!(challenge.contains("invalid_token"), *invalid_token, "{challenge}");
            let body = json(&body);
            assert_eq!(body["error"], *code, "{path} {auth:?}");
            assert!(body["message"].as_str().expect("message").contains("Bearer"), "{body}");
            assert!(!body.to_string().contains(common::KEY), "an error must not echo the key");
        }
    }
}

/// The /inspect JSON shape is an interface (the monitor reads it): pin every field name and type.
#[tokio::test]
async fn inspect_shape_is_pinned() {
    let (status, _, body) = send(Method::GET, "/inspect", Some(&bearer())).await;
    assert_eq!(status, StatusCode::OK);
    let body = json(&body);
    let mut shape = shape_of(&body);
    // Nullable by design: CPU % needs two samples; container figures exist only in a container.
    if shape["cpu"]["used_percent"] == "null" {
        shape["cpu"]["used_percent"] = "number".into();
    }
    shape["container"] = "object|null".into();
    let expected = serde_json::json!({
        "service": {"name": "string", "version": "string", "hostname": "string"},
        "uptime": {"process_seconds": "number", "system_seconds": "number"},
        "cpu": {"logical_cores": "number", "used_percent": "number",
                "load_average": {"one": "number", "five": "number", "fifteen": "number"}},
        "memory": {"total_bytes": "number", "used_bytes": "number", "used_percent": "number"},
        "container": "object|null",
        "process": {"pid": "number", "rss_bytes": "number", "threads": "number", "open_fds": "number",
                    "requests_served": "number"},
        "sample": {"sampled_at_unix_ms": "number", "interval_seconds": "number"},
    });
    assert_eq!(shape, expected, "{body:#}");
    // And it round-trips through the public types the monitor uses.
    let report: app::inspect::InspectReport = serde_json::from_value(body.clone()).expect("typed");
    assert!(report.memory.total_bytes > 0);
    assert!(report.cpu.logical_cores >= 1);
    assert!(report.process.rss_bytes > 0 && report.process.threads >= 1 && report.process.open_fds >= 3);
}

fn shape_of(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), shape_of(v))).collect()),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
        Value::Array(_) => "array".into(),
    }
}

#[tokio::test]
async fn container_figures_come_from_the_cgroup() {
    let dir = std::env::temp_dir().join(format!("konnichiwa-endpoints-cg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("memory.current"), "134217728\n").expect("write");
    std::fs::write(dir.join("memory.max"), "268435456\n").expect("write");
    std::fs::write(dir.join("cpu.max"), "50000 100000\n").expect("write");
    let inspector = app::inspect::Inspector::with_cgroup_root(std::time::Duration::from_secs(1), dir.clone());
    std::fs::remove_dir_all(&dir).ok();
    let report = inspector.report();
    let container = report.container.expect("container figures");
    assert_eq!(container.memory_max_bytes, Some(268435456));
    assert_eq!(container.memory_used_percent, Some(50.0));
    assert_eq!(container.cpu_limit_cores, Some(0.5));
}

#[tokio::test]
async fn requests_served_counts_every_answer() {
    let state = common::state();
    let app = app::router(state.clone());
    for path in ["/", "/health", "/nope"] {
        let request = Request::get(path).body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("infallible");
    }
    assert_eq!(state.inspector.requests_served(), 3);
}

#[tokio::test]
async fn metrics_have_bounded_route_labels_and_process_figures() {
    let state = common::state();
    let app = app::router(state.clone());
    for path in ["/", "/", "/health", "/random-1", "/random-2", "/inspect"] {
        let request = Request::get(path).body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("infallible");
    }
    let request =
        Request::get("/metrics").header(header::AUTHORIZATION, bearer()).body(Body::empty()).expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let text =
        String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
    assert!(text.contains(r#"http_requests_total{method="GET",route="/",status="200"} 2"#), "{text}");
    assert!(text.contains(r#"http_requests_total{method="GET",route="/health",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 2"#), "{text}");
    assert!(text.contains(r#"http_requests_total{method="GET",route="/inspect",status="401"} 1"#), "{text}");
    assert!(!text.contains("random-1"), "raw paths must not become labels");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("process_resident_memory_bytes "), "{text}");
    assert!(text.contains("process_open_fds "), "{text}");
}

async fn metrics_as(app: axum::Router, accept: Option<&str>) -> (String, String) {
    let mut request = Request::get("/metrics").header(header::AUTHORIZATION, bearer());
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    let response = app.oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (content_type, String::from_utf8(body).expect("utf8"))
}

/// `promtool check metrics` on `text` (the classic format's own linter).
fn promtool_check(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is needed ({e}): scripts/test-deps installs it; run the suite with scripts/test")
        });
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn metrics_answer_the_format_the_scraper_asks_for() {
    let state = common::state();
    let app = app::router(state.clone());
    for (method, path) in [(Method::GET, "/"), (Method::POST, "/"), (Method::GET, "/nope")] {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("infallible");
    }
    // No Accept, or a plain one: the classic text format, which promtool passes without a word.
    for accept in [None, Some("text/plain"), Some("*/*")] {
        let (content_type, text) = metrics_as(app.clone(), accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8", "{accept:?}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(text.contains("# HELP http_requests_total HTTP requests served."), "{text}");
        assert!(text.contains("# TYPE http_requests_total counter"), "{text}");
        let said = promtool_check(&text);
        assert!(said.trim().is_empty(), "promtool has remarks: {said}");
    }
    // What Prometheus sends: OpenMetrics.
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (content_type, text) = metrics_as(app.clone(), Some(prometheus)).await;
    assert_eq!(content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# UNIT host_cpu_used_ratio ratio"), "{text}");
    // CPU as a 0–1 ratio, named so; a 405 counts under the route it hit.
    let (_, text) = metrics_as(app, None).await;
    let cpu = text.lines().find(|l| l.starts_with("host_cpu_used_ratio ")).unwrap_or_else(|| panic!("{text}"));
    let value: f64 = cpu.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
    assert!((0.0..=1.0).contains(&value), "{cpu}");
    assert!(text.contains(r#"http_requests_total{method="POST",route="/",status="405"} 1"#), "{text}");
    assert!(text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let (status, _, body) = send(Method::GET, "/does-not-exist", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "not_found");
}

#[tokio::test]
async fn wrong_method_is_json_405() {
    for path in ["/", "/health", "/inspect"] {
        let (status, _, body) = send(Method::POST, path, Some(&bearer())).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(json(&body)["error"], "method_not_allowed", "{path}");
    }
}

#[tokio::test]
async fn slow_handlers_are_cut_off_by_the_request_timeout() {
    let config = common::config(&["--request-timeout", "100ms"]);
    let state = app::AppState::new(&app::config::ApiKey::new(common::KEY), &config);
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            "late"
        }),
    );
    let app = app::router_with_routes(state, slow);
    let request = Request::get("/slow").body(Body::empty()).expect("request");
    let response = tokio::time::timeout(std::time::Duration::from_secs(2), app.oneshot(request))
        .await
        .expect("answered before the handler finished")
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}
