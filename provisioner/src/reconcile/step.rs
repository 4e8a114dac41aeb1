//! The one path every sub-resource's change takes: observe → diff → apply → record. What makes a
//! change safe to repeat lives here, once, for every kind:
//! - the ownership check: `observe` returns only what carries our tag and refuses what has our
//!   name without it (`tags::pick_owned`), before and after an apply;
//! - adoption after a lost answer: an apply that fails with "already exists / associated /
//!   duplicate" (a retry of a call that was carried out, or a run killed after it) re-observes,
//!   takes over what carries our tag, and applies what still differs;
//! - repair of duplicates that creates without a token or unique name leave (VPC, internet
//!   gateway, route table): the one in use is kept, unused extras are deleted, and the plan
//!   shows them.
//!
//! Throttling and lost answers are retried below this, by the SDK; waits for eventual
//! consistency are named at the calls that need them (`Ctx::wait`). The adoption loop is one of
//! the seven ways a run retries or waits (the list: `wait`).

use crate::error::Error;
use crate::reconcile::{Action, Change, Ctx, Id, Plan};
use crate::wait::Wait;

/// Something observed in AWS: the id a plan row shows.
pub trait Observed {
    fn id(&self) -> &str;
}

/// Something observed that can have duplicates of ours: whether it is the one in use.
pub trait InUse: Observed {
    fn in_use(&self) -> bool;
}

/// What an apply made: the id of a resource it created (None when it changed the observed one).
pub trait Made {
    fn created_id(&self) -> Option<String>;
}

impl Made for () {
    fn created_id(&self) -> Option<String> {
        None
    }
}

impl Made for String {
    fn created_id(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl Made for Option<String> {
    fn created_id(&self) -> Option<String> {
        self.clone()
    }
}

/// How many times a lost answer is adopted in one step before the error stands.
const MAX_ADOPTIONS: usize = 3;

/// A sub-resource: its kind and name as the plan shows them.
#[derive(Debug)]
pub struct Step<'a> {
    pub ctx: &'a Ctx,
    pub kind: super::Noun,
    pub name: String,
}

/// What a step found and did.
#[derive(Debug)]
pub struct Outcome<O, A> {
    /// What was there (after an adoption: what was adopted).
    pub observed: Option<O>,
    /// What the apply returned, if it ran.
    pub applied: Option<A>,
    pub change: Change,
}

impl<O: Observed, A: Made> Outcome<O, A> {
    /// The resource's id after the step: what the apply created, else what was observed.
    pub fn id(&self) -> Option<String> {
        self.applied.as_ref().and_then(Made::created_id).or_else(|| self.observed.as_ref().map(|o| o.id().to_owned()))
    }

    /// The id as the next kind takes it: known, or pending as `what` (a plan before the create).
    pub fn id_or(&self, what: impl FnOnce() -> String) -> Id {
        Id::from_option(self.id(), what)
    }
}

impl<'a> Step<'a> {
    pub fn new(ctx: &'a Ctx, kind: super::Noun, name: impl Into<String>) -> Self {
        Self { ctx, kind, name: name.into() }
    }

    /// Observes, diffs, applies (in Apply mode, when something differs) and records the change
    /// in `plan`.
    pub async fn converge<O: Observed, A: Made>(
        &self,
        plan: &mut Plan,
        observe: impl AsyncFn() -> Result<Option<O>, Error>,
        diff: impl Fn(Option<&O>) -> Change,
        apply: impl AsyncFn(&Change, Option<&O>) -> Result<A, Error>,
    ) -> Result<Outcome<O, A>, Error> {
        let observed = observe().await?;
        self.converge_observed(plan, observed, observe, diff, apply).await
    }

    /// Like `converge`, starting from what a listing of several sub-resources at once found
    /// (one call for all subnets, say); `observe` looks again only after a lost answer.
    pub async fn converge_observed<O: Observed, A: Made>(
        &self,
        plan: &mut Plan,
        observed: Option<O>,
        observe: impl AsyncFn() -> Result<Option<O>, Error>,
        diff: impl Fn(Option<&O>) -> Change,
        apply: impl AsyncFn(&Change, Option<&O>) -> Result<A, Error>,
    ) -> Result<Outcome<O, A>, Error> {
        let change = diff(observed.as_ref());
        let outcome = self.apply(&observe, &diff, &apply, observed, change).await?;
        plan.push(self.kind, &self.name, outcome.id(), outcome.change.clone());
        Ok(outcome)
    }

