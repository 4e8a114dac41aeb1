//! `logs [--follow] [--since 10m|TIME] [--filter TEXT] [--task ID]`: the service's lines from its
//! log group `/ecs/<stack>`, oldest first, each with its time and task (the short id that ends
//! its awslogs stream `app/app/<task id>`). The app's JSON lines read as `LEVEL message k=v` on a
//! terminal; `--json` prints one object per line (the app's own JSON with `task` and `stream`
//! added, or `{timestamp, task, stream, message}` for a plain line).
//!
//! Following polls the group as `log_events` reads (one FilterLogEvents query across every
//! stream, so streams that appear during a deploy are picked up, with a look-back for lines
//! indexed late, each line printed once); throttling slows the polls down; Ctrl-C stops them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::context;
use crate::cli::{Cli, LogsArgs};
use crate::error::{AwsContext, Error};
use crate::exit;
pub use crate::log_events::Line;
use crate::log_events::{Cursor, Pace, fetch};
use crate::reconcile::Mode;
use crate::resources::logs;

const POLL: Duration = Duration::from_secs(2);

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

impl Query {
    /// The group-wide query: a task's stream prefix (`app/app/<id…>`) and the filter.
    fn of_group(&self) -> crate::log_events::Query {
        crate::log_events::Query {
            filter: self.filter.clone(),
            stream_prefix: self
                .task
                .as_ref()
                .map(|t| format!("{0}/{0}/{t}", crate::resources::service::task::CONTAINER)),
        }
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

pub async fn run(cli: &Cli, args: &LogsArgs) -> Result<u8, Error> {
    let (follow, since) = (args.follow, &args.since);
    let q = Query { filter: args.filter.clone(), task: args.task.clone() };
    let ctx = context(cli, Mode::Plan, Duration::from_secs(600)).await?;
    let group = logs::name(&ctx.stack);
    let start = since_ms(since, SystemTime::now())?;
    let mut cursor = Cursor::new(start);
    let wanted = q.clone();
    let q = q.of_group();
    let (first, _) = fetch(&ctx, &group, start, &q).await.map_err(|e| missing_group(e, &group, &ctx.stack.name))?;
    let lines = cursor.take(first);
    for l in &lines {
        print(l, cli.json);
    }
    if lines.is_empty() {
        say_nothing_found(&ctx, &group, &wanted, &q, start).await?;
    }
    if !follow {
        return Ok(exit::OK);
    }
    let stop = interrupted();
    tokio::pin!(stop);
    let mut pace = Pace::new(POLL);
    loop {
        tokio::select! {
            () = tokio::time::sleep(pace.now) => {}
            () = &mut stop => return Ok(exit::OK),
        }
        match pace.after(fetch(&ctx, &group, cursor.poll_from(), &q).await)? {
            Some((lines, _)) => {
                for l in cursor.take(lines) {
                    print(&l, cli.json);
                }
            }
            // Throttled beyond the SDK's retries: poll less often, keep going.
            None => eprintln!("note: CloudWatch Logs is throttling; polling every {}s", pace.now.as_secs()),
        }
    }
}

/// Says on stderr why nothing was printed: no line since `start` (exit 0), or, with `--task`, no
/// task of that id ever logged to the group (an error: the id is wrong).
async fn say_nothing_found(
    ctx: &crate::reconcile::Ctx,
    group: &str,
    wanted: &Query,
    q: &crate::log_events::Query,
    start: i64,
) -> Result<(), Error> {
    if let (Some(task), Some(prefix)) = (&wanted.task, &q.stream_prefix) {
        // The task's stream, if it ever logged here (listed by prefix; checked here too, as an
        // emulator may ignore the prefix).
        let streams = ctx.clients.logs.describe_log_streams().log_group_name(group).log_stream_name_prefix(prefix);
        let streams = streams.limit(1).send().await.ctx("list the log streams of", group);
        let streams = streams.map_err(|e| missing_group(e, group, &ctx.stack.name))?;
        let named = |s: &aws_sdk_cloudwatchlogs::types::LogStream| {
            s.log_stream_name().is_some_and(|n| n.starts_with(prefix.as_str()))
        };
        if !streams.log_streams().iter().any(named) {
            return Err(Error::Refused(format!(
                "no task {task} in this stack: no task whose id starts with {task} has logged to {group} (`provisioner \
                 status` shows the service; `logs` without --task prints every task's lines)"
            )));
        }
    }
    let filtered = wanted.filter.as_deref().map_or(String::new(), |f| format!(" matching {f:?}"));
    eprintln!("no log lines since {} in {group}{filtered}", time_text(start));
    if let Some(note) = crate::sandbox::note(crate::sandbox::Topic::Logs) {
        eprintln!("({note})");
    }
    Ok(())
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
    match crate::error::absent(Err::<(), Error>(e)) {
        Err(e) => e,
        Ok(_) => Error::Refused(format!(
            "the log group {group} does not exist: stack {stack} has not been created (run `up`)"
        )),
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
    fn since_takes_a_duration_or_a_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(since_ms("10m", now).expect("duration"), (1_000_000 - 600) * 1000);
        assert_eq!(since_ms("1970-01-02T00:00:00Z", now).expect("time"), 86_400_000);
        assert!(since_ms("yesterday", now).is_err());
    }
}
