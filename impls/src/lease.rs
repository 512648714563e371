//! A leader lease (Ongaro's dissertation §6.4.1), shared by both protocols' read paths.
//!
//! A leader numbers its confirmation rounds (Raft's `ReadConfirm`, Paxos's ballot
//! confirmation) and notes, by its own clock, when it sent each one. Once a majority has
//! acknowledged round `r`, sent at `s`, the lease holds until `s + `[`Config::lease`]: no
//! other leader can be elected before then (the argument is on [`Config::lease`]), so the
//! leader may serve reads alone, at its commit point, with no round of their own. Renewal
//! rides on the heartbeat: a leader that served reads under its lease starts a new round with
//! its next heartbeat, so a steady stream of reads never waits for one; an idle leader lets
//! the lease lapse, and its next read confirms with a round as ReadIndex does (and renews the
//! lease with it).
//!
//! The lease lives in the leader's role state, so it dies with the leadership (and with a
//! crash: it is volatile). The protocol never reads a clock: `now` is what the host last told
//! it ([`crate::Replica::set_now`]).
//!
//! **A leadership handed over ends the lease for good** ([`Lease::end`]). A lease rests on
//! the followers' promise to refuse other candidates until their election timers run out;
//! the message that hands the leadership over (Raft's TimeoutNow, diss. §3.10; multi-Paxos's
//! `Handoff`) asks the target to campaign at once, and the others grant a campaign it starts
//! (a `TransferVote`, a `HandoffPrepare`) whatever they promised. So from the moment that
//! message leaves, a new leader may be elected and commit while this one, cut off, still
//! counts its lease: it must not serve a read alone again in this leadership. Not only until
//! the transfer ends: a transfer given up leaves its message in the network, and a late copy
//! still starts a campaign the followers grant (tikv/tikv#1593 for the first window,
//! tikv/raft-rs#234 for the late message; bugs B5 and B6). Reads after it confirm with a
//! round, as ReadIndex does, which no handed-over campaign can fool: a majority that
//! acknowledged a round had not yet voted for the target.

use std::time::Duration;

use crate::bugs::Bug;
use crate::replica::Config;

/// Rounds whose send time a leader remembers while it waits for a majority to acknowledge
/// them. An acknowledgement of a later round confirms every earlier one, so when the list is
/// full the oldest is forgotten: its acknowledgement could only extend the lease less far.
pub const LEASE_ROUNDS: usize = 8;

/// A leader's lease and the rounds that may extend it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The lease holds while the leader's clock reads less than this.
    until: Option<Duration>,
    /// Rounds sent and not yet known to be acknowledged by a majority: (round, sent at), by
    /// increasing round. At most [`LEASE_ROUNDS`].
    sent: Vec<(u64, Duration)>,
    /// A read was served (or asked for) under the lease since the last renewal: the next
    /// heartbeat starts a round to renew it.
    wanted: bool,
    /// The leadership was handed over ([`Lease::end`]): no round extends the lease again.
    ended: bool,
}

impl Lease {
    /// Whether the lease holds at local time `now`.
    pub fn holds(&self, now: Duration) -> bool {
        debug_assert!(!self.ended || self.until.is_none(), "an ended lease holds");
        self.until.is_some_and(|until| now < until)
    }

    /// A host's permission to answer reads alone at slot `at` until the lease ends, if it
    /// holds at `now` ([`crate::Replica::local_reads`]). Asking counts as a read that used
    /// the lease ([`Lease::want`]).
    pub fn local_reads(&mut self, now: Duration, at: crate::Slot) -> Option<crate::LocalReads> {
        let until = self.until.filter(|_| self.holds(now))?;
        self.want();
        Some(crate::LocalReads { until, at })
    }

    /// The leader sent the message that hands its leadership over: the lease ends now and
    /// no acknowledgement extends it again (see the [module docs](self)). Reads confirm with
    /// rounds from now on; the rounds still count as rounds, not as lease renewals.
    pub fn end(&mut self) {
        self.until = None;
        self.sent.clear();
        self.wanted = false;
        self.ended = true;
    }

    /// Round `round` left at local time `now`.
    pub fn sent(&mut self, round: u64, now: Duration) {
        if self.ended {
            return;
        }
        debug_assert!(self.sent.last().map_or(true, |&(r, _)| r < round));
        if self.sent.len() == LEASE_ROUNDS {
            self.sent.remove(0);
        }
        self.sent.push((round, now));
    }

    /// A majority has acknowledged every round up to `round`: extend the lease from the send
    /// time of the latest of them this leader remembers.
    pub fn confirmed(&mut self, round: u64, cfg: &Config) {
        let Some(k) = self.sent.iter().rposition(|&(r, _)| r <= round) else {
            return;
        };
        let (_, at) = self.sent[k];
        self.sent.drain(..=k);
        // R15: the lease lasts a whole election timeout, as if clocks kept perfect time.
        let length = if cfg.bug(Bug::LeaseIgnoresDrift) {
            Some(cfg.election_timeout.start)
        } else {
            cfg.lease()
        };
        let Some(length) = length else { return };
        let until = at + length;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
    }

