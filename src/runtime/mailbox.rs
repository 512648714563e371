//! A bounded multi-producer, single-consumer mailbox that can be closed.
//!
//! Every replica thread and every client owns one: peers' messages, client proposals, replies
//! and the shutdown/crash signal all travel through it. A consumer drains *everything* queued in
//! one lock acquisition, which is what batches proposals (the leader proposes all of them in
//! one step) and coalesces messages that arrived while it was busy. Producers push a whole
//! batch in one lock acquisition and one wake-up.
//!
//! Closing is the shutdown signal: it wakes the consumer, refuses later pushes (the pusher gets
//! its items back, so nothing is silently lost), and hands the items still queued to the closer.

use std::collections::VecDeque;
use std::time::Instant;

use super::sync::{lock, Condvar, Mutex};

/// Why a push was refused. The items come back to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<T> {
    /// The mailbox was closed (its owner crashed or shut down).
    Closed(Vec<T>),
    /// The mailbox holds its capacity already.
    Full(Vec<T>),
}

#[derive(Debug)]
struct State<T> {
    queue: VecDeque<T>,
    closed: bool,
    /// Whether the consumer is blocked (so producers skip the notify syscall otherwise).
    waiting: bool,
}

/// Why [`Mailbox::push_from`] refused a batch (the items stay with the caller).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The mailbox was closed.
    Closed,
    /// The mailbox holds its capacity already.
    Full,
}

/// What a drain saw.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Items were moved out (maybe zero, when the deadline passed).
    Open,
    /// The mailbox is closed; nothing more will come.
    Closed,
}

/// Where a mailbox's pushes go instead of its queue (see [`Mailbox::set_sink`]): a transport
/// that writes them to a socket from the pushing thread, saving the hand-off to a consumer
/// thread.
#[cfg(not(loom))]
pub trait Sink<T>: Send + Sync {
    /// Take `items` (leaving `items` empty) and answer `Ok(true)`, refuse them (left in
    /// `items`), or answer `Ok(false)` to have them queued in the mailbox as without a sink.
    fn push(&self, items: &mut Vec<T>) -> Result<bool, Refusal>;
    /// The mailbox was closed: refuse from now on, and let the sink's consumer know.
    fn close(&self);
}

/// Where a mailbox's consumer finds items besides its queue (see [`Mailbox::set_source`]): a
/// transport whose connections the consumer's own thread reads, saving the hand-off from a
/// reader thread to the consumer.
#[cfg(not(loom))]
pub trait Source<T>: Send + Sync {
    /// Move what is ready into `into`, without blocking.
    fn poll(&self, into: &mut Vec<T>);
    /// Block until something may be ready, [`Source::wake`] is called, or `deadline`
    /// passes (`None`: no deadline). May return early.
    fn wait(&self, deadline: Option<Instant>);
    /// Wake a consumer blocked in [`Source::wait`] (a push found it waiting, or a close).
    fn wake(&self);
    /// The mailbox was closed: its consumer reads no more, so let go of what feeds it.
    fn close(&self);
}

