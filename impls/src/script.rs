//! Scripted interaction tests: a small command language over [`crate::driver`], whose files hold
//! each command's expected output, in the style of etcd-raft's `testdata/*.txt`.
//!
//! A script is a text file of stanzas. Each stanza is one command line, a `----` line, and the
//! output the command produced, up to a blank line; lines starting with `#` are comments:
//!
//! ```text
//! cluster raft nodes=2 pre-vote=off check-quorum=off
//! ----
//! ok
//!
//! tick 0 election
//! ----
//! n0: Election fires
//!   n0: role Follower->Candidate term 0->1
//!   persist HardState { term: 1, voted_for: Some(NodeId(0)) }
//!   send n0 -> n1: RequestVote { term: 1, last_index: 0, last_term: 0, pre_vote: false }
//! ```
//!
//! [`Script::run`] runs the commands on a fresh cluster and returns what each printed, and
//! [`Script::render`] writes the file back with those outputs, so a test compares the rendered
//! text with the file and, asked to, rewrites the file (a command written without `----` and
//! output gets its output that way). The output of a step is the driver's verbose trace: the
//! step (`n0: Election fires`, `n1 -> n0: Vote {..}` for a delivery), then, indented, the
//! effects it carried out in order (`persist`, `send`, `commit`, `redirect`; timers are left out,
//! `status` lists them) and the changes to the node's status. A broken invariant shows as a
//! `VIOLATION:` line, and the script goes on unchecked.
//!
//! # Commands
//!
//! Nodes are numbered from 0 and written `2` or `n2`; a link is `FROM->TO`, either end `*` for
//! any node. `type=NAME` keeps the messages whose variant is `NAME` (e.g. `type=Append`).
//!
//! | command | does |
//! |---|---|
//! | `cluster raft\|multipaxos [nodes=3] [pre-vote=on\|off] [check-quorum=on\|off] [max-batch=N] [max-inflight=W] [empty-heartbeats=on\|off] [reads=log\|read-index\|lease] [drift=DURATION] [follower-reads=on\|off] [snapshot-every=K] [snapshot-chunk=B] [voters=V] [changes=single\|joint] [window=A] [max-uncommitted=N] [bug=NAME]` | boot a fresh cluster (first command; may start over); `reads=lease` keeps time, `drift` is [`Config::clock_drift`]; `snapshot-every` turns on [`Config::snapshots`] (hosts snapshot every `K` committed slots; `B` bytes per snapshot message, default 8); `voters=V` boots the first `V` nodes as the configuration and the rest as spares; `changes` is [`Config::changes`]; `window` is multi-Paxos's α ([`Config::window`]); `max-uncommitted` caps what a leader holds uncommitted ([`Config::max_uncommitted`]; a refused command shows as `busy=[...]` in the status); `max-inflight` is Raft's in-flight window ([`Config::max_inflight`]) |
//! | `change N ID add:M\|learner:M\|remove:M\|transfer:M` | ask `N` for a membership change ([`Replica::change`]) as request `ID` (a number); `status` lists the answers |
//! | `elect N` | `N` wins an election: with CheckQuorum every other election timer fires first and those bids are dropped, then `N`'s fires and everything is delivered |
//! | `propose N CMD...` | propose the words `CMD...` at `N` |
//! | `read N ID` | ask `N` for linearizable read `ID` (a number), with `reads=read-index` |
//! | `tick N election\|heartbeat` | fire an armed timer (with time: only once it is due on `N`'s clock) |
//! | `time DURATION` | let real time pass (`50ms`, `2s`; with `reads=lease`): every clock advances at its rate |
//! | `clock N slow\|exact\|fast` | from now on `N`'s clock runs slow or fast by the drift bound, or exactly |
//! | `deliver-all` | deliver the oldest message until none is in flight |
//! | `deliver LINK [type=NAME] [count=K]` | deliver the oldest matching message (`K` times) |
//! | `duplicate LINK [type=NAME]` | deliver a copy of the oldest matching message, keeping it in flight |
//! | `drop LINK [type=NAME]` | drop every matching message in flight |
//! | `snapshot N` | `N`'s host snapshots what it applied, up to its commit point, and hands it to the replica ([`Cluster::snapshot`]) |
//! | `crash N`, `restart N` | crash a node (its messages in flight are lost) or restart it from its durable image |
//! | `partition N...`, `heal` | cut the given nodes off from the rest (both ways), or restore every link |
//! | `status [N...]` | each node's role, term, leader, commit point, last slot, armed timers, applied commands |
//! | `log [N...]` | each node's log: `[slot]t<term>:cmd` (Raft), `[slot]r<round>n<node>:cmd` (multi-Paxos), `-` a no-op, `_` a hole, `config{voters}` a configuration (multi-Paxos: `+{learners}` after it) |
//! | `net` | the messages in flight, oldest first |
//! | `trace on\|off` | print the steps of later commands (default on); off, a command prints only its own output |
//!
//! Malformed lines, commands before `cluster` and nodes outside the cluster are a
//! [`ScriptError`] naming the line; what the cluster refuses (a timer that is not armed, no
//! such message in flight) is an `error:` line of output.