    /// Like `converge`, for kinds whose create has neither an idempotency token nor a unique
    /// name, so that a lost answer leaves a second one of ours: keeps the one in use (else the
    /// one this run created, else the first), and deletes the others in Apply mode. The plan
    /// shows each extra as a delete.
    pub async fn converge_one<O: InUse, A: Made>(
        &self,
        plan: &mut Plan,
        observe_all: impl AsyncFn() -> Result<Vec<O>, Error>,
        diff: impl Fn(Option<&O>) -> Change,
        apply: impl AsyncFn(&Change, Option<&O>) -> Result<A, Error>,
        delete: impl AsyncFn(&O) -> Result<(), Error>,
    ) -> Result<Outcome<O, A>, Error> {
        let (keep, mut extras) = choose(observe_all().await?, None);
        let change = diff(keep.as_ref());
        let observe_one = async || Ok(choose(observe_all().await?, None).0);
        let outcome = self.apply(&observe_one, &diff, &apply, keep, change).await?;
        // After a create, or an apply that adopted what a lost answer made, list again: a retried
        // create may have left a second one beside it. What this run created or adopted must be
        // listed before the others can be judged unused.
        let changed = self.ctx.applying() && !outcome.change.is_no_op();
        if let Some(kept) = outcome.id().filter(|_| changed) {
            let all = self
                .ctx
                .wait(Wait::Consistency, &format!("{} {} to be listed", self.kind, self.name), || async {
                    let all = observe_all().await?;
                    if all.iter().any(|o| o.id() == kept) {
                        Ok(all)
                    } else {
                        Err(listing_lags(self.kind.as_str(), &kept))
                    }
                })
                .await?;
            extras = choose(all, Some(&kept)).1;
        }
        plan.push(self.kind, &self.name, outcome.id(), outcome.change.clone());
        for extra in &extras {
            if self.ctx.applying() {
                delete(extra).await?;
                self.ctx.progress(format!(
                    "deleted {} {} ({}): an unused duplicate of ours (a create whose answer was lost)",
                    self.kind,
                    self.name,
                    extra.id()
                ));
            }
            let mut change = Change::delete();
            change.reason = Some("an unused duplicate of ours".into());
            plan.push(self.kind, &self.name, Some(extra.id().to_owned()), change);
        }
        Ok(outcome)
    }

