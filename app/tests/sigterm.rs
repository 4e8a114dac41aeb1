//! SIGTERM during a slow in-flight request: the request completes and the server returns cleanly.
//! Its own test binary, because it sends a real SIGTERM to this process (the handler catches it).

mod common;

use std::time::{Duration, Instant};

#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish() {
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            "finished"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = app::router_with_routes(common::state(), slow);
    let server = tokio::spawn(app::server::serve(listener, app, common::settings(), app::shutdown::signal()));

    let in_flight = tokio::spawn(async move { reqwest::get(format!("http://{addr}/slow")).await?.text().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let signalled = Instant::now();

    let served = tokio::time::timeout(Duration::from_secs(10), server).await.expect("server stops").expect("joins");
    assert!(served.is_ok(), "serve returned {served:?}");
    assert_eq!(in_flight.await.expect("joins").expect("request completed"), "finished");
    assert!(signalled.elapsed() >= Duration::from_millis(900), "returned before the request finished");
}
