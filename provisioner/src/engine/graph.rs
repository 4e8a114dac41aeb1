//! The graph `up` runs, built from the one list of kinds: a node per kind that `up` makes (its
//! `Kind::node`) and the engine's own steps, an edge from whoever gives a type to every node that
//! needs it. `check` holds it to one giver per type, a giver for every need and no cycle, naming
//! the kinds; `run` starts every node at once — each reads what it can by name (`see`), waits for
//! what it needs, makes its part and gives what it gives — so reads and changes run in parallel
//! along the edges. The plan lists the nodes' rows in `order`: the graph's topological order,
//! ties broken by the list's creation order (the reverse of `KINDS`' teardown order).

use std::collections::HashMap;

use crate::error::Error;
use crate::reconcile::kind::{Down, Edge, Given, Kind, Node};
use crate::reconcile::{Ctx, Plan};

/// A node of the graph: a kind's, or one of the engine's own steps (`kind` None).
#[derive(Clone, Copy)]
pub struct Vertex {
    pub name: &'static str,
    pub node: Node,
    pub kind: Option<&'static Kind>,
}

/// Every kind `up` makes, in creation order, then the engine's own `steps`.
pub fn vertices(kinds: &'static [Kind], steps: &[Vertex]) -> Vec<Vertex> {
    kinds
        .iter()
        .rev()
        .filter_map(|kind| kind.node.map(|node| Vertex { name: kind.name, node, kind: Some(kind) }))
        .chain(steps.iter().copied())
        .collect()
}

/// The order the plan lists the vertices in (indices), once the graph is sound: every type given
/// by one vertex, every need given by a vertex or by the caller (`seeded`), no cycle.
pub fn check(vertices: &[Vertex], seeded: &[Edge]) -> Result<Vec<usize>, String> {
    let mut giver: HashMap<Edge, usize> = HashMap::new();
    for (i, v) in vertices.iter().enumerate() {
        let gives = (v.node.gives)();
        if seeded.contains(&gives) {
            return Err(format!("{} gives {}, which the engine's caller gives already", v.name, gives.name));
        }
        if let Some(j) = giver.insert(gives, i) {
            return Err(format!(
                "{} and {} both give {}: give each kind a type of its own (a struct in its module)",
                vertices[j].name, v.name, gives.name
            ));
        }
    }
    let mut needs: Vec<Vec<usize>> = Vec::new();
    for v in vertices {
        let mut from = Vec::new();
        for edge in (v.node.needs)() {
            match giver.get(&edge) {
                Some(&j) => from.push(j),
                None if seeded.contains(&edge) => {}
                None => {
                    return Err(format!(
                        "{} needs {}, which no kind gives: add the kind that makes it to KINDS \
                         (provisioner/src/resources/mod.rs) with its node",
                        v.name, edge.name
                    ));
                }
            }
        }
        needs.push(from);
    }
    order(vertices, &needs)
}

/// Kahn's topological order, the earliest vertex of the list first among those ready.
fn order(vertices: &[Vertex], needs: &[Vec<usize>]) -> Result<Vec<usize>, String> {
    let mut done = vec![false; vertices.len()];
    let mut order = Vec::with_capacity(vertices.len());
    while order.len() < vertices.len() {
        let next = (0..vertices.len()).find(|&i| !done[i] && needs[i].iter().all(|&j| done[j]));
        let Some(i) = next else {
            let stuck: Vec<&str> = (0..vertices.len()).filter(|&i| !done[i]).map(|i| vertices[i].name).collect();
            return Err(format!("these kinds need each other, in a cycle: {}", stuck.join(", ")));
        };
        done[i] = true;
        order.push(i);
    }
    Ok(order)
}

/// Runs every vertex at once, each as soon as what it needs was given (`seeded` by the caller
/// into `given` before), and returns their plans in `order`. The first error ends the run: what
/// is still running is dropped, as a `try_join` does.
pub async fn run(ctx: &Ctx, vertices: &[Vertex], order: &[usize], given: &Given) -> Result<Plan, Error> {
    let mut plans: Vec<Plan> = vec![Plan::default(); vertices.len()];
    let running = vertices.iter().zip(plans.iter_mut()).map(|(v, plan)| run_one(ctx, v, plan, given));
    futures_util::future::try_join_all(running).await?;
    let mut plan = Plan::default();
    for &i in order {
        plan.extend(std::mem::take(&mut plans[i]));
    }
    Ok(plan)
}

