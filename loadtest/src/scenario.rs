//! What each user requests. Two forms: weighted GET endpoints (the Konnichiwa mix by default:
//! `GET /`, `GET /health`, `GET /inspect` with the bearer key), from `--endpoint PATH[=WEIGHT]` or
//! stack.yaml's `loadtest.endpoints`; or a scenario of requests (method, path, headers, body,
//! weight, think time, check), from `--scenario FILE`, `--request JSON` or `loadtest.scenario`.
//! Both become the same `Request`s, which the engine picks by weight.

use std::time::Duration;

use stack::validate::API_KEY_REFERENCE;

/// One endpoint of the mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub path: String,
    pub weight: u32,
    /// Send `Authorization: Bearer <API_KEY>`.
    pub auth: bool,
}

impl Endpoint {
    /// The name used in reports: `GET /path`.
    pub fn name(&self) -> String {
        format!("GET {}", self.path)
    }
}

/// The Konnichiwa mix: mostly the greeting, some health checks, some authorized inspects.
pub fn default_mix() -> Vec<Endpoint> {
    vec![
        Endpoint { path: "/".into(), weight: 6, auth: false },
        Endpoint { path: "/health".into(), weight: 2, auth: false },
        Endpoint { path: "/inspect".into(), weight: 2, auth: true },
    ]
}

/// Parses `PATH[=WEIGHT]`; paths that need the key (/inspect, /metrics) get it.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let (path, weight) = match s.rsplit_once('=') {
        Some((p, w)) => (
            p,
            w.parse::<u32>()
                .map_err(|_| format!("{s:?}: the weight after = must be a whole number, e.g. /health=2"))?,
        ),
        None => (s, 1),
    };
    if !path.starts_with('/') {
        return Err(format!("{s:?}: the path must start with /, e.g. --endpoint /health=2"));
    }
    if weight == 0 {
        return Err(format!("{s:?}: a weight of 0 never sends; drop the endpoint instead"));
    }
    let auth = matches!(path.split('?').next(), Some("/inspect" | "/metrics"));
    Ok(Endpoint { path: path.to_owned(), weight, auth })
}

/// The requests of a run, in either form.
#[derive(Debug, Clone, PartialEq)]
pub enum Mix {
    Endpoints(Vec<Endpoint>),
    /// Checked requests (stack's validation) as written.
    Scenario(Vec<stack::Request>),
}

impl Mix {
    /// Whether a request sends the API key.
    pub fn sends_key(&self) -> bool {
        match self {
            Self::Endpoints(endpoints) => endpoints.iter().any(|e| e.auth),
            Self::Scenario(requests) => {
                requests.iter().any(|r| r.headers.values().any(|v| v.contains(API_KEY_REFERENCE)))
            }
        }
    }

    /// Whether a request has a think time of its own.
    pub fn has_think_times(&self) -> bool {
        matches!(self, Self::Scenario(requests) if requests.iter().any(|r| r.think_time.is_some()))
    }

    /// The requests to send, in order: at most `MAX_REQUESTS`, each name once (the reports count
    /// by name, and `compare` refuses a result that breaks either).
    pub fn requests(&self) -> Result<Vec<Request>, String> {
        let requests: Vec<Request> = match self {
            Self::Endpoints(endpoints) => endpoints.iter().map(Request::of_endpoint).collect(),
            Self::Scenario(requests) => requests.iter().map(Request::of_scenario).collect::<Result<_, _>>()?,
        };
        if requests.len() > MAX_REQUESTS {
            return Err(format!("{} requests in the mix: at most {MAX_REQUESTS}", requests.len()));
        }
        for (i, r) in requests.iter().enumerate() {
            if requests[..i].iter().any(|earlier| earlier.name == r.name) {
                return Err(format!(
                    "{:?} twice in the mix: the reports count by name, so give each endpoint once (one weight)",
                    r.name
                ));
            }
        }
        Ok(requests)
    }
}

/// The most requests a mix may hold (and so endpoints a result may have).
pub const MAX_REQUESTS: usize = 256;

/// One request as the engine sends it; header values may still hold `${API_KEY}`, which the
/// engine replaces when it writes the request's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What the reports count it under.
    pub name: String,
    /// Upper case.
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub weight: u32,
    /// The pause after it (closed model), drawn evenly from the range.
    pub think_time: Option<(Duration, Duration)>,
    pub check: Check,
}

/// What counts as a success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// Status ranges that pass; empty: the default, any status below 400.
    pub statuses: Vec<(u16, u16)>,
    pub body_contains: Option<String>,
}

impl Check {
    /// Whether `status` passes.
    pub fn status_passes(&self, status: u16) -> bool {
        if self.statuses.is_empty() {
            status < 400
        } else {
            self.statuses.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
        }
    }
}

impl Request {
    fn of_endpoint(e: &Endpoint) -> Self {
        let headers =
            if e.auth { vec![("Authorization".to_owned(), format!("Bearer {API_KEY_REFERENCE}"))] } else { Vec::new() };
        Self {
            name: e.name(),
            method: "GET".into(),
            path: e.path.clone(),
            headers,
            body: None,
            weight: e.weight,
            think_time: None,
            check: Check::default(),
        }
    }

