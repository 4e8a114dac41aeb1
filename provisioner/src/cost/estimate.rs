//! The monthly estimate: one line item per billed part, each its quantity times a price, with the
//! figure at full scale where scaling changes it.

use serde::Serialize;
use stack::schema::CostAssumptions;

use super::deployments::Window;
use super::prices::PriceBook;
use super::sizing::Sizing;

/// Hours in the average month, as AWS's calculator counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Gzip-compressed bytes an access-log entry takes in S3.
const ACCESS_LOG_BYTES_PER_REQUEST: f64 = 60.0;
/// A load balancer node writes an access-log file every 5 minutes.
const ACCESS_LOG_FILES_PER_NODE_HOUR: f64 = 12.0;
/// Average request size the load balancer processes, besides the response.
const REQUEST_KIB: f64 = 0.5;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// One billed part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineItem {
    pub item: &'static str,
    /// What is counted, in words (`2 × t3.small × 730 h`).
    pub quantity: String,
    /// USD a month; None when the price is missing.
    pub monthly_usd: Option<f64>,
    /// USD a month at full scale (`autoscaling.max` tasks on the instances they need).
    pub at_full_scale_usd: Option<f64>,
}

/// The stack's monthly cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub items: Vec<LineItem>,
    pub monthly_usd: f64,
    pub at_full_scale_usd: f64,
    /// Instances at the quietest and at full scale.
    pub instances: (u32, u32),
    /// How long each deployment of a canary, linear or blue/green strategy runs both revisions
    /// (null under `rolling`), and the instances it adds at the quietest and at full scale.
    pub deployment_window: Option<Window>,
    pub deployment_extra_instances: (u32, u32),
    /// Prices the book lacks (their items count as 0 in the totals).
    pub missing_prices: Vec<String>,
    /// What the figure leaves out.
    pub excludes: Vec<&'static str>,
}

/// Left out of every estimate.
const EXCLUDED: &[&str] = &[
    "free tiers (e.g. the first 100 GB a month of data transfer out)",
    "taxes, Savings Plans and Reserved Instances",
    "Route 53 (the hosted zone is yours; alias queries to a load balancer are free), ACM public certificates (free), SNS notifications",
];

