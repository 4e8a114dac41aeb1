//! Fetching current prices from the AWS Price List API (`pricing:GetProducts`): which product
//! each price name is, and reading its On-Demand price out of the answer.

use std::collections::BTreeMap;

use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;

use super::prices::PriceBook;
use crate::aws::Clients;
use crate::error::{AwsContext, Error};

/// Usage types carry a region prefix (`APN1-BoxUsage:t3.small`); these are the regions whose
/// prefix is known here.
const USAGE_PREFIXES: &[(&str, &str)] = &[
    ("ap-northeast-1", "APN1"),
    ("ap-northeast-2", "APN2"),
    ("ap-northeast-3", "APN3"),
    ("ap-southeast-1", "APS1"),
    ("ap-southeast-2", "APS2"),
    ("ap-south-1", "APS3"),
    ("eu-west-1", "EU"),
    ("eu-central-1", "EUC1"),
    ("eu-west-2", "EUW2"),
    ("eu-west-3", "EUW3"),
    ("eu-north-1", "EUN1"),
    ("us-east-2", "USE2"),
    ("us-west-1", "USW1"),
    ("us-west-2", "USW2"),
    ("ca-central-1", "CAN1"),
    ("sa-east-1", "SAE1"),
];

/// One product of the Price List: its service code and the attributes that single it out.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub service: &'static str,
    pub filters: Vec<(&'static str, String)>,
}

/// The product whose price `name` is, in `region`.
pub fn product(name: &str, region: &str) -> Option<Product> {
    let prefix = USAGE_PREFIXES.iter().find(|(r, _)| *r == region)?.1;
    let usage = |suffix: &str| ("usagetype", format!("{prefix}-{suffix}"));
    let (service, mut filters) = match name {
        "ebs:gp3" => ("AmazonEC2", vec![usage("EBS:VolumeUsage.gp3")]),
        "public-ipv4" => ("AmazonVPC", vec![usage("PublicIPv4:InUseAddress")]),
        "alb:hour" => {
            ("AWSELB", vec![usage("LoadBalancerUsage"), ("productFamily", "Load Balancer-Application".into())])
        }
        "alb:lcu" => ("AWSELB", vec![usage("LCUUsage"), ("productFamily", "Load Balancer-Application".into())]),
        "cloudwatch:alarm" => ("AmazonCloudWatch", vec![usage("CW:AlarmMonitorUsage")]),
        "logs:ingested" => ("AmazonCloudWatch", vec![usage("DataProcessing-Bytes")]),
        "logs:stored" => ("AmazonCloudWatch", vec![usage("TimedStorage-ByteHrs")]),
        "secrets-manager:secret" => ("AWSSecretsManager", vec![usage("AWSSecretsManager-Secrets")]),
        "ecr:stored" => ("AmazonECR", vec![usage("TimedStorage-ByteHrs")]),
        "s3:stored" => ("AmazonS3", vec![usage("TimedStorage-ByteHrs")]),
        "s3:put" => ("AmazonS3", vec![usage("Requests-Tier1")]),
        "data-transfer:out" => {
            ("AWSDataTransfer", vec![usage("DataTransfer-Out-Bytes"), ("transferType", "AWS Outbound".into())])
        }
        "fargate:vcpu" => ("AmazonECS", vec![usage("Fargate-vCPU-Hours:perCPU")]),
        "fargate:gb" => ("AmazonECS", vec![usage("Fargate-GB-Hours")]),
        "fargate-arm:vcpu" => ("AmazonECS", vec![usage("Fargate-ARM-vCPU-Hours:perCPU")]),
        "fargate-arm:gb" => ("AmazonECS", vec![usage("Fargate-ARM-GB-Hours")]),
        _ => {
            let instance_type = name.strip_prefix("ec2:")?;
            let linux = [
                ("operation", "RunInstances"),
                ("capacitystatus", "Used"),
                ("tenancy", "Shared"),
                ("preInstalledSw", "NA"),
            ];
            let mut f = vec![usage(&format!("BoxUsage:{instance_type}"))];
            f.extend(linux.map(|(k, v)| (k, v.to_owned())));
            ("AmazonEC2", f)
        }
    };
    filters.push(("regionCode", region.to_owned()));
    Some(Product { service, filters })
}

/// The On-Demand USD price per unit in one GetProducts document: the first tier that is not free.
pub fn on_demand_usd(document: &str) -> Result<f64, String> {
    let v: Value = serde_json::from_str(document).map_err(|e| format!("not JSON: {e}"))?;
    let terms = v.pointer("/terms/OnDemand").and_then(Value::as_object).ok_or("no On-Demand terms")?;
    let mut tiers: Vec<(f64, f64)> = terms
        .values()
        .filter_map(|t| t.get("priceDimensions")?.as_object())
        .flat_map(|d| d.values())
        .filter_map(|d| {
            let usd: f64 = d.pointer("/pricePerUnit/USD")?.as_str()?.parse().ok()?;
            let begin: f64 = d.get("beginRange").and_then(Value::as_str).unwrap_or("0").parse().ok()?;
            Some((begin, usd))
        })
        .filter(|(_, usd)| *usd > 0.0)
        .collect();
    tiers.sort_by(|a, b| a.0.total_cmp(&b.0));
    tiers.first().map(|t| t.1).ok_or_else(|| "no USD price that is not free".to_owned())
}

