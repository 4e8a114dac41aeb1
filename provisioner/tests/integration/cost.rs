//! The monthly estimate on moto: `plan` ends with it and its change when instance_type,
//! capacity.desired (of a new stack) or service.autoscaling.max change (figures computed by hand
//! from the shipped Tokyo prices); `cost` prints the breakdown; `cost --refresh-prices` takes the
//! Price List API's figures (scripted, as moto has no Price List API) and falls back to the
//! snapshot, saying so.

use serde_json::Value;

use crate::common::faults::{Proxy, Script};
use crate::common::{self, Account, text};

/// The shipped snapshot's Tokyo prices the hand counts use.
const T3_SMALL: f64 = 0.0272;
const T3_MEDIUM: f64 = 0.0544;
const GP3: f64 = 0.096;
const IPV4: f64 = 0.005;

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a figure: {v}"))
}

fn close(actual: f64, expected: f64, what: &str) {
    // Each line item is rounded to the cent before it is summed.
    assert!((actual - expected).abs() <= 0.02, "{what}: {actual} is not {expected:.2}");
}

fn item<'a>(estimate: &'a Value, name: &str) -> &'a Value {
    common::entry(&estimate["items"], "item", name)
}

#[test]
fn plan_shows_the_estimate_and_its_change_when_type_desired_or_max_change() {
    let account = Account::new();
    let prices = account.dir.join("prices");
    let env = [("KONNICHIWA_PRICE_CACHE", prices.to_str().expect("utf-8"))];

    // A stack that does not exist yet: nothing now, all of it after; capacity.desired counts.
    account.edit_stack(|s| s.replace("desired: 2\n", "desired: 3\n"));
    let cold = account.json_with(&["plan"], &env, 0);
    let cost = &cold["cost"];
    assert_eq!(cost["prices"]["kind"], "snapshot", "{cost}");
    assert_eq!(usd(&cost["now"]["monthly_usd"]), 0.0, "{cost}");
    close(usd(&item(&cost["after"], "ec2 instances")["monthly_usd"]), 3.0 * T3_SMALL * 730.0, "3 × t3.small");
    close(usd(&cost["change_usd"]), usd(&cost["after"]["monthly_usd"]), "all of it is new");
    account.edit_stack(|s| s.replace("desired: 3\n", "desired: 2\n"));

    let up = account.run_with(&["up", "--yes"], &env);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let same = account.json_with(&["plan"], &env, 0);
    assert_eq!(usd(&same["cost"]["change_usd"]), 0.0, "a no-op plan changes no cost: {}", same["cost"]);
    let before = usd(&same["cost"]["after"]["monthly_usd"]);
    close(before, usd(&same["cost"]["now"]["monthly_usd"]), "now = after");
    // capacity.desired is the group's size at creation only (ECS's managed scaling owns it after):
    // changing it changes nothing, and the estimate says so, counting the group's 2.
    account.edit_stack(|s| s.replace("desired: 2\n", "desired: 3\n"));
    let kept = account.json_with(&["plan"], &env, 0);
    assert_eq!(usd(&kept["cost"]["change_usd"]), 0.0, "{}", kept["cost"]);
    assert_eq!(kept["cost"]["after"]["instances"][0], 2, "{}", kept["cost"]);

    // t3.medium fits 8 tasks (by CPU) where t3.small fits 7 (by memory): 24 tasks at full scale
    // need 3 instances, within capacity.max 4.
    account.edit_stack(|s| {
        s.replace("instance_type: t3.small ", "instance_type: t3.medium ").replace("max: 8,", "max: 24,")
    });
    let changed = account.json_with(&["plan", "--detailed-exitcode"], &env, 2);
    let cost = &changed["cost"];
    close(usd(&cost["change_usd"]), 2.0 * (T3_MEDIUM - T3_SMALL) * 730.0, "2 instances, now t3.medium");
    let full = 3.0 * T3_MEDIUM * 730.0 - 2.0 * T3_SMALL * 730.0 + 30.0 * GP3 + 730.0 * IPV4;
    close(usd(&cost["change_at_full_scale_usd"]), full, "3 t3.medium at full scale, with their volume and address");
    assert_eq!(cost["after"]["instances"], serde_json::json!([2, 3]), "{cost}");
    assert_eq!(usd(&cost["now"]["monthly_usd"]), before, "now is what AWS has");

    let out = account.run_with(&["plan"], &env);
    let said = text(&out);
    assert!(said.contains("Monthly estimate, USD (prices: the snapshot shipped with the provisioner, of "), "{said}");
    let ec2 = said.lines().find(|l| l.trim_start().starts_with("ec2 instances")).expect("an ec2 line");
    assert!(
        ec2.contains("2 × t3.medium × 730 h (up to 3)") && ec2.contains("79.42") && ec2.contains("+39.71"),
        "{ec2}"
    );
    assert!(said.contains("Assumes 10 requests/s averaged over the month"), "{said}");

    // `up` shows the estimate with the plan it asks to apply (t3.small again: moto cannot refresh
    // instances). 24 tasks need 4 t3.small at full scale, 2 more than 8 tasks did: +52.77 =
    // 2 × 0.0272 × 730 + 60 GiB × 0.096 + 2 × 0.005 × 730 (each item rounded to the cent).
    account.edit_stack(|s| s.replace("instance_type: t3.medium ", "instance_type: t3.small "));
    let up = account.run_with(&["up", "--yes"], &env);
    let said = text(&up);
    assert_eq!(up.status.code(), Some(0), "{said}");
    let shown = said.split("Applying").next().unwrap_or_default();
    let full = shown.lines().find(|l| l.trim_start().starts_with("at full scale")).unwrap_or_default();
    assert!(
        shown.contains("Monthly estimate, USD") && full.contains("4 instances") && full.contains("+52.77"),
        "{said}"
    );

    let down = account.run_with(&["down", "--yes", "--purge"], &env);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
}

