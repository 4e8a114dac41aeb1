//! Reading a log group by polling, within CloudWatch Logs' read limits. FilterLogEvents and
//! GetLogEvents have low, hard rate limits (5 and 25 calls a second per account and region,
//! shared with everyone else reading logs there: "designed for human interaction"), so a reader
//! makes one FilterLogEvents query a poll across every stream it wants (a stream-name prefix),
//! never one call per stream; pages only when the look-back window holds more than a page;
//! and polls less often while it is throttled.
//!
//! Each poll looks back a while before the newest line seen, because CloudWatch can index a line
//! later than a newer one of another stream; lines already taken are known by their event id and
//! not returned again. `provisioner logs --follow` and `provisioner loadtest` read this way.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crate::error::{AwsContext, Error};
use crate::reconcile::Ctx;

/// How far each poll looks back before the newest line seen (late-indexed lines).
pub const LOOKBACK_MS: i64 = 120_000;
/// The slowest a throttled poll goes.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub timestamp_ms: i64,
    pub event_id: String,
    pub stream: String,
    pub message: String,
}

/// What to read of a group.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only lines containing this text.
    pub filter: Option<String>,
    /// Only streams whose names start with this.
    pub stream_prefix: Option<String>,
}

/// Every line of `group` from `start_ms` on that `q` selects (all pages), oldest first; and how
/// many calls that took.
pub async fn fetch(ctx: &Ctx, group: &str, start_ms: i64, q: &Query) -> Result<(Vec<Line>, usize), Error> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    let mut calls = 0;
    loop {
        let mut req = ctx.clients.logs.filter_log_events().log_group_name(group).start_time(start_ms);
        if let Some(f) = &q.filter {
            // CloudWatch's filter syntax: a quoted term matches it as written.
            req = req.filter_pattern(format!("\"{}\"", f.replace('"', "")));
        }
        if let Some(p) = &q.stream_prefix {
            req = req.log_stream_name_prefix(p);
        }
        let out = req.set_next_token(token.clone()).send().await.ctx("read the log group", group)?;
        calls += 1;
        for e in out.events() {
            let stream = e.log_stream_name().unwrap_or_default();
            // Checked here too: what selects the lines is this reader, whatever answered.
            if q.stream_prefix.as_deref().is_some_and(|p| !stream.starts_with(p)) {
                continue;
            }
            if q.filter.as_deref().is_some_and(|f| !e.message().unwrap_or_default().contains(f)) {
                continue;
            }
            lines.push(Line {
                timestamp_ms: e.timestamp().unwrap_or_default(),
                event_id: e.event_id().unwrap_or_default().to_owned(),
                stream: stream.to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            });
        }
        token = out.next_token().map(str::to_owned).filter(|t| Some(t.as_str()) != token.as_deref());
        if token.is_none() {
            break;
        }
    }
    lines.sort_by(|a, b| (a.timestamp_ms, &a.stream, &a.event_id).cmp(&(b.timestamp_ms, &b.stream, &b.event_id)));
    Ok((lines, calls))
}

/// What a reader has taken: the newest timestamp and the ids taken within the look-back.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Nothing older is ever returned.
    since_ms: i64,
    pub newest_ms: i64,
    taken: HashSet<String>,
    by_time: BTreeSet<(i64, String)>,
}

impl Cursor {
    pub fn new(since_ms: i64) -> Self {
        Self { since_ms, newest_ms: since_ms, ..Self::default() }
    }

    /// Where the next poll starts: a look-back before the newest line, never before `since`.
    pub fn poll_from(&self) -> i64 {
        (self.newest_ms - LOOKBACK_MS).max(self.since_ms)
    }

    /// The lines of a poll not taken before, in order; remembers them.
    pub fn take(&mut self, lines: Vec<Line>) -> Vec<Line> {
        let fresh: Vec<Line> = lines.into_iter().filter(|l| !self.taken.contains(&l.event_id)).collect();
        for l in &fresh {
            self.taken.insert(l.event_id.clone());
            self.by_time.insert((l.timestamp_ms, l.event_id.clone()));
            self.newest_ms = self.newest_ms.max(l.timestamp_ms);
        }
        // Forget what no later poll can return again.
        let horizon = self.poll_from();
        while let Some(first) = self.by_time.first().cloned() {
            if first.0 >= horizon {
                break;
            }
            self.by_time.remove(&first);
            self.taken.remove(&first.1);
        }
        fresh
    }
}

/// The pause between polls: the reader's own while CloudWatch answers, doubled (up to 30 s)
/// each time it throttles beyond the SDK's retries.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    base: Duration,
    pub now: Duration,
}

impl Pace {
    pub fn new(base: Duration) -> Self {
        Self { base, now: base }
    }

    /// After a poll: its answer, or `None` when it was throttled (the pause grew); any other
    /// error is passed on.
    pub fn after<T>(&mut self, r: Result<T, Error>) -> Result<Option<T>, Error> {
        match r {
            Ok(v) => {
                self.now = self.base;
                Ok(Some(v))
            }
            Err(e) if e.means(crate::meaning::Meaning::Throttled) => {
                self.now = (self.now * 2).min(MAX_PAUSE.max(self.base));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: i64, id: &str, stream: &str) -> Line {
        Line { timestamp_ms: ms, event_id: id.into(), stream: stream.into(), message: id.into() }
    }

    #[test]
    fn each_line_is_taken_once_even_when_indexed_late() {
        let mut c = Cursor::new(0);
        let a = line(10_000, "a", "s1");
        let b = line(20_000, "b", "s1");
        assert_eq!(c.take(vec![a.clone(), b.clone()]).len(), 2);
        // The next poll returns them again, and a line of another stream indexed late.
        let late = line(15_000, "late", "s2");
        let got = c.take(vec![a, late.clone(), b]);
        assert_eq!(got, [late]);
        assert!(c.poll_from() <= 15_000, "the look-back covers late lines");
        let quiet = Cursor::new(600_000);
        assert_eq!(quiet.poll_from(), 600_000, "never before `since`, even with no line yet");
    }

    #[test]
    fn throttling_slows_the_polls_and_an_answer_restores_them() {
        let mut pace = Pace::new(Duration::from_secs(2));
        let throttled = || -> Result<u8, Error> {
            Err(Error::Aws {
                action: "read the log group",
                resource: "g".into(),
                answered_by: "aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsError",
                code: Some("ThrottlingException".into()),
                message: "Rate exceeded".into(),
                source: None,
            })
        };
        for _ in 0..10 {
            assert!(pace.after(throttled()).expect("throttling is not an error").is_none());
        }
        assert_eq!(pace.now, MAX_PAUSE);
        assert_eq!(pace.after(Ok::<u8, Error>(7)).expect("answered"), Some(7));
        assert_eq!(pace.now, Duration::from_secs(2));
        assert!(pace.after(Err::<u8, Error>(Error::Refused("no".into()))).is_err());
    }
}
