//! `logs [--follow] [--since 10m|TIME] [--filter TEXT] [--task ID]`: the service's lines from its
//! log group `/ecs/<stack>`, oldest first, each with its time and task (the short id that ends
//! its awslogs stream `app/app/<task id>`). The app's JSON lines read as `LEVEL message k=v` on a
//! terminal; `--json` prints one object per line (the app's own JSON with `task` and `stream`
//! added, or `{timestamp, task, stream, message}` for a plain line).
//!
//! Following polls FilterLogEvents across every stream of the group, so streams that appear
//! during a deploy (new tasks) are picked up, and stopped tasks' lines stay reachable. Each poll
//! looks back a while before the newest line seen, because CloudWatch can index a line later
//! than a newer one of another stream; lines already printed are known by their event id and not
//! printed again. Throttling slows the polls down; Ctrl-C stops them.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::context;
use crate::cli::Cli;
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::reconcile::{Ctx, Mode};
use crate::resources::logs;

/// How far each poll looks back before the newest line seen (late-indexed lines).
const LOOKBACK_MS: i64 = 120_000;
const POLL: Duration = Duration::from_secs(2);
const MAX_POLL: Duration = Duration::from_secs(30);

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub timestamp_ms: i64,
    pub event_id: String,
    pub stream: String,
    pub message: String,
}

/// The task a stream belongs to: the last part of `app/app/<task id>`.
pub fn task_of(stream: &str) -> &str {
    stream.rsplit('/').next().unwrap_or(stream)
}

fn short(task: &str) -> &str {
    &task[..task.len().min(8)]
}

fn time_text(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// A line for a person: `TIME TASK LEVEL message key=value …` for the app's JSON lines, the text
/// as it is otherwise.
pub fn render(line: &Line) -> String {
    let head = format!("{} {}", time_text(line.timestamp_ms), short(task_of(&line.stream)));
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(&line.message) else {
        return format!("{head} {}", line.message.trim_end());
    };
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let level = fields.remove("level").map(text).unwrap_or_default();
    let message = fields.remove("message").map(text).unwrap_or_default();
    fields.remove("timestamp");
    fields.remove("target");
    let rest: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}={}", text(v))).collect();
    let mut out = format!("{head} {level:<5} {message}");
    if !rest.is_empty() {
        out.push(' ');
        out.push_str(&rest.join(" "));
    }
    out
}

/// A line for a machine: the app's JSON with `task` and `stream` added, else the text wrapped.
pub fn to_json(line: &Line) -> Value {
    let task = task_of(&line.stream);
    match serde_json::from_str::<Value>(&line.message) {
        Ok(Value::Object(mut fields)) => {
            fields.insert("task".into(), json!(task));
            fields.insert("stream".into(), json!(line.stream));
            fields.entry("timestamp").or_insert_with(|| json!(time_text(line.timestamp_ms)));
            Value::Object(fields)
        }
        _ => json!({
            "timestamp": time_text(line.timestamp_ms),
            "task": task,
            "stream": line.stream,
            "message": line.message.trim_end(),
        }),
    }
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub filter: Option<String>,
    /// A task id or its first characters.
    pub task: Option<String>,
}

/// Every line of `group` from `start_ms` on (all pages), oldest first.
pub async fn fetch(ctx: &Ctx, group: &str, start_ms: i64, q: &Query) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = ctx.clients.logs.filter_log_events().log_group_name(group).start_time(start_ms);
        if let Some(f) = &q.filter {
            // CloudWatch's filter syntax: a quoted term matches it as written.
            req = req.filter_pattern(format!("\"{}\"", f.replace('"', "")));
        }
        if let Some(t) = &q.task {
            req = req.log_stream_name_prefix(format!("{0}/{0}/{t}", crate::resources::service::task::CONTAINER));
        }
        let out = req.set_next_token(token.clone()).send().await.ctx("read the log group", group)?;
        for e in out.events() {
            let stream = e.log_stream_name().unwrap_or_default().to_owned();
            if q.task.as_deref().is_some_and(|t| !task_of(&stream).starts_with(t)) {
                continue;
            }
            if q.filter.as_deref().is_some_and(|f| !e.message().unwrap_or_default().contains(f)) {
                continue;
            }
            lines.push(Line {
                timestamp_ms: e.timestamp().unwrap_or_default(),
                event_id: e.event_id().unwrap_or_default().to_owned(),
                stream,
                message: e.message().unwrap_or_default().to_owned(),
            });
        }
        token = out.next_token().map(str::to_owned).filter(|t| Some(t.as_str()) != token.as_deref());
        if token.is_none() {
            break;
        }
    }
    lines.sort_by(|a, b| (a.timestamp_ms, &a.stream, &a.event_id).cmp(&(b.timestamp_ms, &b.stream, &b.event_id)));
    Ok(lines)
}

/// What a follow has printed: the newest timestamp and the ids printed within the look-back.
#[derive(Debug, Default)]
pub struct Cursor {
    /// `--since`: nothing older is ever printed.
    since_ms: i64,
    pub newest_ms: i64,
    printed: HashSet<String>,
    by_time: BTreeSet<(i64, String)>,
}

