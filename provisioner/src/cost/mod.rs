//! What the stack costs a month: its billed parts (`sizing`; `deployments`: what a canary, linear
//! or blue/green strategy's second revision adds), the prices (`prices`, refreshed
//! from the Price List API by `price_list`), the estimate (`estimate`) and how plan and `cost`
//! show it (`report`).

mod deployments;
mod estimate;
mod price_list;
mod prices;
mod report;
mod sizing;

pub use estimate::{Estimate, LineItem, estimate};
pub use price_list::fetch;
pub use prices::{PriceBook, Provenance};
pub use report::{Breakdown, Compared, amount, fargate_run, render_breakdown, render_compared};
