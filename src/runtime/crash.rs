//! Crash points and the kill switch a node checks at each of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use paxraft_impls::Effect;

/// A place in a node's loop where a crash can hit it (see
/// [`Cluster::crash_at`](super::Cluster::crash_at)). What is at stake at each: before an
/// effect, the batch's earlier writes are not synced and none of its messages or answers has
/// left; at [`CrashPoint::Sync`] all its writes wait for the sync; from the first
/// [`CrashPoint::Push`] on, its writes are durable and only some of its messages (and none of
/// its answers) have left.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// Before carrying out a durable write.
    Persist,
    /// Before queueing a message to a peer.
    Send,
    /// Before arming or cancelling a timer.
    Timer,
    /// Before applying a committed command.
    Commit,
    /// Before turning a proposal away with a leader hint, or busy.
    Redirect,
    /// Before noting a read made ready, or turning a read away with a leader hint.
    Read,
    /// Before noting the answer to a change request (it is sent with the clients' answers).
    Change,
    /// After the batch's effects, before the group sync of its writes (only when it wrote).
    Sync,
    /// After the sync, before pushing one peer's messages (the first: between the sync and
    /// the sends; the others: between the pushes).
    Push,
    /// After the sends, before answering clients and change requests (only when there are
    /// answers).
    Answer,
    /// Waiting for input, everything synced and sent ([`Cluster::crash`](super::Cluster::crash)
    /// of an idle node).
    Idle,
}

impl CrashPoint {
    /// The crash point before carrying out effect `e`.
    pub(super) fn before<M, W, T, C>(e: &Effect<M, W, T, C>) -> Self {
        match e {
            Effect::Persist(_) => CrashPoint::Persist,
            Effect::Send { .. } => CrashPoint::Send,
            Effect::SetTimer { .. } | Effect::CancelTimer(_) => CrashPoint::Timer,
            Effect::Commit { .. } | Effect::Restore(_) => CrashPoint::Commit,
            Effect::Redirect { .. } | Effect::Busy { .. } => CrashPoint::Redirect,
            Effect::ChangeDone { .. } => CrashPoint::Change,
            Effect::ReadReady { .. } | Effect::ReadRedirect { .. } => CrashPoint::Read,
        }
    }
}

/// A node's kill switch: armed by the cluster, checked by the node at every crash point.
/// Kept apart from the mailbox (closing it is what wakes a waiting node) and from the shim of
/// [`sync`](super::sync): like a partition flag, a switch seen a little late is a crash a
/// little later.
///
/// The plan, under its mutex, is the truth; the flag (written under the same lock) only says
/// whether to look at it, so it can be read relaxed: a node that sees it set before the plan
/// is visible finds the plan not armed yet and looks again at its next point.
#[derive(Debug, Default)]
pub(super) struct KillSwitch {
    /// Whether a crash is armed: all that a crash point costs on the hot path is loading it.
    armed: AtomicBool,
    plan: Mutex<KillPlan>,
}

#[derive(Debug, Default)]
struct KillPlan {
    armed: bool,
    /// Fire only at points of this kind (`None`: any).
    at: Option<CrashPoint>,
    /// Matching points still to pass before firing.
    skip: u64,
    /// Where the latest crash hit.
    hit: Option<CrashPoint>,
}

impl KillSwitch {
    fn plan(&self) -> std::sync::MutexGuard<'_, KillPlan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn arm(&self, at: Option<CrashPoint>, skip: u64) {
        let mut p = self.plan();
        (p.armed, p.at, p.skip) = (true, at, skip);
        self.armed.store(true, Ordering::Relaxed);
    }

    pub(super) fn disarm(&self) {
        let mut p = self.plan();
        p.armed = false;
        self.armed.store(false, Ordering::Relaxed);
    }

    pub(super) fn last_hit(&self) -> Option<CrashPoint> {
        self.plan().hit
    }

    /// The node reached crash point `p`: whether it dies here.
    #[inline(always)]
    pub(super) fn hit(&self, p: CrashPoint) -> bool {
        self.armed.load(Ordering::Relaxed) && self.fire(p)
    }

    /// Count `p` against the armed plan; true (and disarmed) when it fires.
    #[cold]
    #[inline(never)]
    pub(super) fn fire(&self, p: CrashPoint) -> bool {
        let mut plan = self.plan();
        if !plan.armed || plan.at.is_some_and(|at| at != p) {
            return false;
        }
        if plan.skip > 0 {
            plan.skip -= 1;
            return false;
        }
        plan.armed = false;
        plan.hit = Some(p);
        self.armed.store(false, Ordering::Relaxed);
        true
    }
}
