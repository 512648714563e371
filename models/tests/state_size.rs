//! Where a checked state's bytes go: a size accounting of deep states of each protocol's
//! default check, by part, measured with a counting allocator (the heap bytes a deep copy of
//! each part allocates, and how many allocations that takes).
//!
//! Stateright keeps every state waiting in its BFS queue whole, sharing only what sits behind
//! an `Arc` (each actor's state, the durable image, the history). What a successor copies is
//! therefore the state's own vectors and maps (network, timers, the per-actor vectors) plus
//! the one actor state the step replaced. `cargo test --release -p paxraft-models --test
//! state_size -- --ignored --nocapture` prints the breakdown; the default run only asserts
//! the budget the compact state keeps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_models::checked::{build_checked, CheckState};
use paxraft_models::model::{Msg, NodeState};
use paxraft_models::{Checkable, Cmd, ModelConfig};
use stateright::Model;

/// The system allocator, counting the bytes and allocations of the thread that makes them:
/// the harness runs this binary's tests on threads side by side, and one test's allocations
/// must not be counted in another's figures.
struct Counting;

thread_local! {
    // Const-initialised cells: reading them never allocates (no recursion into the allocator).
    static BYTES: Cell<usize> = const { Cell::new(0) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // A thread being torn down has no counters left: not counted (no test measures then).
    let _ = BYTES.try_with(|b| b.set(b.get() + bytes));
    let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes and allocations `f` makes (what it returns is dropped after counting).
fn heap<T>(f: impl FnOnce() -> T) -> (usize, usize) {
    let (b, a) = (BYTES.get(), ALLOCS.get());
    let out = f();
    let counted = (BYTES.get() - b, ALLOCS.get() - a);
    drop(out);
    counted
}

/// Bytes and allocations summed over sampled states, by part.
#[derive(Default)]
struct Parts(Vec<(&'static str, usize, usize)>);

impl Parts {
    fn get(&self, part: &str) -> (usize, usize) {
        self.0
            .iter()
            .find(|(p, ..)| *p == part)
            .map_or((0, 0), |e| (e.1, e.2))
    }
    fn add(&mut self, part: &'static str, (bytes, allocs): (usize, usize)) {
        match self.0.iter_mut().find(|(p, ..)| *p == part) {
            Some(e) => {
                e.1 += bytes;
                e.2 += allocs;
            }
            None => self.0.push((part, bytes, allocs)),
        }
    }
}

/// Deep states: a sampled breadth-first search from the initial state, keeping at most
/// `keep` states (picked by a fixed LCG) of each depth, to `depth` actions: what the BFS
/// queue holds near its peak.
fn deep_states<R: Checkable>(cfg: &ModelConfig, depth: usize, keep: usize) -> Vec<CheckState<R>> {
    let model = build_checked::<R>(cfg, Some(depth));
    let mut frontier = model.init_states();
    let mut actions = Vec::new();
    let mut seed: u64 = 1;
    for _ in 0..depth {
        let mut next = Vec::new();
        for s in &frontier {
            actions.clear();
            model.actions(s, &mut actions);
            next.extend(actions.drain(..).filter_map(|a| model.next_state(s, a)));
        }
        if next.is_empty() {
            break;
        }
        while next.len() > keep {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = (seed >> 33) as usize % next.len();
            next.swap_remove(k);
        }
        frontier = next;
    }
    frontier
}

/// The per-state breakdown of `states`: what cloning the state copies, part by part, and the
/// deep size of the shared parts (each actor's state, the durable image, the history).
fn breakdown<R: Checkable>(states: &[CheckState<R>]) -> Parts {
    let mut p = Parts::default();
    for s in states {
        let c = s.cluster();
        p.add(
            "packed (what a queued state owns)",
            heap(|| s.packed().clone()),
        );
        p.add("stateright's layout (shares the Arcs)", heap(|| c.clone()));
        p.add("  network", heap(|| c.network.clone()));
        if let stateright::actor::Network::UnorderedNonDuplicating(m) = &c.network {
            p.add(
                "  (messages in flight, table capacity)",
                (m.len(), m.capacity()),
            );
        }
        p.add("  timers", heap(|| c.timers_set.clone()));
        p.add("  random choices", heap(|| c.random_choices.clone()));
        p.add("  actor state Arcs", heap(|| c.actor_states.clone()));
        p.add("  storages", heap(|| c.actor_storages.clone()));
        p.add("  crashed", heap(|| c.crashed.clone()));
        p.add("  clocks", heap(|| s.clocks.clone()));
        for a in &c.actor_states {
            match &**a {
                NodeState::Server(sv) => {
                    p.add("server state (deep, saved shared)", heap(|| sv.clone()));
                    p.add("  replica", heap(|| sv.replica.clone()));
                    p.add(
                        "  host reads+deadlines",
                        heap(|| (sv.reads.clone(), sv.deadlines.clone())),
                    );
                    p.add("saved image (deep)", heap(|| (**sv.saved).clone()));
                    p.add("  durable", heap(|| sv.saved.durable.clone()));
                    p.add("  sessions+kv", heap(|| sv.saved.sm.clone()));
                    p.add(
                        "  applied+noops",
                        heap(|| (sv.saved.applied.clone(), sv.saved.noops.clone())),
                    );
                }
                NodeState::Client(cl) => p.add("client state (deep)", heap(|| cl.clone())),
                NodeState::Storage(st) => p.add("storage state (deep)", heap(|| st.clone())),
            }
        }
        p.add("history (deep)", heap(|| (*c.history).clone()));
    }
    let servers = states
        .iter()
        .flat_map(|s| &s.cluster().actor_states)
        .filter(|a| a.server().is_some())
        .count();
    eprintln!(
        "{} states; inline size of a state {} B, of an actor state {} B; {} servers sampled",
        states.len(),
        std::mem::size_of::<CheckState<R>>(),
        std::mem::size_of::<NodeState<R>>(),
        servers
    );
    for (part, bytes, allocs) in &p.0 {
        let per = if part.starts_with("server")
            || part.starts_with("  replica")
            || part.starts_with("  host")
            || part.starts_with("saved")
            || part.starts_with("  durable")
            || part.starts_with("  sessions")
            || part.starts_with("  applied")
        {
            servers.max(1)
        } else {
            states.len().max(1)
        };
        eprintln!(
            "{part:<36} {:>7.0} B {:>5.1} allocs per {}",
            *bytes as f64 / per as f64,
            *allocs as f64 / per as f64,
            if per == states.len().max(1) {
                "state"
            } else {
                "server"
            }
        );
    }
    p
}

fn sample<R: Checkable>(depth: usize) {
    let cfg = ModelConfig::default();
    let states = deep_states::<R>(&cfg, depth, 1000);
    eprintln!("== {} (depth {depth})", R::NAME);
    let p = breakdown(&states);
    // The parts listed are all a state copies: they add up to the copy of the whole.
    let whole = p.get("stateright's layout (shares the Arcs)");
    let parts = p.0.iter().filter(|(name, ..)| {
        !name.starts_with("state")
            && name.starts_with("  ")
            && !name.starts_with("  (")
            && [
                "network", "timers", "random", "actor", "storages", "crashed", "clocks",
            ]
            .iter()
            .any(|k| name.trim_start().starts_with(k))
    });
    let sum = parts.fold((0, 0), |(b, a), (_, pb, pa)| (b + pb, a + pa));
    assert_eq!(whole, sum, "the listed parts are the whole copy");
}

/// Prints the breakdown for both protocols at their default depths, from a sampled BFS.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn print_state_breakdown() {
    sample::<Raft<Cmd>>(13);
    sample::<MultiPaxos<Cmd>>(11);
}

/// The compact state's budget: an envelope is five words, a client's state is not the size
/// of a server's, and a state waiting in the queue (packed) owns less than half the heap its
/// copy in stateright's layout would (on a sample of deep Raft states).
#[test]
fn a_state_stays_compact() {
    use paxraft_models::model::ServerState;
    use stateright::actor::Envelope;
    use std::mem::size_of;
    type RaftMsg = <Raft<Cmd> as paxraft_impls::Replica<Cmd>>::Msg;
    type PaxosMsg = <MultiPaxos<Cmd> as paxraft_impls::Replica<Cmd>>::Msg;
    assert!(size_of::<Envelope<Msg<RaftMsg>>>() <= 40);
    assert!(size_of::<Envelope<Msg<PaxosMsg>>>() <= 40);
    assert!(
        size_of::<NodeState<MultiPaxos<Cmd>>>() * 8 < size_of::<ServerState<MultiPaxos<Cmd>>>()
    );
    let states = deep_states::<Raft<Cmd>>(&ModelConfig::default(), 9, 200);
    assert!(states.len() > 100, "a sample of {} states", states.len());
    let (mut packed, mut layout) = (0, 0);
    for s in &states {
        packed += heap(|| s.packed().clone()).0;
        layout += heap(|| s.cluster().clone()).0;
    }
    assert!(
        packed * 2 < layout,
        "packed {packed} bytes against {layout} in stateright's layout"
    );
}

/// The states of depth `depth` exactly, every one (unique states, as the BFS queue holds them
/// when it reaches that depth).
fn level<R: Checkable>(cfg: &ModelConfig, depth: usize) -> Vec<CheckState<R>> {
    use std::hash::{Hash, Hasher};
    let model = build_checked::<R>(cfg, Some(depth + 1));
    let fp = |s: &CheckState<R>| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.hash(&mut h);
        h.finish()
    };
    let mut seen: std::collections::HashSet<u64> = model.init_states().iter().map(fp).collect();
    let mut frontier = model.init_states();
    let mut actions = Vec::new();
    for _ in 0..depth {
        let mut next = Vec::new();
        for s in &frontier {
            actions.clear();
            model.actions(s, &mut actions);
            for a in actions.drain(..) {
                if let Some(n) = model.next_state(s, a) {
                    if seen.insert(fp(&n)) {
                        next.push(n);
                    }
                }
            }
        }
        frontier = next;
    }
    frontier
}

/// What a whole BFS level holds, with what its states share counted once: the bytes each
/// state owns, and each distinct actor state, durable image and history once.
fn level_bytes<R: Checkable>(states: &[CheckState<R>]) {
    use std::collections::HashSet;
    let n = states.len().max(1) as f64;
    let own: usize =
        states.iter().map(|s| heap(|| s.clone()).0).sum::<usize>() + std::mem::size_of_val(states);
    let (mut actors, mut saved, mut history) = (HashSet::new(), HashSet::new(), HashSet::new());
    let (mut actor_bytes, mut saved_bytes, mut history_bytes) = (0, 0, 0);
    let mut clients = 0;
    let (mut payloads, mut payload_bytes) = (HashSet::new(), 0);
    for s in states {
        for a in &s.cluster().actor_states {
            if actors.insert(std::sync::Arc::as_ptr(a)) {
                let deep = match &**a {
                    NodeState::Server(sv) => heap(|| sv.clone()).0,
                    other => {
                        clients += 1;
                        heap(|| other.clone()).0
                    }
                };
                actor_bytes += std::mem::size_of::<NodeState<R>>() + 16 + deep;
            }
            if let NodeState::Server(sv) = &**a {
                if saved.insert(std::sync::Arc::as_ptr(&sv.saved)) {
                    saved_bytes += heap(|| (**sv.saved).clone()).0 + 64;
                }
            }
        }
        for e in s.cluster().network.iter_all() {
            let (ptr, bytes) = match e.msg {
                Msg::Peer(m) => (
                    std::sync::Arc::as_ptr(m) as *const u8,
                    heap(|| (**m).clone()).0 + std::mem::size_of_val(&**m),
                ),
                Msg::Request(c) => (
                    std::sync::Arc::as_ptr(c) as *const u8,
                    heap(|| (**c).clone()).0 + std::mem::size_of_val(&**c),
                ),
                Msg::Reply { answer, .. } => (
                    std::sync::Arc::as_ptr(answer) as *const u8,
                    heap(|| (**answer).clone()).0 + std::mem::size_of_val(&**answer),
                ),
                _ => continue,
            };
            if payloads.insert(ptr) {
                payload_bytes += bytes + 16;
            }
        }
        let h: *const _ = &*s.cluster().history;
        if history.insert(h) {
            history_bytes += heap(|| (*s.cluster().history).clone()).0 + 64;
        }
    }
    eprintln!("{} states at this depth; per state:", states.len());
    eprintln!("  own (inline + copied heap)   {:>7.0} B", own as f64 / n);
    eprintln!(
        "  actor states (shared)        {:>7.0} B ({} distinct, {clients} of clients)",
        actor_bytes as f64 / n,
        actors.len()
    );
    eprintln!(
        "  durable images (shared)      {:>7.0} B ({} distinct)",
        saved_bytes as f64 / n,
        saved.len()
    );
    eprintln!(
        "  message payloads (shared)    {:>7.0} B ({} distinct)",
        payload_bytes as f64 / n,
        payloads.len()
    );
    eprintln!(
        "  histories (shared)           {:>7.0} B ({} distinct)",
        history_bytes as f64 / n,
        history.len()
    );
}

/// Prints what one whole BFS level holds per state, sharing counted.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn print_level_bytes() {
    let cfg = ModelConfig::default();
    eprintln!("== raft, depth 10");
    let raft = level::<Raft<Cmd>>(&cfg, 10);
    assert!(raft.iter().all(|s| s.depth == 10));
    level_bytes(&raft);
    eprintln!("== multipaxos, depth 9");
    let paxos = level::<MultiPaxos<Cmd>>(&cfg, 9);
    assert!(paxos.iter().all(|s| s.depth == 9));
    level_bytes(&paxos);
}