    async fn apply<O: Observed, A: Made>(
        &self,
        observe: &impl AsyncFn() -> Result<Option<O>, Error>,
        diff: &impl Fn(Option<&O>) -> Change,
        apply: &impl AsyncFn(&Change, Option<&O>) -> Result<A, Error>,
        mut observed: Option<O>,
        change: Change,
    ) -> Result<Outcome<O, A>, Error> {
        if !self.ctx.applying() || change.is_no_op() {
            return Ok(Outcome { observed, applied: None, change });
        }
        let mut todo = change.clone();
        let mut adoptions = 0;
        loop {
            match apply(&todo, observed.as_ref()).await {
                Ok(applied) => return Ok(Outcome { observed, applied: Some(applied), change }),
                Err(e) if e.is_already_there() && adoptions < MAX_ADOPTIONS => {
                    adoptions += 1;
                    self.ctx.progress(format!(
                        "{} {}: already there ({}); adopting what carries our tag",
                        self.kind,
                        self.name,
                        e.code().unwrap_or_default()
                    ));
                    // AWS says it exists; its listing can lag behind that answer.
                    let waiting = format!("{} {} to be listed after AWS said it exists", self.kind, self.name);
                    let found = match self
                        .ctx
                        .wait(Wait::Consistency, &waiting, || async {
                            observe().await?.ok_or_else(|| listing_lags(self.kind.as_str(), &self.name))
                        })
                        .await
                    {
                        Ok(found) => found,
                        // Never listed: AWS's own answer says more than our waiting did.
                        Err(Error::Deadline { .. }) => return Err(e),
                        // Found, but not ours (Foreign), or the lookup failed.
                        Err(other) => return Err(other),
                    };
                    todo = diff(Some(&found));
                    observed = Some(found);
                    if todo.is_no_op() {
                        return Ok(Outcome { observed, applied: None, change });
                    }
                    // What is left is an update of the adopted resource.
                    if todo.action == Action::Create {
                        todo.action = Action::Update;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The error a listing that lags behind is retried on (`Wait::Consistency`).
fn listing_lags(kind: &str, what: &str) -> Error {
    crate::wait::not_yet("Listing.NotFound", format!("{kind} {what}"), format!("{kind} {what} is not listed yet"))
}

/// Of our resources found under one name, the one to keep and the extras: in use first, then the
/// one `preferred` names (this run's), then the first by id.
fn choose<O: InUse>(mut all: Vec<O>, preferred: Option<&str>) -> (Option<O>, Vec<O>) {
    all.sort_by(|a, b| a.id().cmp(b.id()));
    let pick = all
        .iter()
        .position(InUse::in_use)
        .or_else(|| preferred.and_then(|p| all.iter().position(|o| o.id() == p)))
        .or(if all.is_empty() { None } else { Some(0) });
    match pick {
        Some(i) => {
            let keep = all.remove(i);
            (Some(keep), all)
        }
        None => (None, all),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{FieldDiff, Mode};
    use std::sync::Mutex;

    #[derive(Debug, Clone, PartialEq)]
    struct Thing {
        id: String,
        size: u32,
        used: bool,
    }

    impl Observed for Thing {
        fn id(&self) -> &str {
            &self.id
        }
    }

    impl InUse for Thing {
        fn in_use(&self) -> bool {
            self.used
        }
    }

    fn ctx(mode: Mode) -> Ctx {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .build();
        Ctx {
            clients: crate::aws::Clients::from_sdk_config(&sdk),
            stack: crate::resources::test_stack(),
            mode,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
            adopting: Default::default(),
        }
    }

    fn diff(want: u32) -> impl Fn(Option<&Thing>) -> Change {
        move |o| match o {
            None => Change::create(vec![FieldDiff::new("size", None, Some(want.to_string()))]),
            Some(t) => Change::update(
                crate::reconcile::compare("size", &t.size, &want).into_iter().collect::<Vec<FieldDiff>>(),
            ),
        }
    }

    fn exists() -> Error {
        Error::Aws {
            action: "create",
            resource: "thing".into(),
            answered_by: "aws_sdk_iam::operation::create_role::CreateRoleError",
            code: Some("EntityAlreadyExists".into()),
            message: "EntityAlreadyExists: thing already exists".into(),
            source: None,
        }
    }

    #[tokio::test]
    async fn a_lost_create_answer_is_adopted_and_what_still_differs_is_applied() {
        // The create was carried out (size 1) but its answer lost; the retry says "exists".
        let world: Mutex<Vec<Thing>> = Mutex::new(Vec::new());
        let calls = Mutex::new(Vec::new());
        let ctx = ctx(Mode::Apply);
        let mut plan = Plan::default();
        let out = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge(
                &mut plan,
                async || Ok(world.lock().expect("lock").first().cloned()),
                diff(2),
                async |c: &Change, o: Option<&Thing>| {
                    calls.lock().expect("lock").push(format!("{:?}", c.action));
                    if o.is_none() {
                        world.lock().expect("lock").push(Thing { id: "t-1".into(), size: 1, used: false });
                        return Err(exists());
                    }
                    world.lock().expect("lock")[0].size = 2;
                    Ok(())
                },
            )
            .await
            .expect("adopted");
        assert_eq!(*calls.lock().expect("lock"), ["Create", "Update"]);
        assert_eq!(out.id().as_deref(), Some("t-1"));
        assert_eq!(world.lock().expect("lock")[0].size, 2);
        assert_eq!(plan.resources.len(), 1);
        assert_eq!(plan.resources[0].change.action, Action::Create, "the plan row shows what the run set out to do");
    }

    #[tokio::test]
    async fn already_there_but_not_ours_is_refused() {
        // The name is taken by a resource without our tag: observe refuses it once it shows.
        let created = Mutex::new(false);
        let ctx = ctx(Mode::Apply);
        let mut plan = Plan::default();
        let r = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge(
                &mut plan,
                async || {
                    if *created.lock().expect("lock") {
                        Err(Error::Foreign {
                            kind: "vpc",
                            name: "t".into(),
                            id: "t-9".into(),
                            stack: "s".into(),
                            owner: None,
                        })
                    } else {
                        Ok(None::<Thing>)
                    }
                },
                diff(2),
                async |_: &Change, _: Option<&Thing>| -> Result<(), Error> {
                    *created.lock().expect("lock") = true;
                    Err(exists())
                },
            )
            .await;
        let e = r.expect_err("not adopted");
        assert!(matches!(e, Error::Foreign { .. }), "{e}");
        assert!(plan.resources.is_empty(), "nothing recorded for a refused step");
    }

    #[tokio::test]
    async fn plan_mode_never_applies() {
        let ctx = ctx(Mode::Plan);
        let mut plan = Plan::default();
        let out = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge(
                &mut plan,
                async || Ok(None::<Thing>),
                diff(2),
                async |_: &Change, _: Option<&Thing>| -> Result<(), Error> { panic!("applied in plan mode") },
            )
            .await
            .expect("plan");
        assert!(out.applied.is_none());
        assert_eq!(plan.summary().create, 1);
    }

    #[tokio::test]
    async fn duplicates_keep_the_one_in_use_and_delete_the_rest() {
        let world = Mutex::new(vec![
            Thing { id: "t-2".into(), size: 2, used: true },
            Thing { id: "t-1".into(), size: 2, used: false },
            Thing { id: "t-3".into(), size: 2, used: false },
        ]);
        let ctx = ctx(Mode::Apply);
        let mut plan = Plan::default();
        let out = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge_one(
                &mut plan,
                async || Ok(world.lock().expect("lock").clone()),
                diff(2),
                async |_: &Change, _: Option<&Thing>| -> Result<(), Error> { panic!("nothing differs") },
                async |o: &Thing| {
                    world.lock().expect("lock").retain(|t| t.id != o.id);
                    Ok(())
                },
            )
            .await
            .expect("repaired");
        assert_eq!(out.id().as_deref(), Some("t-2"));
        assert_eq!(world.lock().expect("lock").iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t-2"]);
        let actions: Vec<Action> = plan.resources.iter().map(|r| r.change.action).collect();
        assert_eq!(actions, [Action::NoOp, Action::Delete, Action::Delete]);
    }

    #[tokio::test]
    async fn an_adoption_after_a_lost_answer_also_removes_the_duplicate_the_retry_left() {
        // A create whose answer was lost, retried by the SDK (two made), then a step of the same
        // apply answered "already there": the run adopts one and must not keep the other.
        let world = Mutex::new(Vec::<Thing>::new());
        let ctx = ctx(Mode::Apply);
        let mut plan = Plan::default();
        let out = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge_one(
                &mut plan,
                async || Ok(world.lock().expect("lock").clone()),
                diff(2),
                async |_: &Change, _: Option<&Thing>| -> Result<String, Error> {
                    let mut w = world.lock().expect("lock");
                    w.push(Thing { id: "t-5".into(), size: 2, used: true });
                    w.push(Thing { id: "t-6".into(), size: 2, used: false });
                    Err(exists())
                },
                async |o: &Thing| {
                    world.lock().expect("lock").retain(|t| t.id != o.id);
                    Ok(())
                },
            )
            .await
            .expect("adopted");
        assert_eq!(out.id().as_deref(), Some("t-5"));
        assert_eq!(world.lock().expect("lock").iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t-5"]);
        assert_eq!(plan.resources.last().map(|r| r.change.action), Some(Action::Delete));
    }

    #[tokio::test]
    async fn a_create_retried_after_a_lost_answer_keeps_this_runs_and_deletes_the_first() {
        // The SDK retried a create whose first answer was lost: two exist, neither in use.
        let world = Mutex::new(Vec::<Thing>::new());
        let ctx = ctx(Mode::Apply);
        let mut plan = Plan::default();
        let out = Step::new(&ctx, crate::reconcile::Noun::new("vpc"), "t")
            .converge_one(
                &mut plan,
                async || Ok(world.lock().expect("lock").clone()),
                diff(2),
                async |_: &Change, _: Option<&Thing>| {
                    let mut w = world.lock().expect("lock");
                    w.push(Thing { id: "t-5".into(), size: 2, used: false });
                    w.push(Thing { id: "t-6".into(), size: 2, used: false });
                    Ok("t-6".to_owned())
                },
                async |o: &Thing| {
                    world.lock().expect("lock").retain(|t| t.id != o.id);
                    Ok(())
                },
            )
            .await
            .expect("created");
        assert_eq!(out.id().as_deref(), Some("t-6"));
        assert_eq!(world.lock().expect("lock").iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["t-6"]);
    }
}
