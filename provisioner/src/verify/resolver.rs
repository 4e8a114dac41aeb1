//! DNS questions from this machine, as the internet sees the domain: the name servers a
//! recursive resolver answers for a zone, and the CAA records of a name. Asks the first
//! `nameserver` of /etc/resolv.conf, or `KONNICHIWA_DNS_RESOLVER` (HOST:PORT); over UDP, then TCP
//! when the answer is truncated. Messages are built and read by hickory-proto.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::CAA;
use hickory_proto::rr::rdata::caa::Property;
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(3);

/// A recursive resolver.
#[derive(Debug, Clone, Copy)]
pub struct Resolver(SocketAddr);

/// What a name has: its records of the asked type, or that it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Records(Vec<String>),
    NoSuchName,
}

impl Resolver {
    /// `KONNICHIWA_DNS_RESOLVER`, else the system's first resolver.
    pub fn system() -> Result<Self, String> {
        if let Ok(addr) = std::env::var("KONNICHIWA_DNS_RESOLVER") {
            return addr.parse().map(Self).map_err(|e| format!("KONNICHIWA_DNS_RESOLVER={addr:?}: {e}"));
        }
        let conf = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| format!("/etc/resolv.conf: {e}"))?;
        conf.lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .find_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
            .map(|ip| Self(SocketAddr::new(ip, 53)))
            .ok_or_else(|| "/etc/resolv.conf names no nameserver".to_owned())
    }

    /// The zone's name servers (lowercase, without the final dot), sorted, and how long the
    /// resolver may keep answering them (the records' least TTL, in seconds).
    pub async fn name_servers(&self, zone: &str) -> Result<(Found, Option<u32>), String> {
        let Some(records) = self.ask_with_ttl(zone, RecordType::NS).await? else {
            return Ok((Found::NoSuchName, None));
        };
        let mut ns: Vec<String> = records
            .iter()
            .filter_map(|(r, _)| match r {
                RData::NS(ns) => Some(crate::dns::normalize(&ns.0.to_ascii())),
                _ => None,
            })
            .collect();
        ns.sort();
        let ttl = records.iter().filter(|(r, _)| matches!(r, RData::NS(_))).map(|(_, ttl)| *ttl).min();
        Ok((Found::Records(ns), ttl))
    }

    /// The CAA records of `name` as `tag value` (`issue amazon.com`).
    pub async fn caa(&self, name: &str) -> Result<Found, String> {
        let Some(records) = self.ask(name, RecordType::CAA).await? else { return Ok(Found::NoSuchName) };
        Ok(Found::Records(
            records
                .iter()
                .filter_map(|r| match r {
                    RData::CAA(caa) => Some(caa_text(caa)),
                    _ => None,
                })
                .collect(),
        ))
    }

    async fn ask(&self, name: &str, kind: RecordType) -> Result<Option<Vec<RData>>, String> {
        Ok(self.ask_with_ttl(name, kind).await?.map(|records| records.into_iter().map(|(r, _)| r).collect()))
    }

    /// The answers to `kind` of `name`, each with its TTL; None when the name does not exist.
    async fn ask_with_ttl(&self, name: &str, kind: RecordType) -> Result<Option<Vec<(RData, u32)>>, String> {
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).map_err(|e| format!("{name}: {e}"))?;
        let id = rand_id();
        let mut query = Message::new();
        query.set_id(id).set_recursion_desired(true).add_query(Query::query(fqdn, kind));
        let bytes = query.to_vec().map_err(|e| e.to_string())?;
        let mut reply = self.over_udp(&bytes).await?;
        if reply.truncated() {
            reply = self.over_tcp(&bytes).await?;
        }
        if reply.id() != id {
            return Err(format!("the resolver {} answered another question than {kind} {name}", self.0));
        }
        match reply.response_code() {
            ResponseCode::NXDomain => Ok(None),
            ResponseCode::NoError => Ok(Some(reply.answers().iter().map(|r| (r.data().clone(), r.ttl())).collect())),
            code => Err(format!("the resolver {} answered {code} for {kind} {name}", self.0)),
        }
    }

    async fn over_udp(&self, bytes: &[u8]) -> Result<Message, String> {
        let bind: SocketAddr = if self.0.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().map_err(|_| "bind")?;
        let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
        socket.connect(self.0).await.map_err(|e| format!("{}: {e}", self.0))?;
        let mut buf = vec![0; 4096];
        for _ in 0..2 {
            socket.send(bytes).await.map_err(|e| format!("{}: {e}", self.0))?;
            match tokio::time::timeout(TIMEOUT, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => return Message::from_vec(&buf[..n]).map_err(|e| format!("{}: {e}", self.0)),
                Ok(Err(e)) => return Err(format!("the resolver {} did not answer: {e}", self.0)),
                Err(_) => {}
            }
        }
        Err(format!("the resolver {} did not answer within {}s, twice", self.0, TIMEOUT.as_secs()))
    }

    async fn over_tcp(&self, bytes: &[u8]) -> Result<Message, String> {
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.0).await?;
            let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
            stream.write_all(&[&len.to_be_bytes()[..], bytes].concat()).await?;
            let mut size = [0; 2];
            stream.read_exact(&mut size).await?;
            let mut reply = vec![0; usize::from(u16::from_be_bytes(size))];
            stream.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("the resolver {} did not answer over TCP", self.0))?
            .map_err(|e| format!("{}: {e}", self.0))?;
        Message::from_vec(&reply).map_err(|e| e.to_string())
    }
}

/// `tag value`, the issuer's domain alone for `issue` and `issuewild` (`;`: no CA may).
fn caa_text(caa: &CAA) -> String {
    let raw = || String::from_utf8_lossy(caa.raw_value()).into_owned();
    let value = match caa.tag() {
        Property::Issue | Property::IssueWild => match caa.value_as_issue() {
            Ok((Some(issuer), _)) => crate::dns::normalize(&issuer.to_ascii()),
            Ok((None, _)) => ";".to_owned(),
            Err(_) => raw(),
        },
        _ => raw(),
    };
    format!("{} {value}", caa.tag().as_str())
}

/// A query id that differs between calls (DNS answers are matched to queries by it).
fn rand_id() -> u16 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}