    /// Note that a read relied on the lease (or waited for a round): renew it at the next
    /// heartbeat.
    pub fn want(&mut self) {
        self.wanted = !self.ended;
    }

    /// At a heartbeat: whether to start a round to renew the lease (and forget the wish).
    pub fn renew(&mut self) -> bool {
        std::mem::take(&mut self.wanted)
    }
}

/// How fast a simulated clock runs against real time, at the extremes [`Config::clock_drift`]
/// allows or exactly: the hosts that simulate time (the driver, the model checker, the
/// fault-schedule simulator) give each replica a rate, and a clock that runs at a constant
/// extreme is the adversary a lease must survive.
#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum ClockRate {
    /// Loses `clock_drift` per election timeout.
    Slow,
    /// Keeps real time.
    #[default]
    Exact,
    /// Gains `clock_drift` per election timeout.
    Fast,
}

impl ClockRate {
    /// Every rate, slowest first.
    pub const ALL: [ClockRate; 3] = [ClockRate::Slow, ClockRate::Exact, ClockRate::Fast];

    /// The name scripts and traces use: `slow`, `exact`, `fast`.
    pub fn name(self) -> &'static str {
        match self {
            ClockRate::Slow => "slow",
            ClockRate::Exact => "exact",
            ClockRate::Fast => "fast",
        }
    }

    /// Parse [`ClockRate::name`].
    pub fn parse(s: &str) -> Option<ClockRate> {
        ClockRate::ALL.into_iter().find(|r| r.name() == s)
    }

    /// How far a clock at this rate advances while `real` time passes: `real (1 ± ρ)` with
    /// `ρ = clock_drift / election_timeout.start`, rounded towards `real` so that it never
    /// drifts beyond the bound. No drift bound: exact.
    pub fn advance(self, real: Duration, cfg: &Config) -> Duration {
        let (Some(d), e) = (cfg.clock_drift, cfg.election_timeout.start.as_nanos()) else {
            return real;
        };
        if e == 0 {
            return real;
        }
        let delta = real.as_nanos() * d.as_nanos() / e;
        let delta = Duration::from_nanos(u64::try_from(delta).unwrap_or(u64::MAX));
        match self {
            ClockRate::Slow => real.saturating_sub(delta),
            ClockRate::Exact => real,
            ClockRate::Fast => real + delta,
        }
    }
}

/// Parse a duration written as a whole number and a unit: `150ms`, `30us`, `2s`, `500ns`.
/// Scripts and the command line use it.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit {
        "ns" => Some(Duration::from_nanos(n)),
        "us" | "µs" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        _ => None,
    }
}