use std::fmt;

use crate::driver::{status_line, Cluster, Envelope};
use crate::multipaxos::MultiPaxos;
use crate::raft::Raft;
use crate::replica::{Config, NodeId, Replica, MAX_NODES};

/// A proposed command: a word of the script, printed bare in every trace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Word(pub String);

impl crate::Command for Word {
    fn bytes(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A script line the runner cannot take, with its (1-based) line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// Where.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// What one command printed, against what the script expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The command's line.
    pub line: usize,
    /// The command as written.
    pub command: String,
    /// The output in the file (`None` when the command has no `----` yet).
    pub expected: Option<Vec<String>>,
    /// The output now.
    pub actual: Vec<String>,
}

impl Outcome {
    /// Whether the command printed what the file says.
    pub fn matches(&self) -> bool {
        self.expected.as_ref() == Some(&self.actual)
    }
}

/// A parsed script.
#[derive(Clone, Debug)]
pub struct Script {
    items: Vec<Item>,
}

#[derive(Clone, Debug)]
enum Item {
    /// A comment or blank line, kept as written.
    Text(String),
    Stanza {
        line: usize,
        command: String,
        cmd: Cmd,
        expected: Option<Vec<String>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Raft,
    MultiPaxos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerKind {
    Election,
    Heartbeat,
}

/// Which messages a command picks: `from`/`to` `None` for any node, `kind` a variant name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pick {
    from: Option<usize>,
    to: Option<usize>,
    kind: Option<String>,
}

#[derive(Clone, Debug)]
enum Cmd {
    Cluster {
        protocol: Protocol,
        voters: usize,
        nodes: usize,
        cfg: Box<Config>,
    },
    Elect(usize),
    Propose(usize, Vec<String>),
    Read(usize, u64),
    Change(usize, u64, crate::Change),
    Tick(usize, TimerKind),
    Time(std::time::Duration),
    Clock(usize, crate::lease::ClockRate),
    DeliverAll,
    Deliver(Pick, usize),
    Duplicate(Pick),
    Drop(Pick),
    Snapshot(usize),
    Crash(usize),
    Restart(usize),
    Partition(Vec<usize>),
    Heal,
    Status(Vec<usize>),
    Log(Vec<usize>),
    Net,
    Trace(bool),
}

impl Cmd {
    /// The nodes the command names, to check against the cluster's size.
    fn nodes(&self) -> Vec<usize> {
        match self {
            Cmd::Elect(n)
            | Cmd::Propose(n, _)
            | Cmd::Read(n, _)
            | Cmd::Change(n, _, _)
            | Cmd::Tick(n, _)
            | Cmd::Clock(n, _) => vec![*n],
            Cmd::Crash(n) => vec![*n],
            Cmd::Restart(n) => vec![*n],
            Cmd::Deliver(p, _) | Cmd::Duplicate(p) | Cmd::Drop(p) => {
                p.from.into_iter().chain(p.to).collect()
            }
            Cmd::Partition(ns) | Cmd::Status(ns) | Cmd::Log(ns) => ns.clone(),
            _ => Vec::new(),
        }
    }
}

/// A command line split into positional words and `key=value` options, each taken once.
struct Args<'a> {
    words: Vec<&'a str>,
    opts: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    fn new(rest: impl Iterator<Item = &'a str>) -> Self {
        let (mut words, mut opts) = (Vec::new(), Vec::new());
        for w in rest {
            match w.split_once('=') {
                Some(kv) => opts.push(kv),
                None => words.push(w),
            }
        }
        Args { words, opts }
    }

