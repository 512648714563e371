//! The fault-schedule executor and its proptest search, on a toy stateright model small
//! enough to reason about by hand: a pinger counts pongs, re-pinging on a timer when a
//! message is lost.

use std::borrow::Cow;
use std::time::Duration;

use paxraft::simulate::executor::{Executor, FaultProfile, Phase, Schedule};
use paxraft::simulate::{search, Space, SETTLES};
use stateright::actor::{Actor, ActorModel, Id, LossyNetwork, Network, Out};
use stateright::{Expectation, Model};

#[derive(Clone)]
enum Toy {
    Pinger {
        limit: u8,
    },
    /// Answers a ping with its pong and `extra` echoes the pinger ignores (a burst).
    Ponger {
        extra: u8,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Msg {
    Ping(u8),
    Pong(u8),
    Echo(u8),
}

impl Actor for Toy {
    type Msg = Msg;
    type State = u8; // pongs received (pinger), pings answered (ponger)
    type Timer = ();
    type Random = ();
    type Storage = ();

    fn on_start(&self, _id: Id, _s: &Option<()>, o: &mut Out<Self>) -> u8 {
        if let Toy::Pinger { .. } = self {
            o.send(Id::from(1), Msg::Ping(0));
            o.set_timer((), Duration::from_millis(1)..Duration::from_millis(2));
        }
        0
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<u8>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match (self, msg) {
            (Toy::Ponger { extra }, Msg::Ping(k)) => {
                let v = (**state).max(k);
                *state.to_mut() = v;
                o.send(src, Msg::Pong(k));
                for j in 0..*extra {
                    o.send(src, Msg::Echo(j));
                }
            }
            (Toy::Pinger { limit }, Msg::Pong(k)) if k == **state && k < *limit => {
                *state.to_mut() += 1;
                if **state < *limit {
                    o.send(src, Msg::Ping(**state));
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<u8>, _t: &(), o: &mut Out<Self>) {
        if let Toy::Pinger { limit } = self {
            if **state < *limit {
                o.send(Id::from(1), Msg::Ping(**state));
                o.set_timer((), Duration::from_millis(1)..Duration::from_millis(2));
            }
        }
    }
}

fn model(limit: u8, bad_above: u8) -> ActorModel<Toy, u8, ()> {
    ActorModel::new(bad_above, ())
        .actor(Toy::Pinger { limit })
        .actor(Toy::Ponger { extra: 0 })
        .init_network(Network::new_unordered_nonduplicating([]))
        .lossy_network(LossyNetwork::Yes)
        .property(Expectation::Always, "count stays low", |m, s| {
            *s.actor_states[0] <= m.cfg
        })
        .property(Expectation::Sometimes, "count moves", |_, s| {
            *s.actor_states[0] > 0
        })
}

type ToyModel = ActorModel<Toy, u8, ()>;

fn done(limit: u8) -> impl Fn(&ToyModel, &<ToyModel as Model>::State) -> bool {
    move |_, s| *s.actor_states[0] == limit
}

fn space() -> Space {
    Space {
        max_steps: 60,
        servers: 2,
        max_loss_pct: 30,
        max_crash_pct: 0,
        max_dup_pct: 0,
        partitions: true,
        settle_steps: 200,
        clients_see_all: false,
    }
}

#[test]
fn correct_model_passes_and_settles_after_faults() {
    let m = model(5, 5);
    let exec = Executor::new(&m, done(5));
    let (failure, totals) = search(&exec, &space(), 7, 200);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(totals.runs, 200);
    assert!(totals.steps > 200 * 5, "runs did work: {totals:?}");
}

#[test]
fn a_violation_is_found_shrunk_and_replayed() {
    // The pinger may count to 5 but the property forbids more than 2: the fourth pong breaks
    // it. The shortest failing run is 3 round trips = 6 deliveries.
    let m = model(5, 2);
    let exec = Executor::new(&m, done(5));
    let (failure, _) = search(&exec, &space(), 1, 100);
    let f = failure.expect("the broken property is caught");
    assert_eq!(f.violation.property, "count stays low");
    let (replay, _) = exec.run(&f.schedule);
    assert_eq!(
        replay.violation.as_ref(),
        Some(&f.violation),
        "the shrunk schedule replays exactly"
    );
    assert!(
        replay.path.len() <= 10,
        "shrunk to {} steps: {:?}",
        replay.path.len(),
        replay.path
    );
}

#[test]
fn a_run_that_cannot_settle_is_a_failure() {
    // The pinger stops at 3 but liveness wants 5: settling must report it.
    let m = model(3, 9);
    let exec = Executor::new(&m, done(5));
    let schedule = Schedule {
        profile: FaultProfile::default(),
        choices: vec![],
    };
    let (out, _) = exec.run(&schedule);
    let v = out.violation.expect("never settles");
    assert_eq!((v.property.as_str(), v.phase), (SETTLES, Phase::Settling));
    // It stopped because nothing could happen (no message in flight, no timer armed), long
    // before the 200-step budget: the detail says so rather than blaming the budget.
    assert!(
        v.detail
            .starts_with("not settled: no step was possible after "),
        "{}",
        v.detail
    );
}

#[test]
fn settling_recovers_from_total_loss() {
    // Every faulty step drops what is in flight; settling must still finish the count.
    let m = model(4, 9);
    let exec = Executor::new(&m, done(4));
    let profile = FaultProfile {
        loss_pct: 100,
        ..FaultProfile::default()
    };
    let (out, s) = exec.run(&Schedule {
        profile,
        choices: vec![0; 30],
    });
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert_eq!(*s.actor_states[0], 4);
    assert!(out.faulty_steps >= 1);
}

#[test]
fn quiet_timers_fire_only_when_nothing_else_can_happen() {
    // The pinger counts to 60 over ~120 settling deliveries. Every 64th settling step fires
    // the loud timers anyway (a resend mid-traffic); a quiet timer fires only on an empty
    // network, which happens at most once here (if the faulty phase lost everything).
    let m = model(60, 99);
    let profile = FaultProfile {
        loss_pct: 100,
        ..FaultProfile::default()
    };
    let schedule = Schedule {
        profile,
        choices: vec![0; 10],
    };
    let settling_timeouts = |exec: &Executor<ToyModel>| {
        let (out, s) = exec.run(&schedule);
        assert!(out.violation.is_none(), "{:?}", out.violation);
        assert_eq!(*s.actor_states[0], 60);
        out.path[out.faulty_steps..]
            .iter()
            .filter(|a| matches!(a, stateright::actor::ActorModelAction::Timeout(..)))
            .count()
    };
    let loud = settling_timeouts(&Executor::new(&m, done(60)));
    let quiet = settling_timeouts(&Executor::new(&m, done(60)).quiet_timers(|_, _, _| true));
    assert!(quiet <= 1, "only one the run could need: {quiet}");
    assert!(
        loud > quiet,
        "loud timers fire mid-traffic: {loud} against {quiet}"
    );
}

#[test]
fn settling_takes_a_step_past_the_boundary() {
    // The ponger answers each ping with three messages; the boundary allows two in flight.
    // The faulty phase refuses every delivery of a ping (the walk takes another step), but
    // settling must not: there a refused burst is a dead end, reported as a run that did not
    // settle although nothing is stuck but the walk (multi-Paxos: a leader stepping down
    // hands every queued command back to its client at once).
    let m = ActorModel::new(9, ())
        .actor(Toy::Pinger { limit: 3 })
        .actor(Toy::Ponger { extra: 2 })
        .init_network(Network::new_unordered_nonduplicating([]))
        .within_boundary(|_, s| s.network.len() <= 2);
    let exec = Executor::new(&m, done(3));
    // Faulty: only deliveries (roll 99), none of which may answer a ping.
    let (out, s) = exec.run(&Schedule {
        profile: FaultProfile::default(),
        choices: vec![99; 20],
    });
    assert!(out.violation.is_none(), "{:?}", out.violation);
    assert_eq!(*s.actor_states[0], 3, "settled: every pong counted");
    let answered = |path: &[stateright::actor::ActorModelAction<Msg, (), ()>]| {
        path.iter()
            .filter(|a| {
                matches!(
                    a,
                    stateright::actor::ActorModelAction::Deliver {
                        msg: Msg::Ping(_),
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(
        answered(&out.path[..out.faulty_steps]),
        0,
        "refused while faulty"
    );
    assert!(
        answered(&out.path[out.faulty_steps..]) >= 3,
        "taken while settling"
    );
}