/// A bounded, closable MPSC queue (see the module docs).
pub struct Mailbox<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    /// How long an empty drain spins before it blocks (zero: block at once).
    #[cfg(not(loom))]
    spin: std::time::Duration,
    /// Set by a push, cleared by a drain: what a spinning consumer watches, lock-free.
    #[cfg(not(loom))]
    nonempty: std::sync::atomic::AtomicBool,
    /// Where pushes go first, if set: one atomic load per push when unset.
    #[cfg(not(loom))]
    sink: std::sync::OnceLock<Box<dyn Sink<T>>>,
    /// Where an empty drain looks, and waits, if set.
    #[cfg(not(loom))]
    source: std::sync::OnceLock<Box<dyn Source<T>>>,
    /// Test-only fault injection (loom must reject each): skip the wake-up on push.
    #[cfg(loom)]
    pub faulty_no_wake: bool,
    /// Test-only fault injection: close without waking the consumer.
    #[cfg(loom)]
    pub faulty_close_no_wake: bool,
    /// Test-only fault injection: the consumer checks for items, lets go of the lock, and
    /// then waits without checking again (a lost wake-up when a push slips in between).
    #[cfg(loom)]
    pub faulty_check_then_wait: bool,
    /// Test-only fault injection: close leaves queued items in the queue instead of handing
    /// them to the closer (so nobody answers them).
    #[cfg(loom)]
    pub faulty_close_keeps_items: bool,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("state", &self.state)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Mailbox<T> {
    /// An open, empty mailbox holding at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0);
        Mailbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                waiting: false,
            }),
            ready: Condvar::new(),
            capacity,
            #[cfg(not(loom))]
            spin: std::time::Duration::ZERO,
            #[cfg(not(loom))]
            nonempty: std::sync::atomic::AtomicBool::new(false),
            #[cfg(not(loom))]
            sink: std::sync::OnceLock::new(),
            #[cfg(not(loom))]
            source: std::sync::OnceLock::new(),
            #[cfg(loom)]
            faulty_no_wake: false,
            #[cfg(loom)]
            faulty_close_no_wake: false,
            #[cfg(loom)]
            faulty_check_then_wait: false,
            #[cfg(loom)]
            faulty_close_keeps_items: false,
        }
    }

    /// An empty mailbox whose consumer, when it finds it empty, first spins for up to `spin`
    /// (watching a flag, without the lock) before it blocks: a hand-off then costs no futex
    /// wake-up on either side, which is most of a replica's per-hop latency. Spinning is off
    /// under loom (it only adds states).
    pub fn with_spin(capacity: usize, spin: std::time::Duration) -> Self {
        #[cfg(loom)]
        let _ = spin;
        #[allow(unused_mut)]
        let mut m = Self::new(capacity);
        #[cfg(not(loom))]
        {
            m.spin = spin;
        }
        m
    }

    /// Push one item.
    pub fn push(&self, item: T) -> Result<(), Refused<T>> {
        self.push_many(vec![item])
    }

    /// Push a batch, all or nothing, in one lock acquisition and at most one wake-up.
    pub fn push_many(&self, mut items: Vec<T>) -> Result<(), Refused<T>> {
        match self.push_from(&mut items) {
            Ok(()) => Ok(()),
            Err(Refusal::Closed) => Err(Refused::Closed(items)),
            Err(Refusal::Full) => Err(Refused::Full(items)),
        }
    }

    /// Push everything in `items`, all or nothing, leaving `items` empty (its allocation is
    /// kept for the caller to reuse: the replica threads' reply path allocates nothing per
    /// step). On refusal the items stay in `items`.
    pub fn push_from(&self, items: &mut Vec<T>) -> Result<(), Refusal> {
        if items.is_empty() {
            return Ok(());
        }
        #[cfg(not(loom))]
        if let Some(sink) = self.sink.get() {
            if sink.push(items)? {
                return Ok(());
            }
        }
        let mut s = lock(&self.state);
        if s.closed {
            return Err(Refusal::Closed);
        }
        if s.queue.len() + items.len() > self.capacity {
            return Err(Refusal::Full);
        }
        s.queue.extend(items.drain(..));
        #[cfg(not(loom))]
        self.nonempty
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let wake = s.waiting;
        drop(s);
        #[cfg(loom)]
        if self.faulty_no_wake {
            return Ok(());
        }
        if wake {
            #[cfg(not(loom))]
            if let Some(source) = self.source.get() {
                source.wake();
                return Ok(());
            }
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Move every queued item into `into`, waiting while the mailbox is empty until an item
    /// arrives, it is closed, or `deadline` passes (`None`: wait indefinitely). Items queued
    /// before a close are still handed out first; `Closed` is returned only once it is empty.
    pub fn drain(&self, into: &mut Vec<T>, deadline: Option<Instant>) -> Drained {
        #[cfg(not(loom))]
        if let Some(source) = self.source.get() {
            return self.drain_with(&**source, into, deadline);
        }
        let mut s = lock(&self.state);
        #[cfg(not(loom))]
        let mut spun = self.spin.is_zero();
        loop {
            if !s.queue.is_empty() {
                into.extend(s.queue.drain(..));
                #[cfg(not(loom))]
                self.nonempty
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                return Drained::Open;
            }
            if s.closed {
                return Drained::Closed;
            }
            #[cfg(not(loom))]
            if !spun {
                spun = true;
                drop(s);
                self.spin_until_nonempty(deadline);
                s = lock(&self.state);
                continue;
            }
            #[cfg(loom)]
            if self.faulty_check_then_wait {
                drop(s);
                s = lock(&self.state);
            }
            s.waiting = true;
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        s.waiting = false;
                        return Drained::Open;
                    }
                    self.ready
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            s.waiting = false;
        }
    }

    /// [`Mailbox::drain`] with a source: the queue and the source are both looked at on each
    /// pass (so neither starves the other), spinning over both for `self.spin` before
    /// blocking in the source's wait, which a push or a close ends.
    #[cfg(not(loom))]
    fn drain_with(
        &self,
        source: &dyn Source<T>,
        into: &mut Vec<T>,
        deadline: Option<Instant>,
    ) -> Drained {
        let start = into.len();
        let mut spin_from: Option<Instant> = None;
        loop {
            let mut s = lock(&self.state);
            if !s.queue.is_empty() {
                into.extend(s.queue.drain(..));
                self.nonempty
                    .store(false, std::sync::atomic::Ordering::Relaxed);
            } else if s.closed {
                return Drained::Closed;
            }
            drop(s);
            source.poll(into);
            if into.len() > start {
                return Drained::Open;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Drained::Open;
            }
            if now < *spin_from.get_or_insert(now) + self.spin {
                std::thread::yield_now();
                continue;
            }
            // Block. `waiting` is set under the lock after the queue was seen empty, so a
            // push after this point wakes the source (see `push_from`); what arrives on the
            // source's own connections ends its wait by itself.
            let mut s = lock(&self.state);
            if !s.queue.is_empty() || s.closed {
                continue;
            }
            s.waiting = true;
            drop(s);
            source.wait(deadline);
            lock(&self.state).waiting = false;
            spin_from = None;
        }
    }

    /// Spin (without the lock) until a push is seen, `self.spin` passes, or `deadline`.
    #[cfg(not(loom))]
    fn spin_until_nonempty(&self, deadline: Option<Instant>) {
        let start = Instant::now();
        let until = deadline.map_or(start + self.spin, |d| d.min(start + self.spin));
        while !self.nonempty.load(std::sync::atomic::Ordering::Relaxed) {
            // Yield rather than busy-wait: with more threads than cores the producer we wait
            // for may need this core.
            std::thread::yield_now();
            if Instant::now() >= until {
                return;
            }
        }
    }

    /// Close: refuse later pushes, wake the consumer, and return what was still queued so the
    /// closer can answer it. Idempotent.
    pub fn close(&self) -> Vec<T> {
        let mut s = lock(&self.state);
        s.closed = true;
        #[cfg(not(loom))]
        self.nonempty
            .store(true, std::sync::atomic::Ordering::Relaxed);
        #[cfg(loom)]
        if self.faulty_close_keeps_items {
            drop(s);
            self.ready.notify_all();
            return Vec::new();
        }
        let left: Vec<T> = s.queue.drain(..).collect();
        drop(s);
        #[cfg(not(loom))]
        if let Some(sink) = self.sink.get() {
            sink.close();
        }
        #[cfg(not(loom))]
        if let Some(source) = self.source.get() {
            source.close();
            source.wake();
        }
        #[cfg(loom)]
        if self.faulty_close_no_wake {
            return left;
        }
        self.ready.notify_all();
        left
    }

    /// Reopen a closed mailbox for a restarted owner. Returns what was queued since the close
    /// (nothing: pushes were refused), for the caller to assert on.
    pub(crate) fn reopen(&self) -> usize {
        let mut s = lock(&self.state);
        s.closed = false;
        s.queue.len()
    }

    /// Send later pushes to `sink` first (a transport's direct write); what it does not take
    /// is queued as before. Set once, before the first push that should reach it (a second
    /// sink is refused and handed back). Not under loom: the sink is the network's.
    #[cfg(not(loom))]
    pub fn set_sink(&self, sink: Box<dyn Sink<T>>) -> Result<(), Box<dyn Sink<T>>> {
        self.sink.set(sink)
    }

    /// Have an empty drain look for items in `source` too, and wait in it (a transport's
    /// connections, read by the consumer's thread). Set once, before the consumer's first
    /// drain (a second source is refused and handed back). Not under loom.
    #[cfg(not(loom))]
    pub fn set_source(&self, source: Box<dyn Source<T>>) -> Result<(), Box<dyn Source<T>>> {
        self.source.set(source)
    }

    /// Whether the mailbox is closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};

    /// A sink that takes even numbers, refuses (full) a batch holding 0, and leaves the
    /// rest to the queue.
    #[derive(Default)]
    struct Evens {
        took: StdMutex<Vec<u32>>,
        closed: AtomicBool,
    }

    impl Sink<u32> for Arc<Evens> {
        fn push(&self, items: &mut Vec<u32>) -> Result<bool, Refusal> {
            if items.contains(&0) {
                return Err(Refusal::Full);
            }
            if items.iter().all(|i| i % 2 == 0) {
                self.took.lock().unwrap().append(items);
                return Ok(true);
            }
            Ok(false)
        }
        fn close(&self) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    /// Pushes reach the sink first: what it takes skips the queue, what it refuses comes
    /// back to the pusher, what it leaves is queued as without a sink; closing the mailbox
    /// closes the sink; a second sink is refused.
    #[test]
    fn a_sink_takes_pushes_before_the_queue() {
        let mb = Mailbox::new(8);
        let sink = Arc::new(Evens::default());
        assert!(mb.set_sink(Box::new(Arc::clone(&sink))).is_ok());
        assert!(mb.set_sink(Box::new(Arc::clone(&sink))).is_err());
        assert_eq!(mb.push_many(vec![2, 4]), Ok(()));
        assert_eq!(mb.push_many(vec![0, 6]), Err(Refused::Full(vec![0, 6])));
        assert_eq!(mb.push_many(vec![1, 8]), Ok(()));
        let mut got = Vec::new();
        assert_eq!(mb.drain(&mut got, Some(Instant::now())), Drained::Open);
        assert_eq!(got, vec![1, 8]);
        assert_eq!(*sink.took.lock().unwrap(), vec![2, 4]);
        assert!(!sink.closed.load(Ordering::Relaxed));
        mb.close();
        assert!(sink.closed.load(Ordering::Relaxed));
    }

    /// A source with items of its own, whose wait ends only when woken (or at the deadline).
    #[derive(Default)]
    struct Fed {
        items: StdMutex<Vec<u32>>,
        woken: StdMutex<bool>,
        ring: std::sync::Condvar,
        closed: AtomicBool,
    }

    impl Source<u32> for Arc<Fed> {
        fn poll(&self, into: &mut Vec<u32>) {
            into.append(&mut self.items.lock().unwrap());
        }
        fn wait(&self, deadline: Option<Instant>) {
            let d = deadline.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(10));
            let mut w = self.woken.lock().unwrap();
            while !*w && Instant::now() < d {
                w = self.ring.wait_timeout(w, d - Instant::now()).unwrap().0;
            }
            *w = false;
        }
        fn wake(&self) {
            *self.woken.lock().unwrap() = true;
            self.ring.notify_one();
        }
        fn close(&self) {
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    /// A drain takes the source's items and the queue's; blocked in the source's wait, it is
    /// woken by a push (no lost wake-up: it would sleep to its 10 s deadline), and by a close,
    /// which closes the source too.
    #[test]
    fn a_source_is_drained_with_the_queue_and_a_push_ends_its_wait() {
        let mb = Arc::new(Mailbox::with_spin(8, std::time::Duration::ZERO));
        let fed = Arc::new(Fed::default());
        assert!(mb.set_source(Box::new(Arc::clone(&fed))).is_ok());
        fed.items.lock().unwrap().push(1);
        mb.push(2).unwrap();
        let mut got = Vec::new();
        assert_eq!(mb.drain(&mut got, None), Drained::Open);
        assert_eq!(got, vec![2, 1], "the queue, then the source");
        let far = Instant::now() + std::time::Duration::from_secs(10);
        let pusher = {
            let mb = Arc::clone(&mb);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                mb.push(3).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
                mb.close();
            })
        };
        got.clear();
        let start = Instant::now();
        assert_eq!(mb.drain(&mut got, Some(far)), Drained::Open);
        assert_eq!(got, vec![3]);
        assert_eq!(mb.drain(&mut got, Some(far)), Drained::Closed);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "woken, not timed out"
        );
        assert!(fed.closed.load(Ordering::Relaxed));
        pusher.join().unwrap();
    }
}