    fn opt(&mut self, key: &str) -> Option<&'a str> {
        let k = self.opts.iter().position(|(k, _)| *k == key)?;
        Some(self.opts.remove(k).1)
    }

    fn switch(&mut self, key: &str, default: bool) -> Result<bool, String> {
        match self.opt(key) {
            None => Ok(default),
            Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(v) => Err(format!("{key}={v}: expected on or off")),
        }
    }

    fn number(&mut self, key: &str, default: usize) -> Result<usize, String> {
        self.opt(key).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("{key}={v}: expected a number"))
        })
    }

    /// Exactly one positional word.
    fn one(&self) -> Result<&'a str, String> {
        match self.words[..] {
            [w] => Ok(w),
            _ => Err(format!("expected one argument, got {}", self.words.len())),
        }
    }

    /// Every option must have been taken.
    fn done(&self) -> Result<(), String> {
        match self.opts.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!("unknown option {k}")),
        }
    }
}

fn node(w: &str) -> Result<usize, String> {
    let digits = w.strip_prefix('n').unwrap_or(w);
    match digits.parse::<usize>() {
        Ok(n) if n < MAX_NODES => Ok(n),
        _ => Err(format!("{w:?} is not a node (0 to {})", MAX_NODES - 1)),
    }
}

fn pick(args: &mut Args) -> Result<Pick, String> {
    let link = args.one()?;
    let (from, to) = link
        .split_once("->")
        .ok_or_else(|| format!("{link:?} is not a link FROM->TO"))?;
    let end = |w: &str| {
        if w == "*" {
            Ok(None)
        } else {
            node(w).map(Some)
        }
    };
    Ok(Pick {
        from: end(from)?,
        to: end(to)?,
        kind: args.opt("type").map(str::to_string),
    })
}

fn parse_cluster(args: &mut Args) -> Result<Cmd, String> {
    let protocol = match args.one()? {
        p if p == Raft::<Word>::NAME => Protocol::Raft,
        p if p == MultiPaxos::<Word>::NAME => Protocol::MultiPaxos,
        p => return Err(format!("unknown protocol {p:?} (raft or multipaxos)")),
    };
    let nodes = args.number("nodes", 3)?;
    let voters = args.number("voters", nodes)?;
    if !(1..=nodes).contains(&voters) {
        return Err(format!("voters={voters}: expected 1 to {nodes}"));
    }
    let d = Config::default();
    let mut cfg = Config {
        pre_vote: args.switch("pre-vote", d.pre_vote)?,
        check_quorum: args.switch("check-quorum", d.check_quorum)?,
        max_batch: args.number("max-batch", d.max_batch)?,
        max_inflight: args.number("max-inflight", d.max_inflight)?,
        empty_heartbeats: args.switch("empty-heartbeats", d.empty_heartbeats)?,
        follower_reads: args.switch("follower-reads", d.follower_reads)?,
        window: args.number("window", d.window as usize)? as u64,
        max_uncommitted: args.number("max-uncommitted", d.max_uncommitted)?,
        ..d
    };
    if let Some(mode) = args.opt("reads") {
        cfg.reads = crate::ReadMode::parse(mode)
            .ok_or_else(|| format!("reads={mode}: expected log, read-index or lease"))?;
    }
    if let Some(d) = args.opt("drift") {
        let drift = crate::lease::parse_duration(d)
            .ok_or_else(|| format!("drift={d}: expected a duration such as 30ms"))?;
        cfg.clock_drift = Some(drift);
    }
    if let Some(every) = args.opt("snapshot-every") {
        let every = every
            .parse()
            .map_err(|_| format!("snapshot-every={every}: expected a number of slots"))?;
        // Small chunks by default, so that a script shows a snapshot travelling in pieces.
        let chunk = args.number("snapshot-chunk", 8)?;
        cfg.snapshots = Some(crate::SnapshotPolicy { every, chunk });
    }
    if let Some(mode) = args.opt("changes") {
        cfg.changes = crate::ChangeMode::parse(mode)
            .ok_or_else(|| format!("changes={mode}: expected single or joint"))?;
    }
    if let Some(name) = args.opt("bug") {
        let bug = crate::Bug::parse(name).ok_or_else(|| format!("unknown bug {name:?}"))?;
        if !cfg.set_bug(bug) {
            return Err(format!("bug={name} needs the bug-zoo feature"));
        }
    }
    cfg.validate(nodes)?;
    Ok(Cmd::Cluster {
        protocol,
        nodes,
        voters,
        cfg: Box::new(cfg),
    })
}