/// Estimates `sizing`'s monthly bill at `prices`, under `assume`.
pub fn estimate(sizing: &Sizing, assume: &CostAssumptions, prices: &PriceBook) -> Estimate {
    let mut b = Builder { prices, items: Vec::new(), missing: Vec::new() };
    let instances = instances(sizing);
    if let Some(t) = &sizing.instance_type {
        let (quiet, full) = instances;
        let ec2 = format!("ec2:{t}");
        let up_to = if full == quiet { String::new() } else { format!(" (up to {full})") };
        b.scaled("ec2 instances", format!("{quiet} × {t} × 730 h{up_to}"), &ec2, hours(quiet), hours(full));
        let gib = f64::from(sizing.root_volume_gib);
        let volumes = format!("{quiet} × {} GiB gp3{up_to}", sizing.root_volume_gib);
        b.scaled("ebs volumes", volumes, "ebs:gp3", f64::from(quiet) * gib, f64::from(full) * gib);
    }
    let instance_ips = if sizing.instance_type.is_some() { instances } else { (0, 0) };
    let lb_ips = if sizing.load_balancer { sizing.availability_zones } else { 0 };
    if instance_ips.1 + lb_ips > 0 {
        let (quiet, full) = (instance_ips.0 + lb_ips, instance_ips.1 + lb_ips);
        let up_to = if full == quiet { String::new() } else { format!(", up to {full}") };
        let what = format!("{quiet} × 730 h (instances, load balancer zones{up_to})");
        b.scaled("public ipv4", what, "public-ipv4", hours(quiet), hours(full));
    }
    deployment_bakes(&mut b, sizing, assume);
    if sizing.load_balancer {
        b.fixed("load balancer", "1 × 730 h".into(), "alb:hour", HOURS_PER_MONTH);
        let lcu = capacity_units(assume);
        b.fixed("load balancer capacity units", format!("{lcu:.2} LCU × 730 h"), "alb:lcu", lcu * HOURS_PER_MONTH);
    }
    if sizing.alarms > 0 {
        b.fixed("cloudwatch alarms", format!("{} alarms", sizing.alarms), "cloudwatch:alarm", f64::from(sizing.alarms));
    }
    if sizing.composite_alarms > 0 {
        let n = sizing.composite_alarms;
        b.fixed("cloudwatch composite alarms", format!("{n} alarms"), "cloudwatch:composite-alarm", f64::from(n));
    }
    if let Some(days) = sizing.log_days {
        let gib = assume.log_gib_per_month;
        b.fixed("log ingestion", format!("{gib} GiB"), "logs:ingested", gib);
        let stored = gib * f64::from(days) * 12.0 / 365.0;
        b.fixed("log storage", format!("{stored:.2} GiB ({days} days kept)"), "logs:stored", stored);
    }
    if sizing.secret {
        b.fixed("secret", "1 secret".into(), "secrets-manager:secret", 1.0);
    }
    if sizing.repository {
        let gib = f64::from(sizing.kept_images) * assume.image_mib / 1024.0;
        let what = format!("{gib:.2} GiB: {} images × {} MiB", sizing.kept_images, assume.image_mib);
        b.fixed("image storage", what, "ecr:stored", gib);
    }
    if let Some(days) = sizing.access_log_days {
        access_logs(&mut b, sizing, assume, days);
    }
    if sizing.load_balancer {
        let gib = monthly_requests(assume) * assume.response_kib * 1024.0 / GIB;
        b.fixed("data transfer out", format!("{gib:.1} GiB to the internet"), "data-transfer:out", gib);
    }
    let mut estimate = b.finish(instances);
    if let Some(window) = &sizing.deployment {
        estimate.deployment_window = Some(window.clone());
        estimate.deployment_extra_instances = extra_instances(sizing);
    }
    if sizing.container_insights {
        estimate.excludes.push("Container Insights (capacity.container_insights): its metrics and performance logs");
    }
    estimate
}

fn access_logs(b: &mut Builder, sizing: &Sizing, assume: &CostAssumptions, days: u32) {
    let stored = assume.requests_per_second * 86_400.0 * f64::from(days) * ACCESS_LOG_BYTES_PER_REQUEST / GIB;
    b.fixed("access log storage", format!("{stored:.2} GiB ({days} days kept)"), "s3:stored", stored);
    let puts = f64::from(sizing.availability_zones) * ACCESS_LOG_FILES_PER_NODE_HOUR * HOURS_PER_MONTH;
    b.fixed("access log writes", format!("{puts:.0} PUTs"), "s3:put", puts);
}

/// While both revisions run, the instances twice the tasks need beyond those the stack runs: each
/// for the window and until scale-in, `assume.deploys_per_month` times; with their root volumes
/// and public addresses.
fn deployment_bakes(b: &mut Builder, sizing: &Sizing, assume: &CostAssumptions) {
    let (Some(window), Some(t)) = (&sizing.deployment, &sizing.instance_type) else { return };
    let (quiet, full) = extra_instances(sizing);
    let n = assume.deploys_per_month;
    let each = f64::from(n) * (window.minutes + window.scale_in_minutes) / 60.0;
    let up_to = if full == quiet { String::new() } else { format!(" (up to {full})") };
    let what = format!("{n} deploys (assumed) × {:.0} min × {quiet} extra {t}{up_to}", window.minutes);
    let gib_months = f64::from(sizing.root_volume_gib) / HOURS_PER_MONTH;
    let parts = [(format!("ec2:{t}"), 1.0), ("ebs:gp3".to_owned(), gib_months), ("public-ipv4".to_owned(), 1.0)];
    let (quiet, full) = (f64::from(quiet) * each, f64::from(full) * each);
    b.combined(window.item(), what, &parts.map(|(price, per_hour)| (price, quiet * per_hour, full * per_hour)));
}

