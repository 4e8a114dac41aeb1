//! Where a URL points, as every tool judges it: this machine (loopback) or anywhere else. The
//! provisioner refuses emulator endpoints and registries off this machine for plain HTTP; the
//! load test and the monitor refuse to send the API key in clear text to anything but loopback.

/// True for URLs whose host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses to send the API key to `url` in clear text: HTTPS anywhere, plain HTTP only to this
/// machine. Over `http://` to a load balancer the `Authorization: Bearer` header crosses the
/// internet readable by anyone on the path. `insist` (the tool's `flag`) sends it anyway.
pub fn check_key_transport(url: &str, insist: bool, flag: &str) -> Result<(), String> {
    let plain = url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"));
    if !plain || insist || is_loopback_url(url) {
        return Ok(());
    }
    Err(format!(
        "refusing to send the API key to {url} over plain HTTP: anyone on the way could read it. Use the service's \
         https:// URL (stack.yaml load_balancer.https), leave /inspect and /metrics out (no key is sent then), or \
         pass {flag} to send it anyway"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        for (url, expected) in [
            ("http://127.0.0.1:5000", true),
            ("http://localhost:5000/", true),
            ("http://LOCALHOST", true),
            ("http://[::1]:5000", true),
            ("http://127.3.2.1", true),
            ("http://user@127.0.0.1:80/x", true),
            ("https://ec2.ap-northeast-1.amazonaws.com", false),
            ("http://10.0.0.1:5000", false),
            ("http://localhost.evil.com", false),
            ("http://127.0.0.1.nip.io", false),
            ("http://evil.com?127.0.0.1", false),
            ("http://127.0.0.1@evil.com", false),
        ] {
            assert_eq!(is_loopback_url(url), expected, "{url}");
        }
    }

    #[test]
    fn the_key_goes_over_https_anywhere_and_over_http_only_to_this_machine() {
        assert!(check_key_transport("https://api.example.com", false, "--x").is_ok());
        assert!(check_key_transport("http://127.0.0.1:4000", false, "--x").is_ok());
        assert!(check_key_transport("http://k-alb-1.ap-northeast-1.elb.amazonaws.com", true, "--x").is_ok());
        let refused = check_key_transport("HTTP://k-alb-1.ap-northeast-1.elb.amazonaws.com", false, "--send-key");
        let message = refused.expect_err("refused");
        assert!(message.contains("plain HTTP") && message.contains("--send-key") && message.contains("https://"));
    }
}
