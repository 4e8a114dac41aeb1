//! The driver: runs the resource kinds in dependency order (independent ones concurrently),
//! passes each kind's outputs (ids, ARNs) to the kinds that need them, and tears down in reverse.

use serde::Serialize;

use crate::error::Error;
use crate::reconcile::{Ctx, Plan};
use crate::resources::network::{self, NetworkOutputs};

/// What the stack's resources expose to each other and to other tools (`provisioner outputs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outputs {
    pub network: NetworkOutputs,
}

/// Observes every kind, records changes in the plan, and in Apply mode makes them.
pub async fn reconcile(ctx: &Ctx) -> Result<(Plan, Outputs), Error> {
    let mut plan = Plan::default();
    let network = network::reconcile(ctx, &mut plan).await?;
    Ok((plan, Outputs { network }))
}

/// Deletes every kind in reverse dependency order (Plan mode lists what would go).
pub async fn teardown(ctx: &Ctx) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    network::teardown(ctx, &mut plan).await?;
    Ok(plan)
}

/// Anything still tagged with the stack after a teardown.
pub async fn sweep(ctx: &Ctx) -> Result<Vec<String>, Error> {
    network::leftovers(ctx).await
}
