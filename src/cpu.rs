//! CPU time used by threads, read from the operating system's per-thread clocks.
//!
//! The benchmarks divide it by the operations a point completed, for the client threads
//! together and for each server's thread ([`crate::results::CpuUse`]): where an operation's
//! CPU goes (clients, leader, followers). Throughput says that one protocol is slower than
//! another or than the unreplicated ceiling; this says which threads spend the difference.
//! It moves with the machine too (in a slow minute an operation costs more CPU as well), so
//! builds are compared by it side by side, as by throughput.
//!
//! Unix only (POSIX thread CPU clocks); elsewhere every reading is `None` and the benchmarks
//! report no CPU use.

use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

/// A thread's id and the CPU time it had used when read (`None`: it was not running, or its
/// clock could not be read).
pub type ThreadCpu = Option<(ThreadId, Duration)>;

/// CPU time the calling thread has used so far.
pub fn this_thread() -> Option<Duration> {
    #[cfg(unix)]
    {
        clock(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// CPU time the calling thread has used since `from` (its own [`this_thread`] reading,
/// taken earlier); `None` if either reading failed.
pub fn this_thread_since(from: Option<Duration>) -> Option<Duration> {
    Some(this_thread()?.saturating_sub(from?))
}

/// CPU time thread `t` has used so far; `None` once it has ended.
pub fn of_thread<T>(t: &JoinHandle<T>) -> Option<Duration> {
    if t.is_finished() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::thread::JoinHandleExt;
        let mut id: libc::clockid_t = 0;
        // SAFETY: a `JoinHandle` keeps its thread joinable (never detached), so the
        // `pthread_t` stays valid while we hold the handle; `id` is a valid out-pointer.
        // (glibc refuses a thread that has exited with ESRCH rather than name the caller's
        // clock.)
        let rc = unsafe { libc::pthread_getcpuclockid(t.as_pthread_t(), &mut id) };
        if rc != 0 {
            return None;
        }
        clock(id)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(unix)]
fn clock(id: libc::clockid_t) -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    (rc == 0).then(|| Duration::new(secs, nanos))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::hint::black_box;
    use std::sync::mpsc;

    /// Spin until this thread's clock has moved by at least `d`.
    fn burn(d: Duration) {
        let start = Some(this_thread().expect("a thread CPU clock"));
        let mut x = 0u64;
        while this_thread_since(start).unwrap() < d {
            x = black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn a_thread_is_charged_its_own_work_and_not_another_threads() {
        let (go, wait) = mpsc::channel::<()>();
        let idle = std::thread::spawn(move || wait.recv().ok());
        let before = of_thread(&idle).expect("a running thread has a clock");
        burn(Duration::from_millis(30));
        let after = of_thread(&idle).unwrap();
        // The idle thread slept through this thread's 30 ms of work.
        assert!(
            after - before < Duration::from_millis(10),
            "an idle thread was charged {:?}",
            after - before
        );
        go.send(()).unwrap();
        idle.join().unwrap();

        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let busy = std::thread::spawn(move || {
            burn(Duration::from_millis(30));
            done_tx.send(()).unwrap();
            stop_rx.recv().ok();
        });
        done_rx.recv().unwrap();
        let used = of_thread(&busy).unwrap();
        assert!(
            used >= Duration::from_millis(30),
            "a thread that worked 30 ms was charged {used:?}"
        );
        stop_tx.send(()).unwrap();
        // Ended: no clock (not the caller's).
        while !busy.is_finished() {
            std::thread::yield_now();
        }
        assert_eq!(of_thread(&busy), None);
        busy.join().unwrap();
    }
}