    fn of_scenario(r: &stack::Request) -> Result<Self, String> {
        let name = r.name();
        let think_time = r
            .think_time
            .as_deref()
            .map(stack::parse_duration_range)
            .transpose()
            .map_err(|e| format!("{name}: think_time {e}"))?;
        let statuses = match &r.check.status {
            Some(s) => s.patterns().iter().map(stack::StatusPattern::range).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            method: r.method.to_ascii_uppercase(),
            path: r.path.clone(),
            headers: r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            body: r.body.clone(),
            weight: r.weight,
            think_time,
            check: Check { statuses, body_contains: r.check.body_contains.clone() },
            name,
        })
    }
}

/// Picks requests by weight from a per-user random stream.
#[derive(Debug, Clone)]
pub struct Picker {
    cumulative: Vec<u32>,
    state: u64,
}

impl Picker {
    pub fn new(weights: &[u32], seed: u64) -> Self {
        let mut total = 0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Self { cumulative, state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 }
    }

    /// xorshift64*: plenty for spreading requests over a mix.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The index of the next endpoint.
    pub fn pick(&mut self) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1).max(1);
        let r = (self.next_u64() % u64::from(total)) as u32;
        self.cumulative.iter().position(|c| r < *c).unwrap_or(0)
    }

    /// A uniform value in [lo, hi].
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_become_requests_and_say_whether_they_send_the_key() {
        let endpoints = Mix::Endpoints(default_mix());
        let requests = endpoints.requests().expect("requests");
        let names: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["GET /", "GET /health", "GET /inspect"]);
        assert_eq!(requests[2].headers, [("Authorization".to_owned(), "Bearer ${API_KEY}".to_owned())]);
        assert!(requests[0].headers.is_empty() && endpoints.sends_key() && !endpoints.has_think_times());
        assert!(!Mix::Endpoints(vec![parse_endpoint("/health").expect("endpoint")]).sends_key());

        let written = stack::scenario_from_yaml(
            "- { method: post, path: /orders, body: '{}', think_time: 1s..2s, check: { status: [201, 4xx] } }\n\
             - { path: /me, headers: { X-Key: '${API_KEY}' }, check: { body_contains: me } }\n",
            std::path::Path::new("s.yaml"),
        )
        .expect("scenario");
        let scenario = Mix::Scenario(written);
        let requests = scenario.requests().expect("requests");
        let post = &requests[0];
        assert_eq!(
            (post.name.as_str(), post.method.as_str(), post.body.as_deref()),
            ("POST /orders", "POST", Some("{}"))
        );
        assert_eq!(post.think_time, Some((Duration::from_secs(1), Duration::from_secs(2))));
        assert_eq!(post.check.statuses, [(201, 201), (400, 499)]);
        assert!(post.check.status_passes(201) && post.check.status_passes(404) && !post.check.status_passes(200));
        let me = &requests[1];
        assert!(me.check.status_passes(302) && !me.check.status_passes(400), "default: below 400");
        assert_eq!(me.check.body_contains.as_deref(), Some("me"));
        assert!(scenario.sends_key() && scenario.has_think_times());
    }

    #[test]
    fn a_mix_names_each_request_once_and_holds_at_most_max_requests() {
        let endpoints = |paths: &[&str]| {
            Mix::Endpoints(paths.iter().map(|p| parse_endpoint(p).expect("endpoint")).collect()).requests()
        };
        let twice = endpoints(&["/", "/health", "/=3"]).expect_err("refused");
        assert!(twice.contains("\"GET /\" twice in the mix"), "{twice}");
        let paths: Vec<String> = (0..=MAX_REQUESTS).map(|i| format!("/{i}")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        assert_eq!(endpoints(&paths[..MAX_REQUESTS]).expect("the most a mix may hold").len(), MAX_REQUESTS);
        let many = endpoints(&paths).expect_err("refused");
        assert!(many.contains("257 requests in the mix: at most 256"), "{many}");
    }

    #[test]
    fn parses_endpoints() {
        assert_eq!(parse_endpoint("/health=3"), Ok(Endpoint { path: "/health".into(), weight: 3, auth: false }));
        assert_eq!(parse_endpoint("/inspect"), Ok(Endpoint { path: "/inspect".into(), weight: 1, auth: true }));
        assert!(parse_endpoint("health").unwrap_err().contains("must start with /"));
        assert!(parse_endpoint("/x=a").unwrap_err().contains("whole number"));
        assert!(parse_endpoint("/x=0").unwrap_err().contains("never sends"));
    }

    #[test]
    fn picks_in_proportion_to_weights() {
        let weights: Vec<u32> = default_mix().iter().map(|e| e.weight).collect();
        let mut p = Picker::new(&weights, 42);
        let mut counts = [0u32; 3];
        for _ in 0..100_000 {
            counts[p.pick()] += 1;
        }
        let share: Vec<f64> = counts.iter().map(|c| f64::from(*c) / 100_000.0).collect();
        assert!(
            (share[0] - 0.6).abs() < 0.01 && (share[1] - 0.2).abs() < 0.01 && (share[2] - 0.2).abs() < 0.01,
            "{share:?}"
        );
        let v = p.between(1.0, 2.0);
        assert!((1.0..=2.0).contains(&v));
    }
}
