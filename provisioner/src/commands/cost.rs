//! `cost`: the monthly estimate of stack.yaml's stack; with --refresh-prices, first the region's
//! current prices from the Price List API (kept for later runs), or the snapshot when the API
//! cannot be reached or is not permitted, saying so.

use super::answer;
use crate::aws::Clients;
use crate::cli::{Cli, CostArgs};
use crate::cost::{self, Breakdown, PriceBook};
use crate::error::Error;
use crate::exit;

pub async fn run(cli: &Cli, args: &CostArgs) -> Result<u8, Error> {
    let stack = super::load_stack(cli)?;
    let mut refresh_notes = Vec::new();
    if args.refresh_prices {
        refresh_notes = refresh(&stack).await?;
    }
    let breakdown = Breakdown::of(&stack);
    if cli.json {
        answer::print("cost", Some(&stack.name), Costed { breakdown: &breakdown, refresh_notes: &refresh_notes });
    } else {
        refresh_notes.iter().for_each(|n| eprintln!("{n}"));
        print!("{}", cost::render_breakdown(&breakdown));
    }
    Ok(exit::OK)
}

/// `cost --json`.
#[derive(serde::Serialize)]
struct Costed<'a> {
    #[serde(flatten)]
    breakdown: &'a Breakdown,
    /// What --refresh-prices could not fetch, and why.
    refresh_notes: &'a [String],
}

/// Fetches the prices the stack needs (and every one the snapshot has) and keeps them, over the
/// prices kept before. An API that answers nothing leaves the kept prices as they were and says why.
async fn refresh(stack: &stack::Stack) -> Result<Vec<String>, Error> {
    let clients = Clients::load(&stack.region).await?;
    clients.check_credentials().await?;
    let mut names: Vec<String> = PriceBook::snapshot().prices.into_keys().collect();
    let ec2 = format!("ec2:{}", stack.capacity.instance_type);
    if !names.contains(&ec2) {
        names.push(ec2);
    }
    let (kept, provenance) = PriceBook::for_region(&stack.region);
    let (mut fetched, mut notes) = match cost::fetch(&clients, &stack.region, &names).await {
        Ok(found) => found,
        Err(e) => return Ok(vec![format!("The Price List API did not answer ({e:#}): using {provenance}.")]),
    };
    if fetched.prices.is_empty() {
        notes.insert(0, "The Price List API returned no price: the kept prices are unchanged.".into());
        return Ok(notes);
    }
    // A price the API could not single out keeps the value it had (from the snapshot or an
    // earlier fetch), so that no line item loses its price.
    for (name, usd) in kept.prices {
        fetched.prices.entry(name).or_insert(usd);
    }
    let path = fetched.save().map_err(|e| Error::Usage(format!("cannot keep the fetched prices: {e}")))?;
    notes.insert(
        0,
        format!("Fetched {} prices from the AWS Price List API into {}.", fetched.prices.len(), path.display()),
    );
    Ok(notes)
}
