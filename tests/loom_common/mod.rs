//! What the loom tests (`tests/loom_*.rs`) share: a directory module, so that cargo does not
//! build it as a test of its own.

/// Explore every interleaving of `f`'s threads up to preemption bound 3
/// (`LOOM_MAX_PREEMPTIONS` overrides): enough for every schedule of these 2–4 thread tests,
/// and each test file runs in seconds.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}
