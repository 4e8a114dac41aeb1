//! The lease fence: once a run has lost the stack's lease (`lease`), no mutating call of its
//! clients goes out. It is checked twice, when the SDK starts a call (`aws`) and again when the
//! call's turn comes in the HTTP layer (`in_flight`), since a call queued behind others may have
//! waited while the lease was lost. One of the seven ways a run retries or waits (the list: `wait`).

use std::sync::Mutex;

/// Why no mutating call may go out any more, once that is so.
#[derive(Debug, Default)]
pub struct Fence(Mutex<Option<String>>);

impl Fence {
    /// From now on, every mutating call is refused before it is sent (the first reason stands).
    pub fn close(&self, why: &str) {
        if let Ok(mut f) = self.0.lock() {
            f.get_or_insert_with(|| why.to_owned());
        }
    }

    /// Why mutating calls are refused, if they are.
    pub fn closed(&self) -> Option<String> {
        self.0.lock().ok().and_then(|f| f.clone())
    }

    /// The refusal of a call, when it is mutating and the fence is closed.
    pub fn refuses(&self, mutating: bool) -> Option<Fenced> {
        self.closed().filter(|_| mutating).map(Fenced)
    }
}

/// A mutating call refused because the run lost the stack's lease.
#[derive(Debug)]
pub struct Fenced(pub String);

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not sent: {} (a run that lost the stack's lease makes no further change)", self.0)
    }
}

impl std::error::Error for Fenced {}
