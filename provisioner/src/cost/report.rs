//! The estimate as `plan` ends with it (after the change, and the difference from now) and as
//! `provisioner cost` prints it (the breakdown with its assumptions); and a load test's price.

use serde::Serialize;
use stack::schema::CostAssumptions;

use super::estimate::{Estimate, cents, estimate};
use super::prices::{PriceBook, Provenance};
use super::sizing::Sizing;
use crate::reconcile::Plan;

/// `provisioner cost`: the stack as stack.yaml describes it.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub region: String,
    pub prices: Provenance,
    pub assumptions: CostAssumptions,
    #[serde(flatten)]
    pub estimate: Estimate,
}

impl Breakdown {
    pub fn of(stack: &stack::Stack) -> Self {
        let (book, prices) = PriceBook::for_region(&stack.region);
        Self::with_prices(stack, &book, prices)
    }

    pub fn with_prices(stack: &stack::Stack, book: &PriceBook, prices: Provenance) -> Self {
        let estimate = estimate(&Sizing::wanted(stack), &stack.cost, book);
        Self { region: stack.region.clone(), prices, assumptions: stack.cost.clone(), estimate }
    }
}

/// The end of `plan`: the stack after the change, now, and the difference.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub prices: Provenance,
    pub assumptions: CostAssumptions,
    /// After the plan is applied.
    pub after: Estimate,
    pub now: Estimate,
    pub change_usd: f64,
    pub change_at_full_scale_usd: f64,
}

impl Compared {
    /// `group_desired`: the Auto Scaling group's desired capacity when it exists, which `up` leaves
    /// to ECS's managed scaling: it stands for `capacity.desired` now and after.
    pub fn of(stack: &stack::Stack, plan: &Plan, group_desired: Option<u32>) -> Self {
        let (book, prices) = PriceBook::for_region(&stack.region);
        let (mut wanted, mut now) = (Sizing::wanted(stack), Sizing::now(stack, plan));
        if let Some(desired) = group_desired {
            wanted.capacity.1 = desired;
            now.capacity.1 = desired;
        }
        let after = estimate(&wanted, &stack.cost, &book);
        let now = estimate(&now, &stack.cost, &book);
        Self {
            prices,
            assumptions: stack.cost.clone(),
            change_usd: cents(after.monthly_usd - now.monthly_usd),
            change_at_full_scale_usd: cents(after.at_full_scale_usd - now.at_full_scale_usd),
            after,
            now,
        }
    }
}

fn usd(v: Option<f64>) -> String {
    v.map_or_else(|| "no price".into(), amount)
}

/// Two decimals, never `-0.00`.
pub fn amount(v: f64) -> String {
    format!("{:.2}", if v.abs() < 0.005 { 0.0 } else { v })
}

fn signed(v: f64) -> String {
    if v.abs() < 0.005 { "±0".into() } else { format!("{v:+.2}") }
}

/// One line of the table: the item, what is counted (padded to `width`), USD, and in a plan the
/// change.
fn line(width: usize, item: &str, quantity: &str, usd: &str, change: &str) -> String {
    let text = format!("  {item:<28}  {quantity:<width$}  {usd:>9}  {change:>9}");
    text.trim_end().to_owned() + "\n"
}

/// The quantity column's width: the widest of the items' and of `others`.
fn width(e: &Estimate, others: &[&str]) -> usize {
    e.items
        .iter()
        .map(|i| i.quantity.as_str())
        .chain(others.iter().copied())
        .map(|q| q.chars().count())
        .max()
        .unwrap_or(0)
}

fn assumptions(a: &CostAssumptions) -> String {
    format!(
        "Assumes {} requests/s averaged over the month, {} KiB responses, {} GiB of logs a month, {} MiB images \
         (`cost:` in stack.yaml); 730 hours a month.",
        a.requests_per_second, a.response_kib, a.log_gib_per_month, a.image_mib
    )
}

/// What a canary, linear or blue/green deployment is assumed to take, when the strategy is one.
fn deployments(e: &Estimate, a: &CostAssumptions) -> String {
    let Some(w) = &e.deployment_window else { return String::new() };
    format!(
        "Each {} deployment runs both revisions {}: {} deploys a month (`cost.deploys_per_month`); an \
         extra instance is counted {} min more, until managed scaling removes it.\n",
        w.strategy,
        w.describe(),
        a.deploys_per_month,
        w.scale_in_minutes
    )
}

fn missing(e: &Estimate) -> String {
    if e.missing_prices.is_empty() {
        return String::new();
    }
    format!(
        "No price for {} (counted as 0): `provisioner cost --refresh-prices` fetches them.\n",
        e.missing_prices.join(", ")
    )
}