/// Instances a deployment adds while both revisions run, at the quietest and at full scale: those
/// twice the tasks need, less those the stack runs.
pub fn extra_instances(sizing: &Sizing) -> (u32, u32) {
    let count = instance_count(sizing);
    let (quiet, full) = sizing.tasks;
    (count(2 * quiet).saturating_sub(count(quiet)), count(2 * full).saturating_sub(count(full)))
}

fn hours(count: u32) -> f64 {
    f64::from(count) * HOURS_PER_MONTH
}

fn monthly_requests(assume: &CostAssumptions) -> f64 {
    assume.requests_per_second * HOURS_PER_MONTH * 3600.0
}

/// Load balancer capacity units at the assumed traffic: the largest of new connections (25 per
/// LCU; every request counted as a new connection, the worst case) and processed bytes (1 GB an
/// hour per LCU).
pub fn capacity_units(assume: &CostAssumptions) -> f64 {
    let connections = assume.requests_per_second / 25.0;
    let gb_per_hour = assume.requests_per_second * 3600.0 * (assume.response_kib + REQUEST_KIB) * 1024.0 / GIB;
    connections.max(gb_per_hour)
}

/// Instances at the quietest and at full scale: `capacity.desired`, or as many as the tasks need,
/// within `capacity.min`–`max`.
pub fn instances(sizing: &Sizing) -> (u32, u32) {
    let count = instance_count(sizing);
    (count(sizing.tasks.0), count(sizing.tasks.1))
}

/// Instances for a number of tasks: `capacity.desired`, or as many as the tasks need, within
/// `capacity.min`–`max`.
fn instance_count(sizing: &Sizing) -> impl Fn(u32) -> u32 {
    let (min, desired, max) = sizing.capacity;
    let (cpu, memory) = sizing.task;
    let per_instance = sizing
        .instance_type
        .as_deref()
        .and_then(stack::catalog::lookup)
        .map(|it| it.tasks_that_fit(cpu, memory).max(1));
    move |tasks: u32| desired.max(per_instance.map_or(0, |p| tasks.div_ceil(p))).clamp(min, max.max(min))
}

struct Builder<'a> {
    prices: &'a PriceBook,
    items: Vec<LineItem>,
    missing: Vec<String>,
}

impl Builder<'_> {
    fn price(&mut self, name: &str) -> Option<f64> {
        let p = self.prices.get(name);
        if p.is_none() && !self.missing.iter().any(|m| m == name) {
            self.missing.push(name.to_owned());
        }
        p
    }

    fn fixed(&mut self, item: &'static str, quantity: String, price: &str, units: f64) {
        self.scaled(item, quantity, price, units, units);
    }

    fn scaled(&mut self, item: &'static str, quantity: String, price: &str, quiet: f64, full: f64) {
        let p = self.price(price);
        self.items.push(LineItem {
            item,
            quantity,
            monthly_usd: p.map(|p| cents(p * quiet)),
            at_full_scale_usd: p.map(|p| cents(p * full)),
        });
    }

    /// One item priced by several names: `parts` are (price, units at the quietest, at full scale).
    fn combined(&mut self, item: &'static str, quantity: String, parts: &[(String, f64, f64)]) {
        let prices: Vec<Option<f64>> = parts.iter().map(|(name, _, _)| self.price(name)).collect();
        let total = |units: fn(&(String, f64, f64)) -> f64| {
            prices.iter().zip(parts).map(|(p, part)| p.map(|p| p * units(part))).sum::<Option<f64>>().map(cents)
        };
        let (monthly_usd, at_full_scale_usd) = (total(|p| p.1), total(|p| p.2));
        self.items.push(LineItem { item, quantity, monthly_usd, at_full_scale_usd });
    }

    fn finish(self, instances: (u32, u32)) -> Estimate {
        let sum = |f: fn(&LineItem) -> Option<f64>| cents(self.items.iter().filter_map(f).sum());
        Estimate {
            monthly_usd: sum(|i| i.monthly_usd),
            at_full_scale_usd: sum(|i| i.at_full_scale_usd),
            items: self.items,
            instances,
            deployment_window: None,
            deployment_extra_instances: (0, 0),
            missing_prices: self.missing,
            excludes: EXCLUDED.to_vec(),
        }
    }
}

