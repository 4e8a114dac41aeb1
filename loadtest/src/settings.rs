//! A run's settings, resolved once from the flags and stack.yaml's `loadtest:` and `slo:`
//! sections (flags win), and written back as an explicit command line: what a worker of
//! `provisioner loadtest` is told, with its share of the load and no file to read.

use std::time::Duration;

use crate::cli::{OutputArgs, RunArgs};
use crate::engine::Model;
use crate::header::{self, Header};
use crate::scenario::{self, Endpoint, Mix, Request};
use crate::slo::{self, Objective};
use crate::stages::{Shape, Stage};

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub host: Option<String>,
    pub shape: Shape,
    /// How long a `--rate` or `--users` run lasts (stages carry their own).
    pub duration: Duration,
    pub connections: Option<u32>,
    pub think_time: Option<(Duration, Duration)>,
    pub timeout: Duration,
    pub mix: Mix,
    pub objectives: Vec<Objective>,
    pub slo_stage: Option<String>,
    /// `--abort-on-fail` with its window.
    pub abort_window: Option<Duration>,
    pub threads: u16,
    /// `--send-key-over-http`: the key may go to a plain-http URL of another machine.
    pub send_key_over_http: bool,
    /// `--header`: added to every request, replacing a request's own header of the same name.
    pub headers: Vec<Header>,
}

/// The objectives (`--slo`, else stack.yaml's `slo:`) and the stage they are judged on
/// (`--slo-stage`, else `loadtest.slo_stage`; None: the whole run).
pub fn judged_by(output: &OutputArgs, stack: Option<&stack::ToolSections>) -> (Vec<Objective>, Option<String>) {
    let objectives = if output.slos.is_empty() {
        slo::from_stack(&stack.map(|s| s.slo.clone()).unwrap_or_default())
    } else {
        output.slos.clone()
    };
    let stage = output.slo_stage.clone().or_else(|| stack?.loadtest.as_ref()?.slo_stage.clone());
    (objectives, stage)
}

/// The requests: `--endpoint`, `--scenario` or `--request` (flags win), else stack.yaml's
/// `loadtest.scenario` or `loadtest.endpoints`, else the Konnichiwa mix.
fn mix(args: &RunArgs, section: &stack::Loadtest) -> Result<Mix, String> {
    if !args.endpoints.is_empty() {
        return Ok(Mix::Endpoints(args.endpoints.clone()));
    }
    if let Some(file) = &args.scenario {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read the scenario {}: {e} (--scenario names a YAML file)", file.display()))?;
        return stack::scenario_from_yaml(&text, file).map(Mix::Scenario).map_err(|e| e.to_string());
    }
    if !args.requests.is_empty() {
        let problems = stack::validate::scenario(&args.requests, "--request");
        if !problems.is_empty() {
            let said: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
            return Err(said.join("; "));
        }
        return Ok(Mix::Scenario(args.requests.clone()));
    }
    Ok(if !section.scenario.is_empty() {
        Mix::Scenario(section.scenario.clone())
    } else if !section.endpoints.is_empty() {
        Mix::Endpoints(
            section
                .endpoints
                .iter()
                .map(|e| Endpoint { path: e.path.clone(), weight: e.weight, auth: e.auth })
                .collect(),
        )
    } else {
        Mix::Endpoints(scenario::default_mix())
    })
}

