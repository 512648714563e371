//! HTML reports: producers save JSON results under `reports/data/` ([`crate::results`]); [`fn@write`]
//! renders them, with plotters charts inline as SVG, into `reports/index.html`.

pub mod charts;
pub mod html;
pub mod mutants;
pub mod provenance;
pub mod reads;
pub mod snapshots;

use std::io;
use std::path::{Path, PathBuf};

pub use crate::results::Results;

/// Where reports go by default, relative to the workspace root.
pub const DEFAULT_DIR: &str = "reports";

/// Criterion's own report, relative to a report directory that sits beside `target/`.
const CRITERION_INDEX: &str = "../target/criterion/report/index.html";

/// Render whatever results are saved under `dir/data/` into `dir/index.html`; returns its path.
pub fn write(dir: &Path) -> io::Result<PathBuf> {
    let results = Results::load(dir)?;
    write_results(dir, &results)
}

/// Render `results` into `dir/index.html`; returns its path.
pub fn write_results(dir: &Path, results: &Results) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    // Link criterion's report only if it exists: a report has no broken links.
    let criterion = Path::new(CRITERION_INDEX);
    let criterion = dir.join(criterion).exists().then_some(criterion);
    let note = format!(
        "paxraft {} on {} ({} cores)",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Reads are saved apart from the other results (their own file, see [`reads`]).
    let read_points = reads::load(dir)?;
    let ratios = reads::load_ratios(dir)?;
    let page = html::render_with_reads(results, &read_points, &ratios, &note, criterion);
    let path = dir.join("index.html");
    std::fs::write(&path, page)?;
    Ok(path)
}
