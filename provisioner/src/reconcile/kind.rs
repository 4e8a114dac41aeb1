//! What a resource kind is to every tool: the `Kind` each kind's module declares once — its name,
//! plan nouns, permissions, what it owns, the limits of what it writes, the Terraform types it
//! takes over, how it is torn down and found left over — and, for the kinds `up` makes, its node
//! of the graph (`Node`): what it needs of other kinds and what it gives them, both typed by its
//! `Reconciles` implementation, so that a kind reads only what it declared and the compiler
//! holds it to that. The engine (`crate::engine`) builds the graph from the one list
//! (`resources::KINDS`) and runs it; the kinds know only this vocabulary.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::reconcile::permission::Permission;
use crate::reconcile::{Ctx, Noun, Plan};

/// A call of a kind's in flight.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// What a kind gave, its type erased (`Edge` names it).
pub type Value = Arc<dyn Any + Send + Sync>;

/// A kind's read or change in flight in `up`'s graph: the engine runs the graph in one task, so
/// it need not be `Send` (what a kind's converge closures borrow would keep it from being so).
pub type Making<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + 'a>>;

/// What a `down` knows before it deletes anything.
#[derive(Debug, Clone, Default)]
pub struct Down {
    /// Delete the secret at once instead of scheduling its deletion.
    pub purge: bool,
}

/// One resource kind, as every tool sees it.
#[derive(Clone, Copy)]
pub struct Kind {
    /// What messages call it.
    pub name: &'static str,
    /// The kind column of its plan rows.
    pub nouns: &'static [Noun],
    /// The IAM actions it calls, how far each reaches and under which conditions.
    pub permissions: &'static [Permission],
    /// `service:type` of what it owns, as ARNs spell them (`ec2:vpc`,
    /// `elasticloadbalancing:loadbalancer`, `s3:` for buckets): the tag sweep leaves these to the
    /// kind's own `leftovers`. Where an ARN has no type, only a name (an SNS topic), the kind
    /// claims its own name exactly, `{stack}` standing for the stack's name
    /// (`sns:{stack}-alarms`): another topic that carries the stack's tag is still reported.
    pub arn_types: &'static [&'static str],
    /// AWS's limit on each name it derives, by plan noun (`stack::limits`): a test holds the
    /// longest stack's names to them.
    pub name_limits: &'static [(Noun, &'static stack::limits::Limit)],
    /// The Terraform AWS provider's resource types whose resources this kind takes over when a
    /// stack made by Terraform is adopted (`aws_vpc`, …).
    pub terraform_types: &'static [&'static str],
    /// The kinds (by name) whose teardown must have finished before this one's starts: what uses
    /// this kind's resources. `teardown` runs every kind as soon as these are gone, so kinds that
    /// need nothing of each other are deleted at once.
    pub deleted_after: &'static [&'static str],
    /// The names it derives from the stack, each with the noun of its plan rows (`<account>`,
    /// `<availability-zone>` where only AWS knows a part): what `render` shows.
    pub derived_names: fn(&stack::Stack) -> Vec<(Noun, String)>,
    /// Deletes what it owns (Plan mode lists it); safe to repeat.
    pub teardown: for<'a> fn(&'a Ctx, &'a mut Plan, &'a Down) -> Pending<'a, ()>,
    /// What of it is still there after a teardown, one line each.
    pub leftovers: for<'a> fn(&'a Ctx) -> Pending<'a, Vec<String>>,
    /// How `up` makes it: None for what only `down` knows (the load test's workers).
    pub node: Option<Node>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind").field("name", &self.name).field("nouns", &self.nouns).finish_non_exhaustive()
    }
}

/// How a kind is made, typed: what it needs of the kinds before it (`Needs`, a tuple of their
/// outputs), what it reads by name alone at the start of a run (`see`, while the kinds it needs
/// are still being made), and what it gives the kinds after it (`Gives`, a type no other kind
/// gives). `reconcile` gets exactly its needs, so a dependency left out of `Needs` does not
/// compile, and one no kind gives fails the graph's check, naming both.
pub trait Reconciles: 'static {
    type Needs: Needs;
    type Seen: 'static;
    type Gives: Clone + Send + Sync + 'static;

    /// Refuses, before anything is read or changed, a stack it could not make (the engine asks
    /// every kind first).
    fn refuse(_: &stack::Stack) -> Result<(), Error> {
        Ok(())
    }

    /// What it reads by name alone, at once with everything else.
    fn see(ctx: &Ctx) -> Making<'_, Self::Seen>;

    /// Observes, records changes in `plan` and in Apply mode makes them, once its needs are given.
    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, needs: Self::Needs, seen: Self::Seen)
    -> Making<'a, Self::Gives>;
}

/// One edge of the graph: the type of what flows along it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Edge {
    pub id: TypeId,
    /// The type's name, for messages.
    pub name: &'static str,
}

impl Edge {
    pub fn of<T: 'static>() -> Self {
        Self { id: TypeId::of::<T>(), name: std::any::type_name::<T>() }
    }
}

/// What a kind needs of others: `()` or a tuple of the types other kinds give.
pub trait Needs: Sized + Send + 'static {
    fn edges() -> Vec<Edge>;
    /// Takes them from what was given; the engine calls it once all `edges` are there.
    fn take(given: &Given) -> Self;
}

impl Needs for () {
    fn edges() -> Vec<Edge> {
        Vec::new()
    }
    fn take(_: &Given) -> Self {}
}