impl Settings {
    pub fn resolve(args: &RunArgs, stack: Option<&stack::ToolSections>) -> Result<Settings, String> {
        let section = stack.and_then(|s| s.loadtest.clone()).unwrap_or_default();
        let duration = args
            .duration
            .or(section.duration.as_ref().map(stack::HumanDuration::get))
            .unwrap_or(Duration::from_secs(60));
        if duration.is_zero() {
            return Err("--duration must be longer than 0s".into());
        }
        let mix = mix(args, &section)?;
        let shape = if !args.stages.is_empty() {
            Shape::Stages(args.stages.clone())
        } else if let Some(rate) = args.rate {
            Shape::Rate(rate)
        } else if args.users.is_none() && !section.stages.is_empty() {
            let stages = section
                .stages
                .iter()
                .enumerate()
                .map(|(i, s)| Stage::parse(s).map_err(|e| format!("stack file loadtest.stages[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            Shape::Stages(stages)
        } else {
            let users = args.users.or(section.users).unwrap_or(10);
            if users == 0 {
                return Err("--users must be at least 1".into());
            }
            let spawn_rate = args.spawn_rate.or(section.spawn_rate).unwrap_or(f64::from(users));
            if spawn_rate <= 0.0 || !spawn_rate.is_finite() {
                return Err("--spawn-rate must be a positive number of users per second".into());
            }
            Shape::Users { users, spawn_rate }
        };
        let profile = shape.profile(duration)?;
        if profile.unit == crate::stages::Unit::Rate && args.think_time.is_some() {
            return Err("--think-time is for users (closed model): an arrival rate sets its own pace".into());
        }
        let (objectives, slo_stage) = judged_by(&args.output, stack);
        if let Some(name) = &slo_stage
            && !profile.spans.iter().any(|s| &s.name == name)
        {
            let names: Vec<&str> = profile.spans.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("--slo-stage {name:?} is not a stage of this run (its stages: {})", names.join(", ")));
        }
        Ok(Settings {
            host: args.host.clone(),
            shape,
            duration,
            connections: args.connections,
            think_time: args.think_time,
            timeout: args.timeout,
            mix,
            objectives,
            slo_stage,
            abort_window: args.abort_on_fail.then_some(args.abort_window),
            threads: args.threads,
            send_key_over_http: args.send_key_over_http,
            headers: args.headers.clone(),
        })
    }

    /// The requests to send: the mix's, each with the `--header`s.
    pub fn requests(&self) -> Result<Vec<Request>, String> {
        let mut requests = self.mix.requests()?;
        header::apply(&mut requests, &self.headers);
        Ok(requests)
    }

    /// The load model, with its profile.
    pub fn model(&self) -> Result<Model, String> {
        let profile = self.shape.profile(self.duration)?;
        Ok(match profile.unit {
            crate::stages::Unit::Rate => {
                let connections =
                    self.connections.unwrap_or(((profile.peak() / 10.0).ceil() as u32).clamp(10, 1000)).max(1);
                Model::Open { profile, connections }
            }
            crate::stages::Unit::Users => Model::Closed { profile, think_time: self.think_time },
        })
    }

    /// The command line of worker `index` of `workers` that share this run: its share of the
    /// load, everything else as resolved here, to start at `start_at_ms` and print its result as
    /// log lines.
    pub fn worker_args(&self, index: u32, workers: u32, start_at_ms: u64) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut a: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            a.push(format!("--{name}"));
            a.push(value);
        };
        if let Some(host) = &self.host {
            flag("host", host.clone());
        }
        match self.shape.share(index, workers) {
            Shape::Rate(rate) => {
                flag("rate", format!("{rate}/s"));
                flag("duration", ms(self.duration));
            }
            Shape::Users { users, spawn_rate } => {
                flag("users", users.to_string());
                flag("spawn-rate", spawn_rate.to_string());
                flag("duration", ms(self.duration));
            }
            Shape::Stages(stages) => {
                for s in stages {
                    flag("stage", s.to_arg());
                }
            }
        }
        if let Some(c) = self.connections {
            flag("connections", c.div_ceil(workers.max(1)).to_string());
        }
        if let Some((lo, hi)) = self.think_time {
            flag("think-time", format!("{}..{}", ms(lo), ms(hi)));
        }
        flag("timeout", ms(self.timeout));
        match &self.mix {
            Mix::Endpoints(endpoints) => {
                for e in endpoints {
                    flag("endpoint", format!("{}={}", e.path, e.weight));
                }
            }
            // As written: `${API_KEY}` stays a reference, which the worker fills from its secret.
            Mix::Scenario(requests) => {
                for r in requests {
                    flag("request", serde_json::to_string(r).unwrap_or_default());
                }
            }
        }
        // As written: `${API_KEY}` stays a reference here too.
        for h in &self.headers {
            flag("header", h.to_arg());
        }
        for o in &self.objectives {
            flag("slo", o.text.clone());
        }
        if let Some(stage) = &self.slo_stage {
            flag("slo-stage", stage.clone());
        }
        if let Some(window) = self.abort_window {
            flag("abort-window", ms(window));
        }
        flag("threads", self.threads.to_string());
        flag("start-at", start_at_ms.to_string());
        if self.abort_window.is_some() {
            a.push("--abort-on-fail".into());
        }
        if self.send_key_over_http {
            a.push("--send-key-over-http".into());
        }
        a.push("--result-lines".into());
        a
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn settings(args: &[&str]) -> Settings {
        let cli = Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).expect("flags");
        Settings::resolve(&cli.run, None).expect("settings")
    }

