//! GET /health: CRITICAL unless it answers 200 in time; latency against its thresholds. The same
//! request tells the certificate check what the server presented (`Served`).

use std::time::Instant;

use super::certificate::{Served, is_certificate_error};
use super::{Target, transport_reason};
use crate::report::{CheckResult, Perf, State, seconds};
use crate::thresholds::Thresholds;

pub async fn check(client: &reqwest::Client, target: &Target, t: &Thresholds) -> (CheckResult, Served) {
    let url = target.endpoint("/health");
    let started = Instant::now();
    let answer = client.get(&url).timeout(target.timeout).send().await;
    let latency = started.elapsed();
    let perf = Perf {
        label: "health_latency".into(),
        value: latency.as_secs_f64(),
        unit: "s",
        warning: Some(t.latency_warning.as_secs_f64()),
        critical: Some(t.latency_critical.as_secs_f64()),
        min: Some(0.0),
        max: None,
        alert_below: false,
    };
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let reason = transport_reason(&url, &e, target.timeout);
            let served = if is_certificate_error(&e) { Served::Untrusted } else { Served::Unreachable(reason.clone()) };
            return (CheckResult::new("health", State::Critical, reason), served);
        }
    };
    let served = Served::Certificate(
        response.extensions().get::<reqwest::tls::TlsInfo>().and_then(|i| i.peer_certificate().map(<[u8]>::to_vec)),
    );
    let status = response.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if status != 200 {
        let result =
            CheckResult::new("health", State::Critical, format!("GET /health answered {status} in {ms:.0} ms"));
        return (result.with_perf(perf), served);
    }
    let (state, reason) = if latency >= t.latency_critical {
        (State::Critical, format!("{status} in {ms:.0} ms >= {}", seconds(t.latency_critical)))
    } else if latency >= t.latency_warning {
        (State::Warning, format!("{status} in {ms:.0} ms >= {}", seconds(t.latency_warning)))
    } else {
        (State::Ok, format!("{status} in {ms:.0} ms"))
    };
    (CheckResult::new("health", state, reason).with_perf(perf), served)
}
