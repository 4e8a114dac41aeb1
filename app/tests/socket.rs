//! The service over a real socket on port 0: keep-alive requests, the header-read timeout that
//! cuts off a client trickling its headers, and graceful drain of in-flight requests.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn serves_over_a_real_socket_with_keep_alive() {
    let server = TestServer::start(app::router(common::state()), common::settings()).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let response = client.get(server.url("/health")).send().await.expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "ok");
    }
    let inspect = client.get(server.url("/inspect")).bearer_auth(common::KEY).send().await.expect("request");
    assert_eq!(inspect.status(), 200);
    let report: app::inspect::InspectReport = inspect.json().await.expect("typed JSON");
    assert_eq!(report.process.requests_served, 3, "the three /health calls before it");
    server.stop().await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let mut settings = common::settings();
    settings.header_read_timeout = Duration::from_millis(500);
    let server = TestServer::start(app::router(common::state()), settings).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = false;
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !cut_off {
        // The server closes the connection; reading then gives EOF (or a reset), never a 200.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(read.is_ok(), "the server kept the connection open");
        assert!(!text.contains("200 OK"), "a trickled request must not be served: {text}");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "cut off after {elapsed:?}, expected about 0.5 s");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_requests_then_refuses_new_connections() {
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            "finished"
        }),
    );
    let server = TestServer::start(app::router_with_routes(common::state(), slow), common::settings()).await;
    let addr = server.addr;
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    server.stop().await;
    let body = in_flight.await.expect("joins").expect("the in-flight request completed");
    assert_eq!(body, "finished");
    assert!(started.elapsed() >= Duration::from_millis(400), "stop returned before the request finished");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let stuck = axum::Router::new().route(
        "/stuck",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "never"
        }),
    );
    let mut settings = common::settings();
    settings.shutdown_grace = Duration::from_millis(300);
    let server = TestServer::start(app::router_with_routes(common::state(), stuck), settings).await;
    let url = server.url("/stuck");
    let _request = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown took {:?}", started.elapsed());
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let mut settings = common::settings();
    settings.max_connections = 1;
    let server = TestServer::start(app::router(common::state()), settings).await;
    // The first connection holds the only slot (keep-alive, idle).
    let mut first = TcpStream::connect(server.addr).await.expect("connect");
    first.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // A second connection is accepted by the kernel but not served while the first is open.
    let mut second = TcpStream::connect(server.addr).await.expect("connect");
    second.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond max_connections");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(2), second.read(&mut buf)).await.expect("served").expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    server.stop().await;
}