impl Cursor {
    pub fn new(since_ms: i64) -> Self {
        Self { since_ms, newest_ms: since_ms, ..Self::default() }
    }

    /// Where the next poll starts: a look-back before the newest line, never before `--since`.
    pub fn poll_from(&self) -> i64 {
        (self.newest_ms - LOOKBACK_MS).max(self.since_ms)
    }

    /// The lines of a poll not printed before, in order; remembers them.
    pub fn take(&mut self, lines: Vec<Line>) -> Vec<Line> {
        let fresh: Vec<Line> = lines.into_iter().filter(|l| !self.printed.contains(&l.event_id)).collect();
        for l in &fresh {
            self.printed.insert(l.event_id.clone());
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
            self.printed.remove(&first.1);
        }
        fresh
    }
}

/// `--since`: a duration before now (`10m`) or a time (`2026-11-28T09:00:00Z`).
pub fn since_ms(since: &str, now: SystemTime) -> Result<i64, Error> {
    let at = match stack::parse_duration(since) {
        Ok(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
        Err(_) => humantime::parse_rfc3339_weak(since).map_err(|_| {
            Error::Usage(format!("--since {since:?} is neither a duration (10m, 2h) nor a time (2026-11-28T09:00:00Z)"))
        })?,
    };
    Ok(at.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

fn print(line: &Line, json: bool) {
    if json {
        println!("{}", to_json(line));
    } else {
        println!("{}", render(line));
    }
}

pub async fn run(cli: &Cli, follow: bool, since: &str, q: Query) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, Duration::from_secs(600)).await?;
    let group = logs::name(&ctx.stack);
    let start = since_ms(since, SystemTime::now())?;
    let mut cursor = Cursor::new(start);
    let first = fetch(&ctx, &group, start, &q).await.map_err(|e| missing_group(e, &group, &ctx.stack.name))?;
    for l in cursor.take(first) {
        print(&l, cli.json);
    }
    if !follow {
        return Ok(exit::OK);
    }
    let stop = interrupted();
    tokio::pin!(stop);
    let mut pause = POLL;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut stop => return Ok(exit::OK),
        }
        match fetch(&ctx, &group, cursor.poll_from(), &q).await {
            Ok(lines) => {
                pause = POLL;
                for l in cursor.take(lines) {
                    print(&l, cli.json);
                }
            }
            // Throttled beyond the SDK's retries: poll less often, keep going.
            Err(e) if e.code().is_some_and(|c| c.contains("Throttling")) => {
                pause = (pause * 2).min(MAX_POLL);
                eprintln!("note: CloudWatch Logs is throttling; polling every {}s", pause.as_secs());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

fn missing_group(e: Error, group: &str, stack: &str) -> Error {
    if e.code() == Some("ResourceNotFoundException") {
        Error::Refused(format!("the log group {group} does not exist: stack {stack} has not been created (run `up`)"))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: i64, id: &str, stream: &str, message: &str) -> Line {
        Line { timestamp_ms: ms, event_id: id.into(), stream: stream.into(), message: message.into() }
    }

    #[test]
    fn the_apps_json_lines_read_as_level_message_and_fields() {
        let l = line(
            0,
            "1",
            "app/app/0123456789abcdef",
            r#"{"timestamp":"2026-11-28T00:00:00Z","level":"INFO","message":"request","target":"app","path":"/","status":200}"#,
        );
        assert_eq!(render(&l), "1970-01-01T00:00:00.000Z 01234567 INFO  request path=/ status=200");
        let j = to_json(&l);
        assert_eq!((j["task"].as_str(), j["status"].as_i64()), (Some("0123456789abcdef"), Some(200)));
        let plain = line(1500, "2", "app/app/abc", "panic: something\n");
        assert_eq!(render(&plain), "1970-01-01T00:00:01.500Z abc panic: something");
        assert_eq!(to_json(&plain)["message"], "panic: something");
    }

    #[test]
    fn a_follow_prints_each_line_once_even_when_indexed_late() {
        let mut c = Cursor::new(0);
        let a = line(10_000, "a", "s1", "a");
        let b = line(20_000, "b", "s1", "b");
        assert_eq!(c.take(vec![a.clone(), b.clone()]).len(), 2);
        // The next poll returns them again, and a line of another stream indexed late.
        let late = line(15_000, "late", "s2", "late");
        let got = c.take(vec![a, late.clone(), b]);
        assert_eq!(got, [late]);
        assert!(c.poll_from() <= 15_000, "the look-back covers late lines");
        let quiet = Cursor::new(600_000);
        assert_eq!(quiet.poll_from(), 600_000, "never before --since, even with no line yet");
    }

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(since_ms("10m", now).expect("duration"), (1_000_000 - 600) * 1000);
        assert_eq!(since_ms("1970-01-02T00:00:00Z", now).expect("time"), 86_400_000);
        assert!(since_ms("yesterday", now).is_err());
    }
}
