//! Thresholds: command-line flags, else stack.yaml's `monitor:` section, else the defaults
//! (70% warning / 90% critical for CPU and memory; 500 ms / 2 s for latency; 21 / 7 days before
//! the served certificate expires).

use std::path::Path;
use std::time::Duration;

use crate::report::trim;

/// Resolved thresholds of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub cpu_warning: f64,
    pub cpu_critical: f64,
    pub memory_warning: f64,
    pub memory_critical: f64,
    pub latency_warning: Duration,
    pub latency_critical: Duration,
    pub certificate_warning_days: u32,
    pub certificate_critical_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::from_stack_section(&stack::Monitor::default())
    }
}

/// Flag values (None where the flag was not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub cpu_warning: Option<f64>,
    pub cpu_critical: Option<f64>,
    pub memory_warning: Option<f64>,
    pub memory_critical: Option<f64>,
    pub latency_warning: Option<Duration>,
    pub latency_critical: Option<Duration>,
    pub certificate_warning_days: Option<u32>,
    pub certificate_critical_days: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    /// On one line: the monitor reports in one line (`UNKNOWN: config - …`).
    #[error("{}", .0.one_line())]
    Stack(#[from] stack::StackError),
    #[error("{what} warning {warning} is above its critical {critical}: warning must not exceed critical")]
    Inverted { what: &'static str, warning: String, critical: String },
    #[error(
        "certificate warning at {warning} days is below its critical at {critical} days: the warning must come first"
    )]
    DaysInverted { warning: u32, critical: u32 },
}

impl Thresholds {
    fn from_stack_section(m: &stack::Monitor) -> Self {
        Self {
            cpu_warning: m.cpu_warning_percent,
            cpu_critical: m.cpu_critical_percent,
            memory_warning: m.memory_warning_percent,
            memory_critical: m.memory_critical_percent,
            latency_warning: m.latency_warning.get(),
            latency_critical: m.latency_critical.get(),
            certificate_warning_days: m.certificate_warning_days,
            certificate_critical_days: m.certificate_critical_days,
        }
    }

    /// Flags over the stack file over defaults. `stack_file`: read when given, or when the default
    /// ./stack.yaml exists (`explicit` says whether the user named it: then it must exist).
    pub fn resolve(overrides: &Overrides, stack_file: &Path, explicit: bool) -> Result<Self, ThresholdError> {
        let base = if explicit || stack_file.exists() {
            Self::from_stack_section(&stack::ToolSections::load(stack_file)?.monitor)
        } else {
            Self::default()
        };
        let t = Self {
            cpu_warning: overrides.cpu_warning.unwrap_or(base.cpu_warning),
            cpu_critical: overrides.cpu_critical.unwrap_or(base.cpu_critical),
            memory_warning: overrides.memory_warning.unwrap_or(base.memory_warning),
            memory_critical: overrides.memory_critical.unwrap_or(base.memory_critical),
            latency_warning: overrides.latency_warning.unwrap_or(base.latency_warning),
            latency_critical: overrides.latency_critical.unwrap_or(base.latency_critical),
            certificate_warning_days: overrides.certificate_warning_days.unwrap_or(base.certificate_warning_days),
            certificate_critical_days: overrides.certificate_critical_days.unwrap_or(base.certificate_critical_days),
        };
        let inverted = |what, w: String, c: String| ThresholdError::Inverted { what, warning: w, critical: c };
        if t.cpu_warning > t.cpu_critical {
            return Err(inverted("CPU", format!("{}%", trim(t.cpu_warning)), format!("{}%", trim(t.cpu_critical))));
        }
        if t.memory_warning > t.memory_critical {
            return Err(inverted(
                "memory",
                format!("{}%", trim(t.memory_warning)),
                format!("{}%", trim(t.memory_critical)),
            ));
        }
        if t.latency_warning > t.latency_critical {
            return Err(inverted(
                "latency",
                crate::report::seconds(t.latency_warning),
                crate::report::seconds(t.latency_critical),
            ));
        }
        if t.certificate_warning_days < t.certificate_critical_days {
            return Err(ThresholdError::DaysInverted {
                warning: t.certificate_warning_days,
                critical: t.certificate_critical_days,
            });
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_stack_file_which_wins_over_defaults() {
        let dir = std::env::temp_dir().join(format!("konnichiwa-thresholds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("stack.yaml");
        let example =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml")).expect("example");
        std::fs::write(&file, example.replace("cpu_warning_percent: 70", "cpu_warning_percent: 65")).expect("write");

        let from_file = Thresholds::resolve(&Overrides::default(), &file, true).expect("valid");
        assert_eq!(from_file.cpu_warning, 65.0);
        let flags = Overrides { cpu_warning: Some(50.0), ..Overrides::default() };
        assert_eq!(Thresholds::resolve(&flags, &file, true).expect("valid").cpu_warning, 50.0);
        let missing = dir.join("absent.yaml");
        assert_eq!(
            Thresholds::resolve(&Overrides::default(), &missing, false).expect("defaults"),
            Thresholds::default()
        );
        assert!(Thresholds::resolve(&Overrides::default(), &missing, true).is_err(), "a named file must exist");
        let inverted = Overrides { memory_warning: Some(95.0), ..Overrides::default() };
        assert!(Thresholds::resolve(&inverted, &missing, false).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