fn parse_command(text: &str) -> Result<Cmd, String> {
    let mut words = text.split_whitespace();
    let name = words.next().unwrap_or_default();
    let mut args = Args::new(words);
    let nodes = |args: &Args| -> Result<Vec<usize>, String> {
        args.words.iter().map(|w| node(w)).collect()
    };
    let none = |args: &Args| match args.words.len() {
        0 => Ok(()),
        n => Err(format!("{name} takes no arguments, got {n}")),
    };
    let cmd = match name {
        "cluster" => parse_cluster(&mut args)?,
        "elect" => Cmd::Elect(node(args.one()?)?),
        "propose" => match &args.words[..] {
            [n, cmds @ ..] if !cmds.is_empty() => {
                Cmd::Propose(node(n)?, cmds.iter().map(|c| c.to_string()).collect())
            }
            _ => return Err("expected a node and at least one command".into()),
        },
        "read" => match args.words[..] {
            [n, id] => Cmd::Read(
                node(n)?,
                id.parse()
                    .map_err(|_| format!("read id {id:?} is not a number"))?,
            ),
            _ => return Err("expected a node and a read id".into()),
        },
        "tick" => match args.words[..] {
            [n, "election"] => Cmd::Tick(node(n)?, TimerKind::Election),
            [n, "heartbeat"] => Cmd::Tick(node(n)?, TimerKind::Heartbeat),
            _ => return Err("expected a node and election or heartbeat".into()),
        },
        "time" => {
            let d = args.one()?;
            Cmd::Time(
                crate::lease::parse_duration(d)
                    .ok_or_else(|| format!("time {d}: expected a duration such as 50ms"))?,
            )
        }
        "clock" => match args.words[..] {
            [n, rate] => Cmd::Clock(
                node(n)?,
                crate::lease::ClockRate::parse(rate)
                    .ok_or_else(|| format!("clock rate {rate:?}: expected slow, exact or fast"))?,
            ),
            _ => return Err("expected a node and slow, exact or fast".into()),
        },
        "deliver-all" => none(&args).map(|()| Cmd::DeliverAll)?,
        "deliver" => {
            let p = pick(&mut args)?;
            Cmd::Deliver(p, args.number("count", 1)?)
        }
        "duplicate" => Cmd::Duplicate(pick(&mut args)?),
        "drop" => Cmd::Drop(pick(&mut args)?),
        "snapshot" => Cmd::Snapshot(node(args.one()?)?),
        "change" => match args.words[..] {
            [n, id, change] => Cmd::Change(
                node(n)?,
                id.parse()
                    .map_err(|_| format!("change id {id:?}: expected a number"))?,
                crate::Change::parse(change)?,
            ),
            _ => return Err("expected a node, a request id and a change (e.g. add:3)".into()),
        },
        "crash" => Cmd::Crash(node(args.one()?)?),
        "restart" => Cmd::Restart(node(args.one()?)?),
        "partition" if !args.words.is_empty() => Cmd::Partition(nodes(&args)?),
        "partition" => return Err("expected the nodes to cut off".into()),
        "heal" => none(&args).map(|()| Cmd::Heal)?,
        "status" => Cmd::Status(nodes(&args)?),
        "log" => Cmd::Log(nodes(&args)?),
        "net" => none(&args).map(|()| Cmd::Net)?,
        "trace" => match args.one()? {
            "on" => Cmd::Trace(true),
            "off" => Cmd::Trace(false),
            w => return Err(format!("trace {w}: expected on or off")),
        },
        _ => return Err(format!("unknown command {name:?}")),
    };
    args.done()?;
    Ok(cmd)
}

