//! Reading what a stack has, without planning it: each kind's `locate` (found by name, ownership
//! checked, nothing compared), all at once. For tools that need a few ids of a stack that `up`
//! made — `provisioner loadtest` needs seven — and not the seventy reads of a plan.

use serde::Serialize;

use crate::error::Error;
use crate::reconcile::Ctx;
use crate::resources::{cluster, ecr, iam, load_balancer, logs, network, secret};

/// What the stack has of what its services are run with; None (empty) for what does not exist.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Located {
    pub vpc_id: Option<String>,
    /// The public subnets, in name order (none without the VPC).
    pub subnet_ids: Vec<String>,
    pub execution_role_arn: Option<String>,
    pub cluster_arn: Option<String>,
    /// Where the service answers: with a domain, known before the load balancer exists.
    pub url: Option<String>,
    /// None also while the secret is scheduled for deletion.
    pub secret_arn: Option<String>,
    pub repository_uri: Option<String>,
    /// The log group's name (what the services log to; not read: its name is fixed).
    pub log_group: String,
}

/// Reads the stack's network, execution role, cluster, load balancer, secret and repository
/// concurrently (about nine calls, two deep).
pub async fn read_outputs(ctx: &Ctx) -> Result<Located, Error> {
    let (network, execution_role_arn, cluster_arn, url, secret_arn, repository_uri) = tokio::try_join!(
        network::locate(ctx),
        iam::locate_execution_role(ctx),
        cluster::locate(ctx),
        load_balancer::locate_url(ctx),
        secret::locate(ctx),
        ecr::locate(ctx),
    )?;
    let (vpc_id, subnet_ids) = network.map_or((None, Vec::new()), |(vpc, subnets)| (Some(vpc), subnets));
    Ok(Located {
        vpc_id,
        subnet_ids,
        execution_role_arn,
        cluster_arn,
        url,
        secret_arn,
        repository_uri,
        log_group: logs::name(&ctx.stack),
    })
}