/// Rounded to the cent.
pub fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::test_stack;

    fn item(e: &Estimate, name: &str) -> f64 {
        e.items.iter().find(|i| i.item == name).and_then(|i| i.monthly_usd).unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn the_repository_stack_costs_what_a_hand_count_says() {
        let stack = test_stack();
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        // 2 × t3.small (capacity.desired; 8 tasks at full scale fit 7 to an instance: 2 still).
        assert_eq!(e.instances, (2, 2));
        assert_eq!(item(&e, "ec2 instances"), 39.71); // 2 × 0.0272 × 730
        assert_eq!(item(&e, "ebs volumes"), 5.76); // 60 GiB × 0.096
        assert_eq!(item(&e, "public ipv4"), 14.6); // (2 instances + 2 zones) × 730 × 0.005
        assert_eq!(item(&e, "load balancer"), 17.74); // 730 × 0.0243
        assert_eq!(item(&e, "load balancer capacity units"), 2.34); // 10/s ÷ 25 = 0.4 LCU × 730 × 0.008
        assert_eq!(item(&e, "cloudwatch alarms"), 0.7); // 3 SLO alarms + 2 pairs AWS makes
        assert_eq!(item(&e, "data transfer out"), 2.86); // 10/s × 2,628,000 s × 1 KiB = 25.06 GiB × 0.114
        assert!(e.missing_prices.is_empty(), "{:?}", e.missing_prices);
        let sum: f64 = e.items.iter().filter_map(|i| i.monthly_usd).sum();
        assert_eq!(e.monthly_usd, cents(sum));
    }

    #[test]
    fn the_error_budgets_alarms_are_counted_and_their_composite_price_named_when_missing() {
        let mut stack = test_stack();
        stack.slo.availability = Some(stack::Percent::parse("99.9%"));
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        // 3 SLO alarms + 2 pairs AWS makes + 6 windows of 3 metrics each, at 0.10.
        assert_eq!(item(&e, "cloudwatch alarms"), 2.5);
        let composite = e.items.iter().find(|i| i.item == "cloudwatch composite alarms").expect("a line");
        assert_eq!((composite.quantity.as_str(), composite.monthly_usd), ("3 alarms", None));
        assert_eq!(e.missing_prices, ["cloudwatch:composite-alarm"], "named, not guessed");
        // The latency budget: 6 windows of two metrics each (requests, the rank), 3 more alerts.
        stack.slo.latency = Some(stack::Percent::parse("99%"));
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        assert_eq!(item(&e, "cloudwatch alarms"), 3.7);
        let composite = e.items.iter().find(|i| i.item == "cloudwatch composite alarms").expect("a line");
        assert_eq!(composite.quantity, "6 alarms");
    }

    #[test]
    fn instances_follow_the_tasks_within_the_groups_bounds() {
        let mut s = Sizing::wanted(&test_stack());
        s.capacity = (1, 1, 4);
        s.task = (512, 512); // t3.small: 4 by CPU, 3 by memory (1,843 MiB usable)
        s.tasks = (2, 10);
        assert_eq!(instances(&s), (1, 4), "10 tasks need 4 instances at 3 each");
        s.tasks = (2, 30);
        assert_eq!(instances(&s), (1, 4), "never past capacity.max");
        s.capacity = (1, 3, 4);
        assert_eq!(instances(&s).0, 3, "capacity.desired when the tasks need fewer");
        s.instance_type = Some("x9.unknown".into());
        assert_eq!(instances(&s), (3, 3), "an unknown type: capacity.desired");
    }

    #[test]
    fn a_rolling_stack_pays_nothing_for_deployments() {
        let stack = test_stack();
        assert_eq!(stack.service.deployment.strategy, stack::schema::Strategy::Rolling);
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        assert!(!e.items.iter().any(|i| i.item.starts_with("deploy")), "{:?}", e.items);
        assert_eq!((e.deployment_window, e.deployment_extra_instances), (None, (0, 0)));
    }

    #[test]
    fn a_canary_pays_for_the_instances_twice_the_tasks_need_during_each_window() {
        let mut stack = test_stack();
        stack.service.deployment.strategy = stack::schema::Strategy::Canary;
        let rolling = estimate(&Sizing::wanted(&test_stack()), &stack.cost, &PriceBook::snapshot());
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        // 2 tasks → 4 fit on the 2 instances (7 each); 8 at full scale → 16 need 3.
        assert_eq!(e.deployment_extra_instances, (0, 1));
        let row = e.items.iter().find(|i| i.item == "deploy windows (canary)").expect("a row");
        assert_eq!(row.quantity, "20 deploys (assumed) × 26 min × 0 extra t3.small (up to 1)");
        assert_eq!(row.monthly_usd, Some(0.0));
        // 20 × (26 + 15 min until scale-in) = 13.67 h × (0.0272 + 30 GiB × 0.096 / 730 + 0.005).
        assert_eq!(row.at_full_scale_usd, Some(0.49));
        assert_eq!(e.at_full_scale_usd, cents(rolling.at_full_scale_usd + 0.49));
        stack.cost.deploys_per_month = 40;
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        let row = e.items.iter().find(|i| i.item == "deploy windows (canary)").expect("a row");
        assert_eq!(row.at_full_scale_usd, Some(0.99), "twice the deploys, twice the cost");
    }

    #[test]
    fn extra_instances_are_those_twice_the_tasks_need_within_capacity_max() {
        let mut s = Sizing::wanted(&test_stack());
        s.capacity = (1, 1, 4);
        s.task = (512, 512); // 3 to a t3.small
        s.tasks = (2, 6);
        assert_eq!(extra_instances(&s), (1, 2), "4 tasks need 2 instances, 12 need 4 where 6 need 2");
        s.tasks = (3, 10);
        assert_eq!(extra_instances(&s), (1, 0), "never past capacity.max (validation asks for room)");
        s.capacity = (1, 2, 4);
        s.tasks = (2, 2);
        assert_eq!(extra_instances(&s), (0, 0), "4 tasks fit on capacity.desired's 2");
    }

    #[test]
    fn a_price_the_book_lacks_is_named_and_counts_as_nothing() {
        let mut stack = test_stack();
        stack.capacity.instance_type = "x9.unknown".into();
        let e = estimate(&Sizing::wanted(&stack), &stack.cost, &PriceBook::snapshot());
        assert_eq!(e.missing_prices, ["ec2:x9.unknown"]);
        assert_eq!(e.items[0].monthly_usd, None);
    }

    #[test]
    fn load_balancer_capacity_units_take_the_larger_dimension() {
        let a =
            |rps, kib| CostAssumptions { requests_per_second: rps, response_kib: kib, ..CostAssumptions::default() };
        assert!((capacity_units(&a(50.0, 1.0)) - 2.0).abs() < 1e-9, "50 new connections/s = 2 LCU");
        // 10/s × 3600 × 100.5 KiB = 3.45 GiB an hour outweighs 0.4 LCU of connections.
        assert!((capacity_units(&a(10.0, 100.0)) - 3.4504).abs() < 1e-3);
    }
}