impl Script {
    /// Parse a script's text.
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut items = Vec::new();
        let mut k = 0;
        while k < lines.len() {
            let line = lines[k];
            k += 1;
            if line.trim().is_empty() || line.starts_with('#') {
                items.push(Item::Text(line.to_string()));
                continue;
            }
            if line == "----" {
                let message = "---- without a command before it".into();
                return Err(ScriptError { line: k, message });
            }
            let cmd = parse_command(line).map_err(|message| ScriptError { line: k, message })?;
            let at = k;
            let mut expected = None;
            if lines.get(k) == Some(&"----") {
                let out: Vec<String> = lines[k + 1..]
                    .iter()
                    .take_while(|l| !l.trim().is_empty())
                    .map(|l| l.to_string())
                    .collect();
                k += 1 + out.len();
                expected = Some(out);
            }
            // The blank line that ends a stanza belongs to it: rendering puts it back.
            if lines.get(k).is_some_and(|l| l.trim().is_empty()) {
                k += 1;
            }
            items.push(Item::Stanza {
                line: at,
                command: line.to_string(),
                cmd,
                expected,
            });
        }
        Ok(Script { items })
    }

    /// Run the commands on a fresh cluster, one outcome per command. Fails on the first
    /// command that cannot run (before `cluster`, or naming a node the cluster lacks).
    pub fn run(&self) -> Result<Vec<Outcome>, ScriptError> {
        let mut sim: Option<Sim> = None;
        let mut verbose = true;
        let mut outcomes = Vec::new();
        for item in &self.items {
            let Item::Stanza {
                line,
                command,
                cmd,
                expected,
            } = item
            else {
                continue;
            };
            let err = |message: String| ScriptError {
                line: *line,
                message,
            };
            let actual = match (cmd, &mut sim) {
                (
                    Cmd::Cluster {
                        protocol,
                        nodes,
                        voters,
                        cfg,
                    },
                    _,
                ) => {
                    sim = Some(Sim::new(*protocol, *nodes, *voters, cfg));
                    Vec::new()
                }
                (Cmd::Trace(on), _) => {
                    verbose = *on;
                    Vec::new()
                }
                (_, None) => return Err(err("no cluster yet: start with `cluster`".into())),
                (cmd, Some(sim)) => {
                    let size = sim.len();
                    if let Some(n) = cmd.nodes().into_iter().find(|&n| n >= size) {
                        return Err(err(format!("n{n} is not in this {size}-node cluster")));
                    }
                    sim.exec(cmd, verbose)
                }
            };
            // A command that printed nothing says so, as etcd's scripts do.
            let actual = if actual.is_empty() {
                vec!["ok".to_string()]
            } else {
                actual
            };
            outcomes.push(Outcome {
                line: *line,
                command: command.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(outcomes)
    }

    /// The script's text with each command's output replaced by `outcomes`' (from
    /// [`Script::run`]), in the one layout the parser reads back unchanged.
    pub fn render(&self, outcomes: &[Outcome]) -> String {
        let mut text = String::new();
        let mut outs = outcomes.iter();
        for (k, item) in self.items.iter().enumerate() {
            match item {
                Item::Text(line) => text.push_str(line),
                Item::Stanza { command, .. } => {
                    let out = outs.next().map_or(&[][..], |o| &o.actual[..]);
                    text.push_str(command);
                    text.push_str("\n----\n");
                    text.push_str(&out.join("\n"));
                    if k + 1 < self.items.len() {
                        text.push('\n');
                    }
                }
            }
            text.push('\n');
        }
        text
    }
}

/// A protocol the scripts can print the log of.
trait Scripted: Replica<Word> {
    /// The log as `[slot]<ballot or term>:<command>` words.
    fn log_line(&self) -> String;
}

fn cmd_word(cmd: &Option<Word>) -> &str {
    cmd.as_ref().map_or("-", |w| &w.0)
}

/// A multi-Paxos value: its command, `-` for a no-op, `config{voters}` (learners after a `+`).
fn value_word(value: &crate::multipaxos::Value<Word>) -> String {
    use crate::multipaxos::Value;
    match value {
        Value::Noop => "-".into(),
        Value::Cmd(w) => w.0.clone(),
        Value::Config(m) if m.learners.is_empty() => format!("config{}", m.voters),
        Value::Config(m) => format!("config{}+{}", m.voters, m.learners),
    }
}

impl Scripted for Raft<Word> {
    /// With a snapshot (Raft §7), the log starts with `[..S]tT:snapshot`: the slot and term
    /// of the snapshot's last entry, then the entries after it.
    fn log_line(&self) -> String {
        let snapshot = self
            .snapshot()
            .map(|s| format!("[..{}]t{}:snapshot", s.slot, s.term));
        let start = self.log_start();
        let entries = self.log().iter().zip(start..);
        let words: Vec<String> = snapshot
            .into_iter()
            .chain(entries.map(|(e, k)| match e.config {
                Some(c) => format!("[{k}]t{}:config{}", e.term, c.voters),
                None => format!("[{k}]t{}:{}", e.term, cmd_word(&e.cmd)),
            }))
            .collect();
        words.join(" ")
    }
}

impl Scripted for MultiPaxos<Word> {
    /// With a snapshot kept, the log starts with `[..S]snapshot`: the slots up to `S` are in
    /// it, and only the slots above it are listed.
    fn log_line(&self) -> String {
        let base = self.snapshot_slot();
        let slots = self.log().iter().enumerate();
        let kept = (base > 0).then(|| format!("[..{base}]snapshot"));
        let words: Vec<String> = kept
            .into_iter()
            .chain(slots.map(|(k, e)| match e {
                Some(e) => format!(
                    "[{}]r{}n{}:{}",
                    base + k as u64 + 1,
                    e.ballot.round,
                    e.ballot.node,
                    value_word(&e.value)
                ),
                None => format!("[{}]_", base + k as u64 + 1),
            }))
            .collect();
        words.join(" ")
    }
}

/// The running cluster, of whichever protocol the script chose.
enum Sim {
    Raft(Cluster<Raft<Word>, Word>),
    MultiPaxos(Cluster<MultiPaxos<Word>, Word>),
}

impl Sim {
    fn new(protocol: Protocol, nodes: usize, voters: usize, cfg: &Config) -> Sim {
        fn boot<R: Replica<Word>>(nodes: usize, voters: usize, cfg: &Config) -> Cluster<R, Word> {
            let mut c = Cluster::with_voters(nodes, voters, cfg.clone());
            c.record_violations = true;
            c
        }
        match protocol {
            Protocol::Raft => Sim::Raft(boot(nodes, voters, cfg)),
            Protocol::MultiPaxos => Sim::MultiPaxos(boot(nodes, voters, cfg)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Sim::Raft(c) => c.len(),
            Sim::MultiPaxos(c) => c.len(),
        }
    }

    fn exec(&mut self, cmd: &Cmd, verbose: bool) -> Vec<String> {
        match self {
            Sim::Raft(c) => exec(c, cmd, verbose),
            Sim::MultiPaxos(c) => exec(c, cmd, verbose),
        }
    }
}

/// Run `cmd` on `c`; returns what it printed.
fn exec<R: Scripted>(c: &mut Cluster<R, Word>, cmd: &Cmd, verbose: bool) -> Vec<String> {
    let mark = c.trace.len();
    let seen = c.violation().is_some();
    c.verbose = verbose;
    let mut out = Vec::new();
    if let Err(e) = step(c, cmd, &mut out) {
        out.push(format!("error: {e}"));
    }
    let mut lines: Vec<String> = if verbose {
        c.trace.drain(mark..).collect()
    } else {
        Vec::new()
    };
    if let (false, false, Some(v)) = (seen, verbose, c.violation()) {
        lines.push(format!("VIOLATION: {v}"));
    }
    lines.append(&mut out);
    lines
}

/// The cluster-changing part of [`exec`]: `out` gets the command's own lines, the trace the
/// steps. An `Err` is something the cluster refused.
fn step<R: Scripted>(
    c: &mut Cluster<R, Word>,
    cmd: &Cmd,
    out: &mut Vec<String>,
) -> Result<(), String> {
    match cmd {
        Cmd::Elect(i) => elect(c, *i)?,
        Cmd::Propose(i, cmds) => c.propose(*i, cmds.iter().cloned().map(Word).collect()),
        Cmd::Read(i, _) if !c.is_up(*i) => return Err(format!("n{i} is down")),
        Cmd::Read(i, id) => c.read(*i, *id),
        Cmd::Change(i, _, _) if !c.is_up(*i) => return Err(format!("n{i} is down")),
        Cmd::Change(i, id, change) => c.change(*i, *id, *change),
        Cmd::Tick(i, kind) => {
            let timer = match kind {
                TimerKind::Election => R::election_timer(),
                TimerKind::Heartbeat => R::heartbeat_timer(),
            };
            fire(c, *i, timer)?;
        }
        Cmd::Time(d) => {
            if !c.timed() {
                return Err(
                    "time passes only with reads=lease (without it there is no time)".into(),
                );
            }
            c.advance(*d);
        }
        Cmd::Clock(i, rate) => {
            if !c.timed() {
                return Err("clocks run only with reads=lease".into());
            }
            c.set_rate(*i, *rate);
        }
        Cmd::DeliverAll => c.deliver_all(),
        Cmd::Deliver(p, count) => {
            for _ in 0..*count {
                c.deliver(oldest(c, p)?);
            }
        }
        Cmd::Duplicate(p) => c.duplicate(oldest(c, p)?),
        Cmd::Drop(p) => {
            c.drop_where(|e| p.matches(e));
        }
        Cmd::Snapshot(i) if !c.is_up(*i) => return Err(format!("n{i} is down")),
        Cmd::Snapshot(i) => c.snapshot(*i),
        Cmd::Crash(i) if !c.is_up(*i) => return Err(format!("n{i} is already down")),
        Cmd::Crash(i) => c.crash(*i),
        Cmd::Restart(i) if c.is_up(*i) => return Err(format!("n{i} is up")),
        Cmd::Restart(i) => c.restart(*i),
        Cmd::Partition(side) => c.partition(side),
        Cmd::Heal => c.heal(),
        Cmd::Status(ns) => {
            for i in all_if_none(c, ns) {
                out.push(status(c, i));
            }
        }
        Cmd::Log(ns) => {
            for i in all_if_none(c, ns) {
                out.push(match &c.node(i).replica {
                    Some(r) => format!("n{i}: {}", r.log_line()),
                    None => format!("n{i}: down"),
                });
            }
        }
        Cmd::Net if c.net.is_empty() => out.push("no messages in flight".into()),
        Cmd::Net => out.extend(
            c.net
                .iter()
                .map(|e| format!("{} -> {}: {:?}", e.from, e.to, e.msg)),
        ),
        Cmd::Cluster { .. } | Cmd::Trace(_) => unreachable!("handled by Script::run"),
    }
    Ok(())
}

fn all_if_none<R: Replica<Word>>(c: &Cluster<R, Word>, ns: &[usize]) -> Vec<usize> {
    if ns.is_empty() {
        (0..c.len()).collect()
    } else {
        ns.to_vec()
    }
}

fn status<R: Replica<Word>>(c: &Cluster<R, Word>, i: usize) -> String {
    let n = c.node(i);
    let applied: Vec<&str> = n.applied.values().map(|w| &w.0[..]).collect();
    let mut line = match &n.replica {
        Some(r) if c.timed() => {
            let due: Vec<String> = n
                .deadlines
                .iter()
                .map(|(t, d)| format!("{t:?}@{d:?}"))
                .collect();
            format!(
                "n{i}: {} clock={:?} ({}) timers=[{}]",
                status_line(&r.status()),
                n.clock,
                n.rate,
                due.join(" ")
            )
        }
        Some(r) => format!("n{i}: {} timers={:?}", status_line(&r.status()), n.timers),
        None => format!("n{i}: down"),
    };
    // The configuration, once it is not simply every node of the cluster.
    if let Some(r) = &n.replica {
        let config = r.status().config;
        if config != crate::Membership::voters(crate::NodeSet::first(c.len())) {
            line += &format!(" config=[{config}]");
        }
    }
    line += &format!(" applied=[{}]", applied.join(" "));
    if !n.changes.is_empty() {
        let r: Vec<String> = n
            .changes
            .iter()
            .map(|(id, res)| match res {
                Ok(_) => format!("{id}: ok"),
                Err(e) => format!("{id}: {e}"),
            })
            .collect();
        line += &format!(" changes=[{}]", r.join("; "));
    }
    if !n.redirects.is_empty() {
        let hint = |l: &Option<NodeId>| l.map_or("none".into(), |l| l.to_string());
        let r: Vec<String> = n
            .redirects
            .iter()
            .map(|(w, l)| format!("{}->{}", w.0, hint(l)))
            .collect();
        line += &format!(" redirects=[{}]", r.join(" "));
    }
    if !n.busy.is_empty() {
        let r: Vec<&str> = n.busy.iter().map(|w| &w.0[..]).collect();
        line += &format!(" busy=[{}]", r.join(" "));
    }
    if !n.reads.is_empty() {
        let r: Vec<String> = n.reads.iter().map(|(id, s)| format!("{id}@{s}")).collect();
        line += &format!(" reads=[{}]", r.join(" "));
    }
    if !n.read_redirects.is_empty() {
        let hint = |l: &Option<NodeId>| l.map_or("none".into(), |l| l.to_string());
        let r: Vec<String> = n
            .read_redirects
            .iter()
            .map(|(id, l)| format!("{id}->{}", hint(l)))
            .collect();
        line += &format!(" read-redirects=[{}]", r.join(" "));
    }
    line
}

impl Pick {
    fn matches<M: fmt::Debug>(&self, e: &Envelope<M>) -> bool {
        let kind_ok = self.kind.as_ref().map_or(true, |k| {
            let text = format!("{:?}", e.msg);
            text.strip_prefix(k.as_str())
                .is_some_and(|rest| !rest.starts_with(|ch: char| ch.is_alphanumeric()))
        });
        self.from.map_or(true, |f| e.from.index() == f)
            && self.to.map_or(true, |t| e.to.index() == t)
            && kind_ok
    }

    fn describe(&self) -> String {
        let end = |n: Option<usize>| n.map_or("*".into(), |n| format!("n{n}"));
        let kind = self
            .kind
            .as_ref()
            .map_or(String::new(), |k| format!(" {k}"));
        format!(
            "no{kind} message {}->{} in flight",
            end(self.from),
            end(self.to)
        )
    }
}

fn oldest<R: Replica<Word>>(c: &Cluster<R, Word>, p: &Pick) -> Result<usize, String> {
    c.find(|e| p.matches(e))
        .first()
        .copied()
        .ok_or_else(|| p.describe())
}

fn fire<R: Replica<Word>>(
    c: &mut Cluster<R, Word>,
    i: usize,
    timer: R::Timer,
) -> Result<(), String> {
    if !c.is_up(i) {
        return Err(format!("n{i} is down"));
    }
    if !c.node(i).timers.contains(&timer) {
        return Err(format!("n{i} has no {timer:?} timer armed"));
    }
    if !c.due(i, timer) {
        let n = c.node(i);
        return Err(format!(
            "n{i}'s {timer:?} timer is due at {:?} on its clock, which reads {:?}",
            n.deadlines[&timer], n.clock
        ));
    }
    c.fire(i, timer);
    Ok(())
}

/// Node `i` bids for leadership ([`Cluster::elect`]), if its election timer is armed.
fn elect<R: Replica<Word>>(c: &mut Cluster<R, Word>, i: usize) -> Result<(), String> {
    if !c.is_up(i) {
        return Err(format!("n{i} is down"));
    }
    if !c.node(i).timers.contains(&R::election_timer()) {
        return Err(format!("n{i} has no {:?} timer armed", R::election_timer()));
    }
    c.elect(i);
    Ok(())
}
