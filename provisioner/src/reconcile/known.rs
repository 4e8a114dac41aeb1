//! "Not known yet" as a type. The id or ARN that one kind gives another is either known (it
//! exists in AWS) or pending (the plan will create it). A plan can show both; an AWS call takes
//! only a known one (`get`), so a placeholder can never reach AWS: in apply mode a pending id is
//! an internal error that stops the run before the call.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    Known(String),
    /// Exists once created; the text says what it will be (`security group konnichiwa-alb`).
    Pending(String),
}

impl Id {
    /// The id of what was observed, or a pending one described by `what`.
    pub fn from_option(id: Option<String>, what: impl FnOnce() -> String) -> Self {
        match id {
            Some(id) if !id.is_empty() => Self::Known(id),
            _ => Self::Pending(what()),
        }
    }

    /// The value for an AWS call; a pending id refuses.
    pub fn get(&self) -> Result<&str, Error> {
        match self {
            Self::Known(id) => Ok(id),
            Self::Pending(what) => Err(Error::NotYetKnown(what.clone())),
        }
    }

    pub fn known(&self) -> Option<&str> {
        match self {
            Self::Known(id) => Some(id),
            Self::Pending(_) => None,
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Self::Known(_))
    }
}

/// A plan shows a pending id as `(<what>, once created)`.
impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(id) => f.write_str(id),
            Self::Pending(what) => write!(f, "({what}, once created)"),
        }
    }
}

/// Outputs show a pending id as null.
impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.known().serialize(s)
    }
}

/// Known ids of a list; any pending one refuses.
pub fn all_known(ids: &[Id]) -> Result<Vec<String>, Error> {
    ids.iter().map(|i| i.get().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_id_shows_in_a_plan_but_never_reaches_a_call() {
        let pending = Id::from_option(None, || "VPC konnichiwa-vpc".into());
        assert_eq!(pending.to_string(), "(VPC konnichiwa-vpc, once created)");
        let e = pending.get().expect_err("refused");
        assert!(matches!(e, Error::NotYetKnown(_)) && e.to_string().contains("nothing was sent"), "{e}");
        assert_eq!(serde_json::to_value(&pending).ok(), Some(serde_json::Value::Null));
        let known = Id::from_option(Some("vpc-1".into()), || unreachable!());
        assert_eq!(known.get().ok(), Some("vpc-1"));
        assert_eq!(serde_json::to_value(&known).ok(), Some(serde_json::json!("vpc-1")));
        assert!(all_known(&[known.clone(), pending]).is_err());
        assert_eq!(all_known(&[known]).ok(), Some(vec!["vpc-1".to_owned()]));
    }
}