/// One vertex: reads by name, waits for its needs, makes its part, gives what it gives. A kind a
/// setting turns off is torn down instead (what a run left from when it was on) and gives its
/// default.
async fn run_one(ctx: &Ctx, v: &Vertex, plan: &mut Plan, given: &Given) -> Result<(), Error> {
    let node = v.node;
    if let Some(on) = node.on.filter(|on| !(on.when)(&ctx.stack)) {
        let kind = v.kind.expect("only a kind is turned on by a setting");
        (kind.teardown)(ctx, plan, &Down::default()).await?;
        given.put_erased((node.gives)(), (on.off)());
        return Ok(());
    }
    let seen = (node.see)(ctx).await?;
    given.ready(&(node.needs)()).await;
    let gives = (node.reconcile)(ctx, plan, given, seen).await?;
    given.put_erased((node.gives)(), gives);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::kind::{Making, Reconciles};

    /// A test node that needs `N` and gives `G`.
    struct Test<N, G>(std::marker::PhantomData<(N, G)>);

    impl<N: crate::reconcile::kind::Needs, G: Clone + Default + Send + Sync + 'static> Reconciles for Test<N, G> {
        type Needs = N;
        type Seen = ();
        type Gives = G;
        fn see(_: &Ctx) -> Making<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn reconcile<'a>(_: &'a Ctx, _: &'a mut Plan, _: N, (): ()) -> Making<'a, G> {
            Box::pin(async { Ok(G::default()) })
        }
    }

    fn vertex<N: crate::reconcile::kind::Needs, G: Clone + Default + Send + Sync + 'static>(
        name: &'static str,
    ) -> Vertex {
        Vertex { name, node: Node::of::<Test<N, G>>(), kind: None }
    }

    #[test]
    fn the_stacks_graph_is_sound_and_its_plan_order_follows_the_needs() {
        let vertices = vertices(crate::resources::KINDS, super::super::STEPS);
        let order = check(&vertices, &super::super::seeded()).expect("sound");
        let names: Vec<&str> = order.iter().map(|&i| vertices[i].name).collect();
        // Each after what it needs; ties in the reverse of KINDS.
        assert_eq!(
            names,
            [
                "network",
                "secret",
                "ecr-repository",
                "log-group",
                "iam",
                "ecs-cluster",
                "capacity",
                "log-bucket",
                "certificate",
                "load-balancer",
                "dns-alias",
                "sns-topic",
                "alarms",
                "image",
                "ecs-service"
            ]
        );
    }

    #[test]
    fn a_need_no_kind_gives_is_named_with_the_fix() {
        let vertices = [vertex::<(), u8>("a"), vertex::<(u8, u32), u16>("b")];
        let e = check(&vertices, &[]).expect_err("u32 is given by nobody");
        assert!(e.starts_with("b needs u32, which no kind gives: add the kind that makes it to KINDS"), "{e}");
        assert_eq!(check(&vertices, &[Edge::of::<u32>()]), Ok(vec![0, 1]), "the caller gives it");
    }

    #[test]
    fn two_givers_of_one_type_and_cycles_are_refused_by_name() {
        let twice = [vertex::<(), u8>("a"), vertex::<(), u8>("b")];
        assert_eq!(
            check(&twice, &[]),
            Err("a and b both give u8: give each kind a type of its own (a struct in its module)".into())
        );
        let cycle = [vertex::<(), u64>("free"), vertex::<(u16,), u8>("a"), vertex::<(u8,), u16>("b")];
        assert_eq!(check(&cycle, &[]), Err("these kinds need each other, in a cycle: a, b".into()));
    }

    #[tokio::test]
    async fn each_vertex_runs_once_its_needs_are_given_and_the_plan_follows_the_order() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .build();
        let clients = crate::aws::Clients::from_sdk_config(&sdk);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let ctx = Ctx { clients, stack: crate::resources::test_stack(), mode: crate::reconcile::Mode::Plan, deadline };
        // Listed before what it needs: it waits for it.
        let vertices = [vertex::<(u8,), u16>("late"), vertex::<(), u8>("early")];
        let order = check(&vertices, &[]).expect("sound");
        assert_eq!(order, [1, 0]);
        let given = Given::default();
        run(&ctx, &vertices, &order, &given).await.expect("runs");
        assert_eq!(given.get::<u16>(), 0);
    }
}
