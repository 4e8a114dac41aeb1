//! What each user requests: weighted endpoints (the Konnichiwa mix by default: `GET /`,
//! `GET /health`, `GET /inspect` with the bearer key), from `--endpoint PATH[=WEIGHT]` or
//! stack.yaml's `loadtest:` section.

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

/// Picks endpoints by weight from a per-user random stream.
#[derive(Debug, Clone)]
pub struct Picker {
    cumulative: Vec<u32>,
    state: u64,
}

impl Picker {
    pub fn new(endpoints: &[Endpoint], seed: u64) -> Self {
        let mut total = 0;
        let cumulative = endpoints
            .iter()
            .map(|e| {
                total += e.weight;
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
    fn parses_endpoints() {
        assert_eq!(parse_endpoint("/health=3"), Ok(Endpoint { path: "/health".into(), weight: 3, auth: false }));
        assert_eq!(parse_endpoint("/inspect"), Ok(Endpoint { path: "/inspect".into(), weight: 1, auth: true }));
        assert!(parse_endpoint("health").unwrap_err().contains("must start with /"));
        assert!(parse_endpoint("/x=a").unwrap_err().contains("whole number"));
        assert!(parse_endpoint("/x=0").unwrap_err().contains("never sends"));
    }

    #[test]
    fn picks_in_proportion_to_weights() {
        let mix = default_mix();
        let mut p = Picker::new(&mix, 42);
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
