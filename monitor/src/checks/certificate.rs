//! The certificate an https:// URL serves: days until it expires, against their thresholds
//! (WARNING below 21 days, CRITICAL below 7 by default). A certificate the client cannot verify
//! (untrusted CA, another name, expired) is CRITICAL: clients see an error page, not the service.

use std::time::{Duration, SystemTime};

use super::Target;
use crate::report::{CheckResult, Perf, State};
use crate::thresholds::Thresholds;

/// `host:port` of an https URL.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The reason given when the TLS handshake fails on the certificate.
pub fn untrusted(url: &str) -> String {
    format!(
        "cannot verify the certificate of {}: not signed by a trusted CA, expired, or issued for another name (for a \
         private CA, pass --ca-cert FILE)",
        authority(url)
    )
}

/// When the certificate in DER expires.
pub fn not_after(der: &[u8]) -> Result<SystemTime, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let secs = cert.validity().not_after.timestamp();
    let secs = u64::try_from(secs).map_err(|_| "a certificate that expired before 1970".to_owned())?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The check's result for a certificate that expires at `expires`, judged at `now`.
pub fn judge(expires: SystemTime, now: SystemTime, t: &Thresholds) -> CheckResult {
    let days = expires.duration_since(now).map_or(0, |d| d.as_secs() / 86_400);
    let when = humantime::format_rfc3339_seconds(expires);
    let perf = Perf {
        label: "certificate_days".into(),
        value: days as f64,
        unit: "",
        warning: Some(f64::from(t.certificate_warning_days)),
        critical: Some(f64::from(t.certificate_critical_days)),
        min: Some(0.0),
        max: None,
        alert_below: true,
    };
    let plural = if days == 1 { "day" } else { "days" };
    let (state, reason) = if days < u64::from(t.certificate_critical_days) {
        (State::Critical, format!("expires in {days} {plural} ({when}) < {} days", t.certificate_critical_days))
    } else if days < u64::from(t.certificate_warning_days) {
        (State::Warning, format!("expires in {days} {plural} ({when}) < {} days", t.certificate_warning_days))
    } else {
        (State::Ok, format!("expires in {days} {plural} ({when})"))
    };
    CheckResult::new("certificate", state, reason).with_perf(perf)
}

/// What the health check's request learnt of the server's certificate.
#[derive(Debug, Clone)]
pub enum Served {
    /// The answer came; the certificate presented, in DER (None over plain HTTP).
    Certificate(Option<Vec<u8>>),
    /// The TLS handshake refused the certificate.
    Untrusted,
    /// No answer: why, in words.
    Unreachable(String),
}

/// None for http:// URLs (nothing to check).
pub fn check(target: &Target, served: &Served, t: &Thresholds) -> Option<CheckResult> {
    if !target.url.starts_with("https://") {
        return None;
    }
    let der = match served {
        Served::Certificate(der) => der.as_deref(),
        Served::Untrusted => return Some(CheckResult::new("certificate", State::Critical, untrusted(&target.url))),
        Served::Unreachable(reason) => return Some(CheckResult::new("certificate", State::Unknown, reason.clone())),
    };
    Some(match der.map(not_after) {
        Some(Ok(expires)) => judge(expires, SystemTime::now(), t),
        Some(Err(e)) => CheckResult::new("certificate", State::Unknown, e),
        None => CheckResult::new("certificate", State::Unknown, "the server presented no certificate"),
    })
}

/// True when the request failed because the server's certificate was refused.
pub fn is_certificate_error(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("invalid peer certificate") || text.contains("certificate") && text.contains("verif") {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_decide_the_state_and_perfdata_alerts_below() {
        let t = Thresholds::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |days: u64| now + Duration::from_secs(days * 86_400 + 3600);
        assert_eq!(judge(at(30), now, &t).state, State::Ok);
        assert_eq!(judge(at(10), now, &t).state, State::Warning);
        assert_eq!(judge(at(3), now, &t).state, State::Critical);
        let r = judge(at(3), now, &t);
        assert!(r.reason.starts_with("expires in 3 days (20") && r.reason.ends_with(") < 7 days"), "{}", r.reason);
        assert_eq!(r.line().split(" | ").nth(1), Some("certificate_days=3;21:;7:;0"));
        assert_eq!(judge(at(1), now, &t).reason.split(' ').take(4).collect::<Vec<_>>(), ["expires", "in", "1", "day"]);
    }

    #[test]
    fn the_authority_names_the_host_and_port() {
        assert_eq!(authority("https://api.example.com:8443/x"), "api.example.com:8443");
        assert_eq!(authority("https://api.example.com"), "api.example.com");
    }
}
