//! `exec [--task ID] [--container NAME] [-- COMMAND…]`: a command (default `/bin/sh`) in one of
//! the service's running tasks through ECS Exec, the way the AWS CLI does it: ExecuteCommand,
//! then the session handed to `session-manager-plugin` with the task's target. The plugin is
//! looked for before anything else, so without it nothing is opened for nothing. Ctrl-C belongs
//! to the session while it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::context;
use crate::cli::{Cli, ExecArgs};
use crate::error::{AwsContext, Error};
use crate::reconcile::Mode;
use crate::resources::cluster;
use crate::resources::service::task::CONTAINER;

pub const PLUGIN: &str = "session-manager-plugin";

/// The plugin on `path` (a PATH value), if there.
pub fn find_plugin(path: &str) -> Option<PathBuf> {
    std::env::split_paths(path).map(|dir| dir.join(PLUGIN)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn no_plugin() -> Error {
    Error::Refused(format!(
        "{PLUGIN} is not on PATH: ECS Exec hands its session to it, as the AWS CLI does. Install it (Debian/Ubuntu: \
         download session-manager-plugin.deb from \
         https://s3.amazonaws.com/session-manager-downloads/plugin/latest/ubuntu_64bit/session-manager-plugin.deb and \
         `sudo dpkg -i` it; other systems: \
         https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html), \
         then run this again. No session was opened"
    ))
}

/// The running task to use: the one whose id starts with `wanted`, else the first.
pub fn choose_task<'a>(arns: &'a [String], wanted: Option<&str>) -> Result<&'a String, String> {
    let id = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_owned();
    match wanted {
        Some(w) => arns.iter().find(|a| id(a).starts_with(w)).ok_or_else(|| {
            let ids: Vec<String> = arns.iter().map(|a| id(a)).collect();
            format!("no running task of the service has an id starting with {w:?} (running: {})", ids.join(", "))
        }),
        None => arns.first().ok_or_else(|| "the service has no running task to open a session in".to_owned()),
    }
}

pub async fn run(cli: &Cli, args: &ExecArgs) -> Result<u8, Error> {
    let (task, container, command) = (args.task.as_deref(), args.container.as_deref(), &args.command);
    let plugin = find_plugin(&std::env::var("PATH").unwrap_or_default()).ok_or_else(no_plugin)?;
    let ctx = context(cli, Mode::Plan, Duration::from_secs(300)).await?;
    if !ctx.stack.service.exec {
        return Err(Error::Refused(
            "ECS Exec is off for this stack: set `service: { exec: true }` in the stack file and run `up` (its tasks \
             restart with the agent and their role gets the Session Manager permissions)"
                .into(),
        ));
    }
    let (cluster, service) = (cluster::name(&ctx.stack), crate::resources::service::name(&ctx.stack));
    let ecs = &ctx.clients.ecs;
    let listed = ecs
        .list_tasks()
        .cluster(&cluster)
        .service_name(&service)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .ctx("list the tasks of", &service)?;
    let task_arn = choose_task(listed.task_arns(), task).map_err(Error::Refused)?.clone();
    let container = container.unwrap_or(CONTAINER);
    let command = if command.is_empty() { "/bin/sh".to_owned() } else { command.join(" ") };
    let out = ecs
        .execute_command()
        .cluster(&cluster)
        .task(&task_arn)
        .container(container)
        .interactive(true)
        .command(&command)
        .send()
        .await
        .ctx("execute a command in", &task_arn)?;
    let session = out.session().ok_or_else(|| Error::Refused("ExecuteCommand answered without a session".into()))?;
    // The target names the container by its runtime id, from DescribeTasks.
    let described =
        ecs.describe_tasks().cluster(&cluster).tasks(&task_arn).send().await.ctx("describe task", &task_arn)?;
    let runtime_id = described
        .tasks()
        .first()
        .and_then(|t| t.containers().iter().find(|c| c.name() == Some(container)))
        .and_then(|c| c.runtime_id())
        .ok_or_else(|| Error::Refused(format!("task {task_arn} has no running container {container}")))?;
    let cluster_name = out.cluster_arn().unwrap_or(&cluster).rsplit('/').next().unwrap_or(&cluster).to_owned();
    let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_owned();
    let target = json!({ "Target": format!("ecs:{cluster_name}_{task_id}_{runtime_id}") });
    let session_json = json!({
        "sessionId": session.session_id(),
        "streamUrl": session.stream_url(),
        "tokenValue": session.token_value(),
    });
    let endpoint =
        ctx.clients.endpoint.clone().unwrap_or_else(|| format!("https://ecs.{}.amazonaws.com", ctx.clients.region));
    eprintln!("Opening `{command}` in {container} of task {task_id} (Ctrl-D or `exit` ends it)…");
    let mut child = tokio::process::Command::new(plugin)
        .arg(session_json.to_string())
        .arg(&ctx.clients.region)
        .arg("StartSession")
        .arg(std::env::var("AWS_PROFILE").unwrap_or_default())
        .arg(target.to_string())
        .arg(endpoint)
        .spawn()
        .map_err(|e| Error::Refused(format!("cannot start {PLUGIN}: {e}")))?;
    // Ctrl-C is the session's: the plugin passes it on to the command in the task.
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    .map_err(|e| Error::Refused(format!("{PLUGIN}: {e}")))?;
    Ok(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_chosen_by_the_start_of_its_id() {
        let arns = vec![
            "arn:aws:ecs:ap-northeast-1:1:task/konnichiwa/aaaa1111".to_owned(),
            "arn:aws:ecs:ap-northeast-1:1:task/konnichiwa/bbbb2222".to_owned(),
        ];
        assert_eq!(choose_task(&arns, None).expect("first"), &arns[0]);
        assert_eq!(choose_task(&arns, Some("bbbb")).expect("by id"), &arns[1]);
        let e = choose_task(&arns, Some("cccc")).expect_err("none");
        assert!(e.contains("running: aaaa1111, bbbb2222"), "{e}");
        assert!(choose_task(&[], None).is_err());
    }
}