/// `plan`'s closing section.
pub fn render_compared(c: &Compared) -> String {
    let (_, full) = c.after.instances;
    let at_full = format!("{full} instances");
    let w = width(&c.after, &[&at_full]).max(width(&c.now, &[]));
    let mut out = format!("\nMonthly estimate, USD (prices: {}):\n", c.prices);
    for item in &c.after.items {
        let before = c.now.items.iter().find(|i| i.item == item.item).and_then(|i| i.monthly_usd).unwrap_or(0.0);
        let change = item.monthly_usd.map_or_else(String::new, |m| signed(m - before));
        out += &line(w, item.item, &item.quantity, &usd(item.monthly_usd), &change);
    }
    for gone in c.now.items.iter().filter(|i| !c.after.items.iter().any(|a| a.item == i.item)) {
        out += &line(w, gone.item, "(removed)", "0.00", &signed(-gone.monthly_usd.unwrap_or(0.0)));
    }
    let total = line(w, "total", "", &amount(c.after.monthly_usd), &signed(c.change_usd));
    out += &format!("{}   (now {})\n", total.trim_end(), amount(c.now.monthly_usd));
    out += &line(w, "at full scale", &at_full, &amount(c.after.at_full_scale_usd), &signed(c.change_at_full_scale_usd));
    out + &missing(&c.after) + &deployments(&c.after, &c.assumptions) + &assumptions(&c.assumptions) + "\n"
}

/// `provisioner cost`.
pub fn render_breakdown(b: &Breakdown) -> String {
    let e = &b.estimate;
    let (quiet, full) = e.instances;
    let at_full = format!("{full} instances (quietest: {quiet})");
    let w = width(e, &[&at_full]);
    let mut out = format!("Monthly estimate for {}, USD (prices: {}):\n", b.region, b.prices);
    for item in &e.items {
        let full = match (item.monthly_usd, item.at_full_scale_usd) {
            (Some(m), Some(f)) if (f - m).abs() >= 0.005 => format!("(full scale {f:.2})"),
            _ => String::new(),
        };
        out += &line(w, item.item, &item.quantity, &usd(item.monthly_usd), &full);
    }
    out += &line(w, "total", "", &amount(e.monthly_usd), "");
    out += &line(w, "at full scale", &at_full, &amount(e.at_full_scale_usd), "");
    out += &missing(e);
    out += &deployments(e, &b.assumptions);
    out += &assumptions(&b.assumptions);
    out += "\nNot included: ";
    out += &e.excludes.join("; ");
    out + ".\n"
}

/// What a Fargate load test costs: (USD, how it was counted). Fargate bills by the second with
/// a one-minute minimum, per worker.
pub fn fargate_run(
    book: &PriceBook,
    workers: u32,
    cpu: u32,
    memory: u32,
    seconds: u64,
    arm64: bool,
) -> (Option<f64>, String) {
    let family = if arm64 { "fargate-arm" } else { "fargate" };
    let (vcpu, gb) = (book.get(&format!("{family}:vcpu")), book.get(&format!("{family}:gb")));
    let hours = seconds.max(60) as f64 / 3600.0;
    let (vcpus, gib) = (f64::from(cpu) / 1024.0, f64::from(memory) / 1024.0);
    let usd = vcpu.zip(gb).map(|(v, g)| f64::from(workers) * hours * (vcpus * v + gib * g));
    let how = format!("{workers} workers × ({vcpus} vCPU + {gib} GB) × {:.1} min", hours * 60.0);
    (usd, how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_print_without_negative_zeros_and_changes_with_their_sign() {
        assert_eq!(amount(-0.0), "0.00");
        assert_eq!(amount(-0.001), "0.00");
        assert_eq!(amount(85.187), "85.19");
        assert_eq!(signed(0.001), "±0");
        assert_eq!(signed(-5.76), "-5.76");
        assert_eq!(signed(39.71), "+39.71");
    }

    #[test]
    fn the_breakdown_says_what_a_deployment_window_is_made_of_only_when_there_is_one() {
        let mut stack = crate::resources::test_stack();
        let book = PriceBook::snapshot();
        let provenance = || Provenance { kind: "snapshot", as_of: String::new(), age_days: None, path: None };
        let text = render_breakdown(&Breakdown::with_prices(&stack, &book, provenance()));
        assert!(!text.contains("deploy"), "{text}");
        stack.service.deployment.strategy = stack::schema::Strategy::Linear;
        let text = render_breakdown(&Breakdown::with_prices(&stack, &book, provenance()));
        assert!(
            text.contains("deploy windows (linear)       20 deploys (assumed) × 70 min × 0 extra t3.small (up to 1)"),
            "{text}"
        );
        assert!(
            text.contains(
                "Each linear deployment runs both revisions 1m gate + 54m step bakes + 10m final bake + 5m scale-up \
                 and drain = 70 min: 20 deploys a month (`cost.deploys_per_month`)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_fargate_run_bills_a_minute_at_least() {
        let book = PriceBook::snapshot();
        let (usd, how) = fargate_run(&book, 3, 1024, 2048, 4, false);
        assert!((usd.expect("priced") - 3.0 * (0.05056 + 2.0 * 0.00553) / 60.0).abs() < 1e-9, "{how}");
        assert!(how.ends_with("× 1.0 min"), "{how}");
        let (arm, _) = fargate_run(&book, 1, 1024, 2048, 3600, true);
        assert!((arm.expect("priced") - (0.04045 + 2.0 * 0.00442)).abs() < 1e-9);
    }
}
