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
            let cycle: Vec<&str> = in_cycles(needs, &done).into_iter().map(|i| vertices[i].name).collect();
            return Err(format!("these kinds need each other, in a cycle: {}", cycle.join(", ")));
        };
        done[i] = true;
        order.push(i);
    }
    Ok(order)
}

/// Of the vertices not `done` (each needing, directly or not, a cycle), those in one: what is
/// left once every vertex no other remaining one needs is taken away, again and again.
fn in_cycles(needs: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let mut left: Vec<usize> = (0..needs.len()).filter(|&i| !done[i]).collect();
    loop {
        let needed = |i: usize| left.iter().any(|&j| needs[j].contains(&i));
        let kept: Vec<usize> = left.iter().copied().filter(|&i| needed(i)).collect();
        if kept.len() == left.len() {
            return left;
        }
        left = kept;
    }
}

/// Refuses, before anything is read or changed, a stack one of the vertices could not make.
pub fn refuse(stack: &stack::Stack, vertices: &[Vertex]) -> Result<(), Error> {
    vertices.iter().try_for_each(|v| (v.node.refuse)(stack))
}

/// What the vertices that need `v`'s gift give: what `v`, turned off, waits for before its
/// teardown.
fn dependents(vertices: &[Vertex], v: &Vertex) -> Vec<Edge> {
    let gives = (v.node.gives)();
    vertices.iter().filter(|w| (w.node.needs)().contains(&gives)).map(|w| (w.node.gives)()).collect()
}

/// Runs every vertex at once, each as soon as what it needs was given (`seeded` by the caller
/// into `given` before), and returns their plans in `order`. The first error ends the run: what
/// is still running is dropped, as a `try_join` does.
pub async fn run(ctx: &Ctx, vertices: &[Vertex], order: &[usize], given: &Given) -> Result<Plan, Error> {
    let mut plans: Vec<Plan> = vec![Plan::default(); vertices.len()];
    let running = vertices.iter().zip(plans.iter_mut()).map(|(v, plan)| run_one(ctx, vertices, v, plan, given));
    futures_util::future::try_join_all(running).await?;
    let mut plan = Plan::default();
    for &i in order {
        plan.extend(std::mem::take(&mut plans[i]));
    }
    Ok(plan)
}

/// One vertex: reads by name, waits for its needs, makes its part, gives
/// what it gives. A kind a setting turns off gives its default instead and, once the kinds that
/// need it have made their parts without it, tears down what a run left from when it was on.
async fn run_one(ctx: &Ctx, vertices: &[Vertex], v: &Vertex, plan: &mut Plan, given: &Given) -> Result<(), Error> {
    let node = v.node;
    if let Some(on) = node.on.filter(|on| !(on.when)(&ctx.stack)) {
        let kind = v.kind.expect("only a kind is turned on by a setting");
        given.put_erased((node.gives)(), (on.off)());
        given.ready(&dependents(vertices, v)).await;
        return (kind.teardown)(ctx, plan, &Down::default()).await;
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
    use crate::reconcile::kind::Kind;
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

    fn test_ctx() -> Ctx {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("ap-northeast-1"))
            .build();
        let clients = crate::aws::Clients::from_sdk_config(&sdk);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        Ctx {
            clients,
            stack: crate::resources::test_stack(),
            mode: crate::reconcile::Mode::Plan,
            deadline,
            adopting: Default::default(),
        }
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
                "error-budget",
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
        let cycle = [
            vertex::<(), u64>("free"),
            vertex::<(u16,), u8>("a"),
            vertex::<(u8,), u16>("b"),
            vertex::<(u8, u64), u32>("behind"),
        ];
        assert_eq!(check(&cycle, &[]), Err("these kinds need each other, in a cycle: a, b".into()));
    }

    #[tokio::test]
    async fn each_vertex_runs_once_its_needs_are_given_and_the_plan_follows_the_order() {
        let ctx = test_ctx();
        // Listed before what it needs: it waits for it.
        let vertices = [vertex::<(u8,), u16>("late"), vertex::<(), u8>("early")];
        let order = check(&vertices, &[]).expect("sound");
        assert_eq!(order, [1, 0]);
        let given = Given::default();
        run(&ctx, &vertices, &order, &given).await.expect("runs");
        assert_eq!(given.get::<u16>(), 0);
    }

    /// What happened in the opt-in test, in order.
    static LOG: std::sync::Mutex<Vec<&str>> = std::sync::Mutex::new(Vec::new());

    /// A kind a setting turns off, whose teardown is logged.
    const OFF: Kind = Kind {
        name: "off",
        nouns: &[],
        permissions: &[],
        arn_types: &[],
        name_limits: &[],
        terraform_types: &[],
        deleted_after: &[],
        derived_names: |_| Vec::new(),
        teardown: |_, _, _| {
            Box::pin(async {
                LOG.lock().expect("log").push("teardown");
                Ok(())
            })
        },
        leftovers: |_| Box::pin(async { Ok(Vec::new()) }),
        node: Some(Node::opt_in::<Test<(), u8>>(|_| false)),
    };

    /// What needs the opt-in kind's gift, and logs that it made its part.
    struct User;

    impl Reconciles for User {
        type Needs = (u8,);
        type Seen = ();
        type Gives = u16;
        fn see(_: &Ctx) -> Making<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn reconcile<'a>(_: &'a Ctx, _: &'a mut Plan, (off,): (u8,), (): ()) -> Making<'a, u16> {
            Box::pin(async move {
                assert_eq!(off, 0, "given the default while off");
                LOG.lock().expect("log").push("user made its part");
                Ok(1)
            })
        }
    }

    #[tokio::test]
    async fn a_kind_turned_off_is_torn_down_once_what_needs_it_has_let_go() {
        let vertices = [
            Vertex { name: "off", node: OFF.node.expect("node"), kind: Some(&OFF) },
            Vertex { name: "user", node: Node::of::<User>(), kind: None },
        ];
        let order = check(&vertices, &[]).expect("sound");
        let given = Given::default();
        run(&test_ctx(), &vertices, &order, &given).await.expect("runs");
        assert_eq!(*LOG.lock().expect("log"), ["user made its part", "teardown"]);
    }

    #[test]
    fn a_kind_refuses_a_stack_before_anything_is_read() {
        let mut stack = crate::resources::test_stack();
        stack.service.image = "build".into();
        stack.capacity.instance_type =
            if std::env::consts::ARCH == "aarch64" { "t3.small".into() } else { "t4g.small".into() };
        let vertices = vertices(crate::resources::KINDS, &[]);
        let e = refuse(&stack, &vertices).expect_err("the instances could not run the image built here");
        assert!(e.to_string().contains("capacity.instance_type"), "{e}");
        assert!(refuse(&crate::resources::test_stack(), &vertices).is_ok());
    }
}
