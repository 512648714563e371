//! The protocol registry: which protocols there are, their names, and the one place a
//! protocol value becomes a replica type ([`with_protocol`]). Every command (check, explore,
//! simulate, replay, zoo, run, the tour, the benchmarks) dispatches through it, so adding a
//! protocol means one variant here and one arm in [`with_protocol`].

use std::fmt;

use clap::ValueEnum;
use paxraft_impls::multipaxos::MultiPaxos;
use paxraft_impls::raft::Raft;
use paxraft_impls::unreplicated::Unreplicated;
use paxraft_impls::{Bug, Replica};
use paxraft_models::{Checkable, Cmd};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A protocol. The names (CLI values, saved results, reports) are the replicas' `NAME`s.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Raft.
    Raft,
    /// Multi-Paxos.
    #[value(name = "multipaxos")]
    MultiPaxos,
    /// One node, no consensus: the benchmarks' ceiling. Not a command-line value: it has
    /// nothing to model-check, fault-test or inject bugs into, so the commands that take a
    /// protocol never see it (clap does not offer it, [`Protocol::parse`] does not accept it).
    #[value(skip)]
    Unreplicated,
}

impl Protocol {
    /// Every protocol, in report order.
    pub const ALL: [Protocol; 3] = [Protocol::Raft, Protocol::MultiPaxos, Protocol::Unreplicated];

    /// The consensus protocols: what `check`, `explore`, `simulate`, `replay`, `zoo` and `run`
    /// take (clap's possible values).
    pub const REPLICATED: [Protocol; 2] = [Protocol::Raft, Protocol::MultiPaxos];

    /// The name: the replica's `NAME` (`"raft"`, `"multipaxos"`, `"unreplicated"`).
    pub fn name(self) -> &'static str {
        struct Name;
        impl ProtocolVisitor for Name {
            type Output = &'static str;
            fn visit<R: Hosted>(self) -> &'static str {
                R::NAME
            }
        }
        with_protocol(self, Name)
    }

    /// A consensus protocol by name, as the command line spells it (`None` for any other
    /// name, `unreplicated` included): for names read from files.
    pub fn parse(name: &str) -> Option<Protocol> {
        <Protocol as ValueEnum>::from_str(name, false).ok()
    }

    /// The protocol whose replica type is `R`.
    pub fn of<R: Replica<Cmd>>() -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == R::NAME)
    }

    /// The protocol `bug`'s switch lives in; `None` for a bug of the hosts' state machine
    /// (B2), which any protocol can carry.
    pub fn of_bug(bug: Bug) -> Option<Protocol> {
        let name = bug.protocol()?;
        Some(Protocol::parse(name).expect("a bug's protocol is registered"))
    }

    /// The default bound on actions per path of `paxraft check` for this protocol.
    pub fn default_depth(self) -> usize {
        paxraft_models::check::default_depth(self.name())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What every host needs of a replica: model-checkable (state shared between checker
/// threads), durable writes and images that file storage can serialise, and messages the
/// network ([`crate::net`]) can. Carrying the model's command type, which is the runtime's
/// key-value command too.
pub trait Hosted:
    Checkable
    + Replica<
        Cmd,
        Write: Serialize + DeserializeOwned,
        Durable: Serialize + DeserializeOwned,
        Msg: Serialize + DeserializeOwned,
    >
{
}
impl<
        R: Checkable
            + Replica<
                Cmd,
                Write: Serialize + DeserializeOwned,
                Durable: Serialize + DeserializeOwned,
                Msg: Serialize + DeserializeOwned,
            >,
    > Hosted for R
{
}

/// Work to do with a protocol's replica type: a command implements it once, generically, and
/// [`with_protocol`] picks the type.
pub trait ProtocolVisitor {
    /// What the work returns.
    type Output;
    /// Do the work with replica type `R`.
    fn visit<R: Hosted>(self) -> Self::Output;
}

/// Run `v` with `p`'s replica type: the one match from a protocol value to a type.
pub fn with_protocol<V: ProtocolVisitor>(p: Protocol, v: V) -> V::Output {
    match p {
        Protocol::Raft => v.visit::<Raft<Cmd>>(),
        Protocol::MultiPaxos => v.visit::<MultiPaxos<Cmd>>(),
        Protocol::Unreplicated => v.visit::<Unreplicated>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_replicas_and_round_trip_through_the_cli_spelling_and_serde() {
        assert_eq!(
            Protocol::ALL.map(Protocol::name),
            ["raft", "multipaxos", "unreplicated"]
        );
        for p in Protocol::ALL {
            assert_eq!(p.to_string(), p.name());
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(
            Protocol::of::<MultiPaxos<Cmd>>(),
            Some(Protocol::MultiPaxos)
        );
        assert_eq!(Protocol::of::<Unreplicated>(), Some(Protocol::Unreplicated));
        for p in Protocol::REPLICATED {
            assert_eq!(Protocol::parse(p.name()), Some(p));
        }
        // The command line offers exactly the consensus protocols.
        let offered: Vec<String> = Protocol::value_variants()
            .iter()
            .filter_map(|p| p.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(offered, ["raft", "multipaxos"]);
        assert_eq!(Protocol::parse("unreplicated"), None);
        assert_eq!(Protocol::parse("zab"), None);
    }

    #[test]
    fn every_bug_names_a_registered_protocol_or_none() {
        for b in Bug::ALL {
            let want = match b.code().as_bytes()[0] {
                b'R' => Some(Protocol::Raft),
                b'P' => Some(Protocol::MultiPaxos),
                _ => Protocol::of_bug(b),
            };
            assert_eq!(Protocol::of_bug(b), want, "{}", b.code());
        }
        assert_eq!(Protocol::of_bug(Bug::DuplicateApply), None);
        assert_eq!(
            Protocol::of_bug(Bug::ApplyUncommitted),
            Some(Protocol::Raft)
        );
    }
}