    #[test]
    fn a_worker_command_line_reads_back_as_its_share() {
        let whole = settings(&[
            "--host",
            "https://api.example.com",
            "--stage",
            "warmup=30s:90/s",
            "--stage",
            "hold=1m:900/s",
            "--slo",
            "p95<250ms",
            "--slo-stage",
            "hold",
            "--abort-on-fail",
            "--endpoint",
            "/health=3",
            "--endpoint",
            "/inspect",
            "--header",
            "X-Canary: green",
            "--header",
            "Authorization: Bearer ${API_KEY}",
        ]);
        let args = whole.worker_args(1, 3, 1_700_000_000_000);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let worker = settings(&refs);
        assert_eq!(worker.shape, whole.shape.share(1, 3));
        let Shape::Stages(stages) = &worker.shape else { panic!("stages") };
        assert_eq!((stages[1].name.as_str(), stages[1].target), ("hold", 300.0));
        assert_eq!(worker.mix, whole.mix);
        assert!(matches!(&worker.mix, Mix::Endpoints(e) if e[1].auth));
        assert_eq!((worker.objectives.clone(), worker.slo_stage.clone()), (whole.objectives.clone(), whole.slo_stage));
        assert_eq!(worker.abort_window, Some(Duration::from_secs(10)));
        assert_eq!(worker.headers, whole.headers, "the headers reach the workers");
        assert_eq!(worker.headers.len(), 2);
        assert!(args.iter().any(|a| a == "Authorization: Bearer ${API_KEY}"), "a reference, not a key: {args:?}");
        let sent = worker.requests().expect("requests");
        assert!(sent.iter().all(|r| r.headers.contains(&("X-Canary".to_owned(), "green".to_owned()))), "{sent:?}");
        let cli = Cli::try_parse_from(std::iter::once("loadtest").chain(refs.iter().copied())).expect("flags");
        assert_eq!((cli.run.start_at, cli.run.result_lines), (Some(1_700_000_000_000), true));

        let users = settings(&["--users", "10", "--spawn-rate", "5", "--duration", "90s", "--think-time", "1s..2s"]);
        let args = users.worker_args(0, 4, 0);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let worker = settings(&refs);
        assert_eq!(worker.shape, Shape::Users { users: 3, spawn_rate: 1.5 });
        assert_eq!((worker.duration, worker.think_time), (users.duration, users.think_time));
    }

    #[test]
    fn a_scenario_reaches_the_workers_whole_with_the_key_as_a_reference() {
        let file = std::env::temp_dir().join(format!("konnichiwa-settings-{}-scenario.yaml", std::process::id()));
        let text = "- name: order\n  method: POST\n  path: /orders\n  headers: { Authorization: 'Bearer ${API_KEY}' }\n  \
                    body: '{\"n\": 1}'\n  weight: 3\n  think_time: 1s..2s\n  check: { status: [201, 3xx], body_contains: id }\n\
                    - path: /health\n";
        std::fs::write(&file, text).expect("write");
        let whole = settings(&["--rate", "10/s", "--scenario", &file.to_string_lossy()]);
        let _ = std::fs::remove_file(&file);
        let Mix::Scenario(requests) = &whole.mix else { panic!("a scenario: {:?}", whole.mix) };
        assert_eq!((requests.len(), whole.mix.sends_key()), (2, true));
        let args = whole.worker_args(0, 2, 0);
        assert!(args.iter().any(|a| a.contains("Bearer ${API_KEY}")), "a reference, not a key: {args:?}");
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(settings(&refs).mix, whole.mix, "the worker reads the same requests back");
    }

    #[test]
    fn one_form_of_mix_at_a_time_and_bad_requests_are_named() {
        for flags in [
            ["--endpoint", "/", "--scenario", "s.yaml"],
            ["--endpoint", "/", "--request", r#"{"path": "/"}"#],
            ["--scenario", "s.yaml", "--request", r#"{"path": "/"}"#],
        ] {
            let e = Cli::try_parse_from(std::iter::once("loadtest").chain(flags)).expect_err("conflict").to_string();
            assert!(e.contains("cannot be used with"), "{flags:?}: {e}");
        }
        let cli = Cli::try_parse_from(["loadtest", "--request", r#"{"path": "x", "weight": 0}"#]).expect("flags");
        let e = Settings::resolve(&cli.run, None).unwrap_err();
        assert!(e.contains("--request[0].path: \"x\" must start with /") && e.contains("--request[0].weight"), "{e}");
        let cli = Cli::try_parse_from(["loadtest", "--scenario", "/nonexistent/s.yaml"]).expect("flags");
        let e = Settings::resolve(&cli.run, None).unwrap_err();
        assert!(e.contains("cannot read the scenario /nonexistent/s.yaml"), "{e}");
    }

    #[test]
    fn an_unknown_slo_stage_and_think_time_with_a_rate_are_refused() {
        let cli = Cli::try_parse_from(["loadtest", "--stage", "a=1s:5/s", "--slo-stage", "b"]).expect("flags");
        let e = Settings::resolve(&cli.run, None).unwrap_err();
        assert!(e.contains("--slo-stage \"b\" is not a stage of this run (its stages: a)"), "{e}");
        let cli = Cli::try_parse_from(["loadtest", "--stage", "1s:5/s", "--think-time", "1s"]).expect("flags");
        assert!(Settings::resolve(&cli.run, None).unwrap_err().contains("--think-time is for users"));
    }
}