impl std::fmt::Display for ClockRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::ReadMode;

    fn cfg() -> Config {
        Config {
            reads: ReadMode::Lease,
            clock_drift: Some(Duration::from_millis(30)),
            ..Config::default()
        }
    }

    /// A handover ends the lease at once, and for good: a round in flight when it ended, a
    /// round sent after, their confirmations and reads wanting renewal change nothing
    /// (scripts `*lease_transfer.txt` show it in both protocols).
    #[test]
    fn an_ended_lease_never_holds_again() {
        let cfg = cfg();
        let mut l = Lease::default();
        l.sent(1, Duration::from_millis(10));
        l.confirmed(1, &cfg);
        l.sent(2, Duration::from_millis(50));
        assert!(l.holds(Duration::from_millis(60)));
        l.end();
        assert!(!l.holds(Duration::from_millis(60)), "ended at once");
        l.confirmed(2, &cfg);
        l.sent(3, Duration::from_millis(70));
        l.confirmed(3, &cfg);
        l.want();
        assert!(!l.holds(Duration::from_millis(71)));
        assert!(!l.renew(), "no renewal round for an ended lease");
    }

    /// 150 ms election timeout, 30 ms drift: the lease is 150 * 120 / 180 = 100 ms from the
    /// send of the acknowledged round, and holds strictly before its end.
    #[test]
    fn a_confirmed_round_leases_from_its_send_time_for_the_drift_adjusted_length() {
        let cfg = cfg();
        assert_eq!(cfg.lease(), Some(Duration::from_millis(100)));
        let mut l = Lease::default();
        assert!(!l.holds(Duration::ZERO), "no lease before a round");
        l.sent(1, Duration::from_millis(10));
        l.sent(2, Duration::from_millis(60));
        assert!(!l.holds(Duration::from_millis(11)), "sent is not confirmed");
        l.confirmed(1, &cfg);
        assert!(l.holds(Duration::from_millis(109)));
        assert!(!l.holds(Duration::from_millis(110)));
        // A later round extends it; an earlier or repeated confirmation never shortens it.
        l.confirmed(2, &cfg);
        assert!(l.holds(Duration::from_millis(159)));
        l.confirmed(1, &cfg);
        assert!(l.holds(Duration::from_millis(159)));
        assert!(!l.holds(Duration::from_millis(160)));
    }

    /// A confirmation of a later round confirms the latest remembered round below it; the
    /// list of rounds stays bounded, forgetting the oldest.
    #[test]
    fn rounds_are_bounded_and_a_later_ack_confirms_earlier_rounds() {
        let cfg = cfg();
        let mut l = Lease::default();
        for r in 1..=(LEASE_ROUNDS as u64 + 3) {
            l.sent(r, Duration::from_millis(r));
        }
        assert_eq!(l.sent.len(), LEASE_ROUNDS);
        assert_eq!(l.sent[0].0, 4, "the three oldest were forgotten");
        l.confirmed(2, &cfg); // forgotten rounds confirm nothing
        assert!(!l.holds(Duration::ZERO));
        l.confirmed(100, &cfg);
        assert!(l.holds(Duration::from_millis(11 + 99)));
        assert!(!l.holds(Duration::from_millis(11 + 100)));
        assert!(l.sent.is_empty());
    }

    /// 30 ms drift per 150 ms: a 50 ms tick moves a slow clock 40 ms and a fast one 60 ms.
    #[test]
    fn clock_rates_drift_by_the_bound_and_no_more() {
        let cfg = cfg();
        let tick = Duration::from_millis(50);
        let got: Vec<Duration> = ClockRate::ALL
            .iter()
            .map(|r| r.advance(tick, &cfg))
            .collect();
        assert_eq!(got, [40, 50, 60].map(Duration::from_millis));
        // 1 ns at 20%: the 0.2 ns of drift rounds away, towards real time.
        assert_eq!(
            ClockRate::Fast.advance(Duration::from_nanos(1), &cfg),
            Duration::from_nanos(1)
        );
        let exact = Config::default();
        assert_eq!(
            ClockRate::Slow.advance(tick, &exact),
            tick,
            "no bound, no drift"
        );
        for r in ClockRate::ALL {
            assert_eq!(ClockRate::parse(r.name()), Some(r));
        }
    }

    #[test]
    fn durations_parse_with_their_unit_or_not_at_all() {
        assert_eq!(parse_duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(parse_duration("30us"), Some(Duration::from_micros(30)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("7ns"), Some(Duration::from_nanos(7)));
        for bad in ["", "ms", "150", "1.5s", "-3ms", "3 ms", "3h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn renewal_is_asked_once_per_wish() {
        let mut l = Lease::default();
        assert!(!l.renew());
        l.want();
        assert!(l.renew());
        assert!(!l.renew());
    }

    /// The lease length of [`Config::lease`]: E (E - d) / (E + d), none without a bound or
    /// with a bound at least E.
    #[test]
    fn lease_length_shrinks_with_the_drift_bound() {
        let mut c = cfg();
        c.clock_drift = Some(Duration::ZERO);
        assert_eq!(c.lease(), Some(Duration::from_millis(150)));
        c.clock_drift = Some(Duration::from_millis(15));
        // 150 * 135 / 165 = 122.72.. ms, rounded down to the nanosecond.
        assert_eq!(c.lease(), Some(Duration::from_nanos(122_727_272)));
        c.clock_drift = Some(Duration::from_millis(150));
        assert_eq!(c.lease(), None);
        c.clock_drift = None;
        assert_eq!(c.lease(), None);
    }
}

#[cfg(test)]
mod config_tests {
    use std::time::Duration;

    use crate::replica::{Config, ConfigError, ReadMode};

    /// The bad inputs: leases without a drift bound, a bound at least the election
    /// timeout, and leases without CheckQuorum are each refused with their own one-line error;
    /// follower reads go with leases as with ReadIndex.
    #[test]
    fn lease_configurations_are_refused_with_their_reason() {
        let lease = Config {
            reads: ReadMode::Lease,
            clock_drift: Some(Duration::from_millis(30)),
            ..Config::default()
        };
        assert_eq!(lease.validate(3), Ok(()));
        let no_bound = Config {
            clock_drift: None,
            ..lease.clone()
        };
        assert_eq!(
            no_bound.validate(3),
            Err(ConfigError::LeaseWithoutDriftBound)
        );
        let too_large = Config {
            clock_drift: Some(Duration::from_millis(150)),
            ..lease.clone()
        };
        let err = too_large.validate(3).unwrap_err();
        assert_eq!(
            err,
            ConfigError::DriftTooLarge {
                drift: Duration::from_millis(150),
                election: Duration::from_millis(150)
            }
        );
        assert_eq!(
            err.to_string(),
            "the clock drift bound (150ms) must be below the shortest election timeout (150ms): no lease is left"
        );
        let no_cq = Config {
            check_quorum: false,
            ..lease.clone()
        };
        assert_eq!(no_cq.validate(3), Err(ConfigError::LeaseWithoutCheckQuorum));
        let follower = Config {
            follower_reads: true,
            ..lease
        };
        assert_eq!(follower.validate(3), Ok(()));
        let follower_log = Config {
            follower_reads: true,
            ..Config::default()
        };
        assert_eq!(
            follower_log.validate(3),
            Err(ConfigError::FollowerReadsWithoutReadIndex)
        );
    }
}