#[test]
fn cost_prints_the_breakdown_with_its_assumptions_and_no_aws_call() {
    let account = Account::new();
    account.edit_stack(|s| s + "\ncost: { requests_per_second: 50, response_kib: 4 }\n");
    // Nothing answers at this endpoint: `cost` must not need AWS.
    let out = account.command("http://127.0.0.1:9", &["cost", "--json"], &[]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["command"], "cost");
    assert_eq!(v["assumptions"]["requests_per_second"], 50.0);
    // 50 new connections a second = 2 LCU × 730 h × 0.008.
    close(usd(&item(&v, "load balancer capacity units")["monthly_usd"]), 2.0 * 730.0 * 0.008, "LCUs");
    // 50/s × 2,628,000 s × 4 KiB = 501.2 GiB × 0.114.
    close(
        usd(&item(&v, "data transfer out")["monthly_usd"]),
        50.0 * 2_628_000.0 * 4.0 / 1_048_576.0 * 0.114,
        "transfer",
    );
    let total: f64 = v["items"].as_array().expect("items").iter().map(|i| usd(&i["monthly_usd"])).sum();
    close(usd(&v["monthly_usd"]), total, "the total is the items' sum");

    account.edit_stack(|s| s.replace("requests_per_second: 50", "requests_per_second: -1"));
    let bad = account.command("http://127.0.0.1:9", &["cost"], &[]).output().expect("run");
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("cost.requests_per_second: -1 is not a figure the estimate can use"), "{}", text(&bad));
}

/// A GetProducts answer in the Price List's shape, for one product at `usd` per unit.
fn price_list_answer(usd: &str) -> String {
    let product = serde_json::json!({
        "product": {"sku": "SKU1", "attributes": {"regionCode": "ap-northeast-1"}},
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {"priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "beginRange": "0", "endRange": "Inf", "pricePerUnit": {"USD": usd}}}}}}
    });
    serde_json::json!({"FormatVersion": "aws_v1", "PriceList": [product.to_string()]}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshed_prices_come_from_the_price_list_api_or_the_snapshot_says_so() {
    let account = Account::new();
    let prices = account.dir.join("prices");
    let env = [("KONNICHIWA_PRICE_CACHE", prices.to_str().expect("utf-8"))];
    let proxy = Proxy::start(&common::moto_url(), Default::default()).await;

    // moto has no Price List API: the refresh says so and the snapshot is used.
    let out = account.run_at(&proxy.url, &["cost", "--refresh-prices"], &env).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("The Price List API did not answer"), "{said}");
    assert!(said.contains("prices: the snapshot shipped with the provisioner"), "{said}");
    assert!(!prices.join("ap-northeast-1.json").exists());

    proxy.script(Script::body("GetProducts", 1000, &price_list_answer("0.0300000000")));
    let out = account.run_at(&proxy.url, &["cost", "--refresh-prices", "--json"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["prices"]["kind"], "price-list", "{v}");
    assert_eq!(v["prices"]["age_days"], 0);
    let ec2 = item(&v, "ec2 instances");
    close(usd(&ec2["monthly_usd"]), 2.0 * 0.03 * 730.0, "the fetched price");
    let asked = proxy.requests("GetProducts");
    assert!(asked.iter().any(|r| r.contains("APN1-BoxUsage:t3.small") && r.contains("RunInstances")), "{asked:?}");
    assert!(asked.iter().all(|r| r.contains("\"regionCode\"")), "every query names the region");
    // `plan` and `cost` use the fetched prices from now on, and say so.
    let out = account.run_at(&proxy.url, &["cost"], &env).await;
    assert!(text(&out).contains("prices: the AWS Price List API, fetched "), "{}", text(&out));

    // A refresh that singles out only t3.small's price keeps every other price it had.
    proxy.clear_scripts();
    proxy.script(Script::body("GetProducts", 1, &price_list_answer("0.0500000000")).only_if("APN1-BoxUsage:t3.small"));
    proxy.script(Script::body("GetProducts", 1000, r#"{"FormatVersion":"aws_v1","PriceList":[]}"#));
    let out = account.run_at(&proxy.url, &["cost", "--refresh-prices", "--json"], &env).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    close(usd(&item(&v, "ec2 instances")["monthly_usd"]), 2.0 * 0.05 * 730.0, "the newly fetched price");
    close(usd(&item(&v, "ebs volumes")["monthly_usd"]), 60.0 * 0.03, "the price fetched before");
    let notes = v["refresh_notes"].as_array().expect("notes");
    assert!(notes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("ebs:gp3: no product matches"))), "{v}");
}

#[test]
fn the_readmes_figure_is_what_cost_prints_for_the_repository_stack() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = readme.split("### What it costs").nth(1).expect("README has \"What it costs\"");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("```").next()).expect("its example");
    let out = std::process::Command::new(common::BIN)
        .args(["--stack", "stack.yaml", "cost"])
        .current_dir(&root)
        .env("KONNICHIWA_PRICE_CACHE", std::env::temp_dir().join("konnichiwa-no-saved-prices"))
        .output()
        .expect("run provisioner cost");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    // The first line says how old the prices are, which changes by the day.
    let body = |s: &str| s.lines().skip(1).take_while(|l| l.starts_with("  ")).map(str::to_owned).collect::<Vec<_>>();
    let example: Vec<String> = block.lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        body(&printed),
        example.iter().skip(1).cloned().collect::<Vec<_>>(),
        "README.md's example is stale:\n{printed}"
    );
}