/// Prices asked of the Price List at once.
const IN_FLIGHT: usize = 4;

/// Fetches every price `names` lists for `region`, a few at once. Prices the API cannot single
/// out are listed with the reason; an error means the API itself is unreachable or not permitted.
pub async fn fetch(clients: &Clients, region: &str, names: &[String]) -> Result<(PriceBook, Vec<String>), Error> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let answers: Vec<(String, Result<f64, String>)> = stream::iter(names)
        .map(|name| async move {
            let Some(p) = product(name, region) else {
                return Ok((name.clone(), Err(format!("the Price List's usage types of {region} are not known here"))));
            };
            Ok::<_, Error>((name.clone(), price_of(clients, &p).await?))
        })
        .buffered(IN_FLIGHT)
        .try_collect()
        .await?;
    let mut prices = BTreeMap::new();
    let mut failed = Vec::new();
    for (name, answer) in answers {
        match answer {
            Ok(usd) => {
                prices.insert(name, usd);
            }
            Err(why) => failed.push(format!("{name}: {why}")),
        }
    }
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let source = "the AWS Price List API (pricing:GetProducts), On-Demand, first paid tier".to_owned();
    Ok((PriceBook { region: region.into(), currency: "USD".into(), as_of: now, source, prices }, failed))
}

/// One product's price: Ok(Err) when the answer does not single out one price.
async fn price_of(clients: &Clients, p: &Product) -> Result<Result<f64, String>, Error> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let mut req = clients.pricing.get_products().service_code(p.service).max_results(100).set_next_token(token);
        for (field, value) in &p.filters {
            let filter = Filter::builder().r#type(FilterType::TermMatch).field(*field).value(value).build();
            req = req.filters(filter.map_err(|e| Error::Usage(format!("price filter {field}: {e}")))?);
        }
        let out = req.send().await.ctx("read prices of", p.service)?;
        found.extend(out.price_list().iter().map(|d| on_demand_usd(d)));
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut usd: Vec<f64> = found.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    usd.sort_by(f64::total_cmp);
    usd.dedup();
    Ok(match usd.as_slice() {
        [one] => Ok(*one),
        [] => Err(found.into_iter().find_map(Result::err).unwrap_or_else(|| "no product matches".into())),
        many => Err(format!("{} different prices match ({many:?})", many.len())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GetProducts document in the Price List's shape (abridged): a free tier and a paid one.
    const TIERED: &str = r#"{"product":{"sku":"X","attributes":{"usagetype":"APN1-DataTransfer-Out-Bytes"}},
      "terms":{"OnDemand":{"X.T":{"priceDimensions":{
        "X.T.1":{"unit":"GB","beginRange":"10240","endRange":"51200","pricePerUnit":{"USD":"0.0890000000"}},
        "X.T.0":{"unit":"GB","beginRange":"0","endRange":"1","pricePerUnit":{"USD":"0.0000000000"}},
        "X.T.2":{"unit":"GB","beginRange":"1","endRange":"10240","pricePerUnit":{"USD":"0.1140000000"}}}}}}}"#;

    #[test]
    fn the_price_is_the_first_paid_tier() {
        assert_eq!(on_demand_usd(TIERED), Ok(0.114));
        assert!(on_demand_usd(r#"{"terms":{}}"#).unwrap_err().contains("On-Demand"));
    }

    #[test]
    fn products_are_named_by_the_regions_usage_types() {
        let ec2 = product("ec2:t3.small", "ap-northeast-1").unwrap();
        assert_eq!(ec2.service, "AmazonEC2");
        assert!(ec2.filters.contains(&("usagetype", "APN1-BoxUsage:t3.small".into())));
        assert!(ec2.filters.contains(&("regionCode", "ap-northeast-1".into())));
        assert!(ec2.filters.contains(&("operation", "RunInstances".into())), "Linux, not Windows");
        assert_eq!(product("alb:hour", "eu-west-1").unwrap().filters[0], ("usagetype", "EU-LoadBalancerUsage".into()));
        assert_eq!(product("ec2:t3.small", "us-east-1"), None, "us-east-1's usage types have no prefix");
        for name in PriceBook::snapshot().prices.keys() {
            assert!(product(name, "ap-northeast-1").is_some(), "{name} has no Price List product");
        }
    }
}
