//! `app healthcheck`: GET /health where the server listens (its address and port) with a plain HTTP/1.1 request, exit 0 when it
//! answers 200. Lets an image built FROM scratch have a health check without curl.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// Checks http://BIND:PORT/health, where the server listens (an unspecified address, 0.0.0.0 or
/// ::, through the loopback of its family); prints why when unhealthy.
pub fn run(bind: IpAddr, port: u16, timeout: Duration) -> ExitCode {
    match probe(SocketAddr::new(asked(bind), port), timeout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The address to ask for a server bound to `bind`: itself, or for the unspecified address
/// (0.0.0.0, ::, listening everywhere) the loopback of its family.
fn asked(bind: IpAddr) -> IpAddr {
    match bind {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// One GET /health; Ok on a 200 answer.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("no answer from {addr}: {e}"))?;
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!("GET /health answered {status_line:?}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_asks_where_the_server_listens_and_everywhere_through_the_loopback() {
        for (bind, asked) in
            [("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("127.0.0.2", "127.0.0.2"), ("10.1.2.3", "10.1.2.3")]
        {
            assert_eq!(
                super::asked(bind.parse().expect("ip")),
                asked.parse::<std::net::IpAddr>().expect("ip"),
                "{bind}"
            );
        }
    }
}
