//! What a canary, linear or blue/green strategy adds to the bill: both revisions run from the
//! scale-up to the clean-up after the final bake, on more instances when twice the tasks do not
//! fit on the ones the stack runs.

use serde::Serialize;
use stack::schema::{Deployment, Strategy};

/// Minutes allowed per deployment to start the second set of tasks (managed scaling launching
/// instances, the image pulled, two passed health checks) and to drain the old set after the
/// final bake (`load_balancer.deregistration_delay`).
pub const SCALE_ALLOWANCE_MINUTES: f64 = 5.0;
/// Minutes an extra instance is assumed to stay after the old tasks stop, until managed scaling's
/// scale-in (a target-tracking policy, which scales in cautiously) removes it.
pub const SCALE_IN_MINUTES: f64 = 15.0;

/// How long one deployment runs both revisions, and of what that time is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// The strategy, as stack.yaml spells it.
    pub strategy: &'static str,
    /// `gate.duration`: the new and old revisions driven side by side.
    pub gate_minutes: f64,
    /// The shift before the final bake: the canary's bake, or the linear steps' bakes (one after
    /// each step but the last); 0 for blue/green.
    pub shift_minutes: f64,
    /// `blue_green.bake`: the old revision kept, idle, after all traffic moved.
    pub final_bake_minutes: f64,
    /// `SCALE_ALLOWANCE_MINUTES`.
    pub allowance_minutes: f64,
    /// The sum: both revisions run this long per deployment.
    pub minutes: f64,
    /// Extra instances stay `SCALE_IN_MINUTES` longer.
    pub scale_in_minutes: f64,
}

impl Window {
    /// The window of `deployment`'s strategy; None under `rolling`, which replaces tasks in place.
    pub fn of(deployment: &Deployment) -> Option<Self> {
        let minutes = |d: &stack::HumanDuration| d.get().as_secs_f64() / 60.0;
        let shift_minutes = match deployment.strategy {
            Strategy::Rolling => return None,
            Strategy::Canary => minutes(&deployment.canary.bake),
            Strategy::Linear => {
                f64::from(linear_steps(deployment.linear.step.get()) - 1) * minutes(&deployment.linear.step_bake)
            }
            Strategy::BlueGreen => 0.0,
        };
        let gate_minutes = minutes(&deployment.gate.duration);
        let final_bake_minutes = minutes(&deployment.blue_green.bake);
        Some(Self {
            strategy: deployment.strategy.word(),
            gate_minutes,
            shift_minutes,
            final_bake_minutes,
            allowance_minutes: SCALE_ALLOWANCE_MINUTES,
            minutes: gate_minutes + shift_minutes + final_bake_minutes + SCALE_ALLOWANCE_MINUTES,
            scale_in_minutes: SCALE_IN_MINUTES,
        })
    }

    /// The line item's name.
    pub fn item(&self) -> &'static str {
        match self.strategy {
            "canary" => "deploy windows (canary)",
            "linear" => "deploy windows (linear)",
            _ => "deploy windows (blue_green)",
        }
    }

    /// The sum in words: `1m gate + 10m canary bake + 10m final bake + 5m scale-up = 26 min`.
    pub fn describe(&self) -> String {
        let shift = match self.strategy {
            "canary" => format!(" + {}m canary bake", self.shift_minutes),
            "linear" => format!(" + {}m step bakes", self.shift_minutes),
            _ => String::new(),
        };
        format!(
            "{}m gate{shift} + {}m final bake + {}m scale-up and drain = {:.0} min",
            round(self.gate_minutes),
            self.final_bake_minutes,
            self.allowance_minutes,
            self.minutes
        )
    }
}

/// Minutes as a person reads them: to a tenth (a 2s gate is 0.03 minutes, shown as 0).
fn round(minutes: f64) -> f64 {
    (minutes * 10.0).round() / 10.0
}

/// Steps of a linear shift moving `step` percent at a time (the last may move less).
fn linear_steps(step: f64) -> u32 {
    if step <= 0.0 {
        return 1;
    }
    // A step ECS takes is a multiple of 0.1%: count in tenths so 100 / 3.3 does not round up twice.
    let tenths = (step * 10.0).round().max(1.0) as u32;
    1000_u32.div_ceil(tenths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(strategy: Strategy) -> Deployment {
        Deployment { strategy, ..Deployment::default() }
    }

    #[test]
    fn the_window_adds_the_gate_the_shift_the_final_bake_and_the_allowance() {
        assert_eq!(Window::of(&deployment(Strategy::Rolling)), None, "rolling runs no second revision");
        let canary = Window::of(&deployment(Strategy::Canary)).expect("a window");
        assert_eq!(canary.minutes, 1.0 + 10.0 + 10.0 + 5.0);
        assert_eq!(canary.describe(), "1m gate + 10m canary bake + 10m final bake + 5m scale-up and drain = 26 min");
        let linear = Window::of(&deployment(Strategy::Linear)).expect("a window");
        assert_eq!(linear.shift_minutes, 9.0 * 6.0, "10% steps: 10 steps, a bake after each but the last");
        assert_eq!(linear.minutes, 1.0 + 54.0 + 10.0 + 5.0);
        let blue_green = Window::of(&deployment(Strategy::BlueGreen)).expect("a window");
        assert_eq!((blue_green.shift_minutes, blue_green.minutes), (0.0, 16.0));
        assert_eq!(blue_green.item(), "deploy windows (blue_green)");
    }

    #[test]
    fn linear_steps_count_the_last_partial_step() {
        assert_eq!(linear_steps(10.0), 10);
        assert_eq!(linear_steps(3.0), 34);
        assert_eq!(linear_steps(3.3), 31);
        assert_eq!(linear_steps(25.0), 4);
        assert_eq!(linear_steps(100.0), 1);
    }
}
