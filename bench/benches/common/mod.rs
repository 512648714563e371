//! What every criterion benchmark of paxraft shares: the quick switch, whether criterion
//! really measures, and saving results + rewriting the HTML report at the end.
//!
//! The benchmarks live in their own package so that criterion is built only by `cargo bench`:
//! as a dev-dependency of the root package, every `cargo test` compiled it and its
//! dependencies (about a minute of the test command on 2 cores) for targets that never use it.
//! They depend on paxraft without the `bug-zoo` feature, so what they measure is what ships.

use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;

/// The allocator every paxraft binary runs on (see `src/main.rs`): benchmarks measure what
/// ships, and the model-check comparison's reference model runs on the same one.
#[global_allocator]
static ALLOC: paxraft::alloc::RemapLarge<mimalloc::MiMalloc> =
    paxraft::alloc::RemapLarge(mimalloc::MiMalloc);

/// `PAXRAFT_BENCH_QUICK=1` (any value but `0` or empty): a short first look: fewer points and
/// shorter measurements.
pub fn quick() -> bool {
    std::env::var("PAXRAFT_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether criterion measures (`cargo bench`), as opposed to running each benchmark once as a
/// smoke test (`cargo test --benches`, `--test`) or listing them: only real measurements are
/// saved.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |f: &str| args.iter().any(|a| a == f);
    has("--bench")
        && !has("--test")
        && !has("--list")
        && !args.iter().any(|a| a.starts_with("--profile-time"))
}

/// Refuse to benchmark a build that carries the bug-zoo switches (exit 2, one line). This
/// package depends on paxraft without them, but cargo resolves features once per build:
/// `cargo bench` at the workspace root also builds the root package's dev-dependencies,
/// whose `bug-zoo` feature is then on in every package (`cargo tree -e features -i
/// paxraft-impls` shows it), so it is refused here. `cargo bench -p paxraft-bench` builds
/// what ships. A `--test` or `--list` run (nothing measured) is let through.
pub fn require_shipping_build() {
    if paxraft_impls::bugs::COMPILED && measuring() {
        eprintln!(
            "error: this benchmark build carries the bug-zoo switches (cargo unified the root \
             package's dev-dependency features); run `cargo bench -p paxraft-bench`"
        );
        std::process::exit(2);
    }
}

/// Where results and the HTML report go: `reports/` at the workspace root (this package is
/// `bench/` inside it; cargo runs benches from the package's directory).
pub fn report_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the workspace root")
        .join(paxraft::report::DEFAULT_DIR)
}

/// Criterion with the settings shared by the benches (command-line flags still win).
pub fn criterion(warm_up: Duration, measure: Duration) -> Criterion {
    Criterion::default()
        .warm_up_time(warm_up)
        .measurement_time(measure)
        .sample_size(10)
        // Fewer bootstrap resamples: the analysis of 50 points stays in seconds on 2 cores.
        .nresamples(20_000)
        .configure_from_args()
}

/// End a bench binary: criterion's summary (its HTML index), then, when measuring, `save`
/// the results under the report directory and rewrite `reports/index.html` from everything
/// saved there. Each bench target does this, so whichever cargo runs last leaves the report
/// complete.
pub fn finish(
    c: &Criterion,
    what: &str,
    save: impl FnOnce(&std::path::Path) -> std::io::Result<()>,
) {
    c.final_summary();
    if !measuring() {
        return;
    }
    let dir = report_dir();
    if let Err(e) = save(&dir) {
        eprintln!(
            "error: cannot save {what} results in {}: {e}",
            dir.display()
        );
        std::process::exit(1);
    }
    match paxraft::report::write(&dir) {
        Ok(path) => println!(
            "{what}: results saved; report written to {}",
            path.display()
        ),
        Err(e) => {
            eprintln!("error: cannot write the report in {}: {e}", dir.display());
            std::process::exit(1);
        }
    }
}