macro_rules! needs_tuple {
    ($($t:ident),+) => {
        impl<$($t: Clone + Send + Sync + 'static),+> Needs for ($($t,)+) {
            fn edges() -> Vec<Edge> {
                vec![$(Edge::of::<$t>()),+]
            }
            fn take(given: &Given) -> Self {
                ($(given.get::<$t>(),)+)
            }
        }
    };
}
needs_tuple!(A);
needs_tuple!(A, B);
needs_tuple!(A, B, C);
needs_tuple!(A, B, C, D);
needs_tuple!(A, B, C, D, E);
needs_tuple!(A, B, C, D, E, F);
needs_tuple!(A, B, C, D, E, F, G);
needs_tuple!(A, B, C, D, E, F, G, H);
needs_tuple!(A, B, C, D, E, F, G, H, I);

/// What the kinds have given so far in a run, by type; the engine waits on `ready`.
#[derive(Default)]
pub struct Given {
    values: Mutex<HashMap<TypeId, Value>>,
    changed: tokio::sync::Notify,
}

impl Given {
    /// Gives `value` to whoever needs its type.
    pub fn put<T: Send + Sync + 'static>(&self, value: T) {
        self.put_erased(Edge::of::<T>(), Arc::new(value));
    }

    pub fn put_erased(&self, edge: Edge, value: Value) {
        let previous = self.values.lock().expect("given").insert(edge.id, value);
        assert!(previous.is_none(), "{} was given twice: two kinds give one type", edge.name);
        self.changed.notify_waiters();
    }

    /// A copy of what was given of type `T`.
    ///
    /// # Panics
    /// When nothing was: the graph's check makes that a bug of the engine's.
    pub fn get<T: Clone + 'static>(&self) -> T {
        let values = self.values.lock().expect("given");
        let value = values.get(&TypeId::of::<T>()).unwrap_or_else(|| {
            panic!("{} was needed before it was given: the graph is checked before it runs", std::any::type_name::<T>())
        });
        value.downcast_ref::<T>().expect("stored by its own type").clone()
    }

    fn has_all(&self, edges: &[Edge]) -> bool {
        let values = self.values.lock().expect("given");
        edges.iter().all(|e| values.contains_key(&e.id))
    }

    /// Once everything of `edges` has been given.
    pub async fn ready(&self, edges: &[Edge]) {
        loop {
            let changed = self.changed.notified();
            if self.has_all(edges) {
                return;
            }
            changed.await;
        }
    }
}

/// A kind's node of the graph, its types erased (made by `Node::of`).
#[derive(Clone, Copy)]
pub struct Node {
    pub needs: fn() -> Vec<Edge>,
    pub gives: fn() -> Edge,
    pub refuse: fn(&stack::Stack) -> Result<(), Error>,
    pub see: for<'a> fn(&'a Ctx) -> Making<'a, Box<dyn Any>>,
    pub reconcile: for<'a> fn(&'a Ctx, &'a mut Plan, &'a Given, Box<dyn Any>) -> Making<'a, Value>,
    /// What turns the kind on, when a setting does; off, it gives `Default` and, once the kinds
    /// that need it have taken that, is torn down.
    pub on: Option<OptIn>,
}

/// A kind a setting turns on (`Node::opt_in`).
#[derive(Clone, Copy)]
pub struct OptIn {
    /// Whether the stack turns it on.
    pub when: fn(&stack::Stack) -> bool,
    /// What it gives while off.
    pub off: fn() -> Value,
}

impl Node {
    /// The node of a kind that `up` always makes.
    pub const fn of<R: Reconciles>() -> Self {
        Self {
            needs: R::Needs::edges,
            gives: Edge::of::<R::Gives>,
            refuse: R::refuse,
            see: see::<R>,
            reconcile: run::<R>,
            on: None,
        }
    }

    /// The node of a kind that `when` turns on: off, it gives its kinds `R::Gives::default()` and,
    /// once they have made their parts without it, `up` tears down what a run left from when it
    /// was on (what uses a resource lets go of it first, as in `down`).
    pub const fn opt_in<R: Reconciles>(when: fn(&stack::Stack) -> bool) -> Self
    where
        R::Gives: Default,
    {
        Self { on: Some(OptIn { when, off: off::<R> }), ..Self::of::<R>() }
    }
}

fn see<R: Reconciles>(ctx: &Ctx) -> Making<'_, Box<dyn Any>> {
    let seeing = R::see(ctx);
    Box::pin(async move { Ok(Box::new(seeing.await?) as Box<dyn Any>) })
}

fn run<'a, R: Reconciles>(ctx: &'a Ctx, plan: &'a mut Plan, given: &'a Given, seen: Box<dyn Any>) -> Making<'a, Value> {
    let needs = R::Needs::take(given);
    let seen = *seen.downcast::<R::Seen>().expect("seen by the same kind");
    let making = R::reconcile(ctx, plan, needs, seen);
    Box::pin(async move { Ok(Arc::new(making.await?) as Value) })
}

fn off<R: Reconciles>() -> Value
where
    R::Gives: Default,
{
    Arc::new(R::Gives::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_is_needed_is_ready_once_every_part_is_given() {
        let given = Given::default();
        let edges = <(u8, String)>::edges();
        given.put(7u8);
        assert!(!given.has_all(&edges));
        let waiting = given.ready(&edges);
        given.put("x".to_owned());
        waiting.await;
        assert_eq!(<(u8, String)>::take(&given), (7, "x".to_owned()));
    }

    #[test]
    #[should_panic(expected = "u8 was given twice")]
    fn one_type_is_given_once() {
        let given = Given::default();
        given.put(1u8);
        given.put(2u8);
    }
}
