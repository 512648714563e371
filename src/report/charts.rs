//! Charts drawn with plotters as SVG strings, to be inlined in the HTML report (readable
//! without JavaScript). Every chart has a title, axis labels with units, and a legend.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::results::{BenchPoint, Disruption, RecoveryRun, Trace, Transport};

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart drawing failed: {e:?}")
}

const W: u32 = 820;
const H: u32 = 460;

/// One line of a chart: its legend label and points.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

/// Draw line series on a log-x axis (and log-y if asked).
fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> Res<String> {
    let pts = || series.iter().flat_map(|s| s.points.iter().copied());
    let (xmin, xmax) = pts().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let (ymin, ymax) = pts().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| (a.min(y), b.max(y)));
    if xmin > xmax {
        return Err(format!("{title}: no data"));
    }
    // Pad ranges so single points and flat lines still draw.
    let (xmin, xmax) = if log_x {
        (xmin.max(1e-9) / 1.5, xmax * 1.5)
    } else {
        (xmin.min(0.0), xmax * 1.05 + 1e-9)
    };
    let (ymin, ymax) = if log_y {
        (ymin.max(1e-9) / 2.0, ymax * 2.0)
    } else {
        (0.0, ymax * 1.1 + 1e-9)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(84);
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .y_label_formatter(&|v| human(*v))
                    .x_label_formatter(&|v| human(*v))
                    .draw()
                    .map_err(err)?;
                for (i, s) in series.iter().enumerate() {
                    let color = Palette99::pick(
                        i / if series.iter().any(|s| s.dashed) {
                            2
                        } else {
                            1
                        },
                    )
                    .to_rgba();
                    let style = color.stroke_width(2);
                    let drawn = if s.dashed {
                        chart
                            .draw_series(DashedLineSeries::new(
                                s.points.iter().copied(),
                                6,
                                4,
                                style,
                            ))
                            .map_err(err)?
                    } else {
                        chart
                            .draw_series(LineSeries::new(s.points.iter().copied(), style))
                            .map_err(err)?
                    };
                    // The legend's sample is dashed like its line (a dash longer than the
                    // sample draws it solid): p50 and p99 share a colour.
                    let (dash, gap) = if s.dashed { (6, 4) } else { (40, 1) };
                    drawn.label(s.label.clone()).legend(move |(x, y)| {
                        DashedPathElement::new(vec![(x, y), (x + 20, y)], dash, gap, style)
                    });
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(err)?;
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    // See-through enough that points under the legend still show.
                    .background_style(WHITE.mix(0.6))
                    .border_style(BLACK)
                    .draw()
                    .map_err(err)?;
            }};
        }
        match (log_x, log_y) {
            (true, true) => draw!(b
                .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())
                .map_err(err)?),
            (true, false) => draw!(b
                .build_cartesian_2d((xmin..xmax).log_scale(), ymin..ymax)
                .map_err(err)?),
            (false, true) => draw!(b
                .build_cartesian_2d(xmin..xmax, (ymin..ymax).log_scale())
                .map_err(err)?),
            (false, false) => draw!(b.build_cartesian_2d(xmin..xmax, ymin..ymax).map_err(err)?),
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// 1234567 -> "1.2M": axis labels stay short.
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        // Up to two decimals, without trailing zeros: 2.5, not 2.50.
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A line of the throughput and latency charts: protocol, cluster size, transport.
type Line = (String, usize, Transport);

fn key(p: &BenchPoint) -> Line {
    (p.protocol.clone(), p.servers, p.transport)
}

fn groups(points: &[&BenchPoint]) -> Vec<(Line, Vec<BenchPoint>)> {
    let mut keys: Vec<Line> = points.iter().map(|p| key(p)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let mut v: Vec<BenchPoint> = points
                .iter()
                .filter(|p| key(p) == k)
                .map(|p| (*p).clone())
                .collect();
            v.sort_by_key(|p| p.outstanding);
            (k, v)
        })
        .collect()
}

/// Throughput against outstanding requests (log x), one line per protocol and cluster size.
pub fn throughput(points: &[BenchPoint], payload_bytes: usize) -> Res<String> {
    let pts: Vec<&BenchPoint> = points
        .iter()
        .filter(|p| p.payload_bytes == payload_bytes)
        .collect();
    let series: Vec<Series> = groups(&pts)
        .into_iter()
        .map(|((proto, n, t), v)| Series {
            label: label(&proto, n, t),
            points: v
                .iter()
                .map(|p| (p.outstanding as f64, p.ops_per_sec))
                .collect(),
            dashed: false,
        })
        .collect();
    line_chart(
        &format!("Throughput, {payload_bytes}-byte commands"),
        "outstanding requests (log scale)",
        "committed ops/s",
        &series,
        true,
        false,
    )
}

/// Latency p50 (solid) and p99 (dashed) against outstanding requests, log-log.
pub fn latency(points: &[BenchPoint], payload_bytes: usize) -> Res<String> {
    let pts: Vec<&BenchPoint> = points
        .iter()
        .filter(|p| p.payload_bytes == payload_bytes)
        .collect();
    let mut series = Vec::new();
    for ((proto, n, t), v) in groups(&pts) {
        series.push(Series {
            label: format!("{} p50", label(&proto, n, t)),
            points: v.iter().map(|p| (p.outstanding as f64, p.p50_us)).collect(),
            dashed: false,
        });
        series.push(Series {
            label: format!("{} p99", label(&proto, n, t)),
            points: v.iter().map(|p| (p.outstanding as f64, p.p99_us)).collect(),
            dashed: true,
        });
    }
    line_chart(
        &format!("Latency, {payload_bytes}-byte commands"),
        "outstanding requests (log scale)",
        "latency, µs (log scale)",
        &series,
        true,
        true,
    )
}

/// Throughput over time around a leader crash or a leadership transfer.
pub fn recovery(runs: &[RecoveryRun]) -> Res<String> {
    let series: Vec<Series> = runs
        .iter()
        .map(|r| Series {
            label: format!(
                "{} ({} at {:.0} ms)",
                label(&r.protocol, r.servers, Transport::InProcess),
                match r.event {
                    Disruption::Crash => "crash",
                    Disruption::Transfer => "transfer",
                },
                r.crash_at_ms
            ),
            points: r.samples.clone(),
            dashed: false,
        })
        .collect();
    line_chart(
        "Recovery: throughput around a leader crash or a leadership transfer",
        "time, ms",
        "committed ops/s",
        &series,
        false,
        false,
    )
}

/// Throughput against the share of reads, one line per protocol, read path and load.
pub fn reads(points: &[&super::reads::ReadPoint]) -> Res<String> {
    let mut keys: Vec<(String, String, usize, usize)> = points
        .iter()
        .map(|p| {
            (
                p.point.protocol.clone(),
                p.path.clone(),
                p.point.servers,
                p.point.outstanding,
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let loads: std::collections::BTreeSet<usize> = keys.iter().map(|k| k.3).collect();
    let series: Vec<Series> = keys
        .into_iter()
        .map(|(proto, path, n, out)| {
            let mut pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| {
                    p.point.protocol == proto
                        && p.path == path
                        && p.point.servers == n
                        && p.point.outstanding == out
                })
                .map(|p| (f64::from(p.read_percent), p.point.ops_per_sec))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let at = if loads.len() > 1 {
                format!(", {out} outstanding")
            } else {
                String::new()
            };
            Series {
                label: format!("{}, {path}{at}", label(&proto, n, Transport::InProcess)),
                points: pts,
                dashed: false,
            }
        })
        .collect();
    line_chart(
        "Reads: throughput by read share and read path",
        "reads, % of operations",
        "ops/s (gets and puts)",
        &series,
        false,
        false,
    )
}

fn label(protocol: &str, servers: usize, transport: Transport) -> String {
    // The ceiling serves from one node: say whether it ran alone or beside idle peers.
    let line = if protocol == "unreplicated" && servers == 1 {
        "unreplicated, 1 server".into()
    } else if protocol == "unreplicated" {
        format!("unreplicated, 1 of {servers} serving")
    } else {
        format!("{protocol}, {servers} servers")
    };
    match transport {
        Transport::InProcess => line,
        Transport::Loopback => format!("{line}, loopback"),
    }
}

/// A message-sequence chart: one column per actor, one row per step, an arrow for each
/// delivery and a box for local events (timers, crashes).
pub fn sequence(title: &str, trace: &Trace) -> Res<String> {
    const COL: i32 = 150;
    const ROW: i32 = 30;
    const TOP: i32 = 70;
    let cols = trace.actors.len().max(1) as i32;
    let w = (COL * cols + 40) as u32;
    let h = (TOP + ROW * trace.steps.len() as i32 + 30) as u32;
    let x_of = |actor: &str| -> Res<i32> {
        let i = trace
            .actors
            .iter()
            .position(|a| a == actor)
            .ok_or_else(|| format!("trace step names unknown actor {actor:?}"))?;
        Ok(20 + COL / 2 + COL * i as i32)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let text = ("sans-serif", 13).into_font().color(&BLACK);
        let head = ("sans-serif", 15).into_font().color(&BLACK);
        root.draw(&Text::new(
            title.to_string(),
            (20, 10),
            ("sans-serif", 17).into_font().color(&BLACK),
        ))
        .map_err(err)?;
        for a in &trace.actors {
            let x = x_of(a)?;
            root.draw(&Text::new(
                a.clone(),
                (x - 4 * a.len() as i32, 40),
                head.clone(),
            ))
            .map_err(err)?;
            root.draw(&PathElement::new(
                vec![(x, TOP - 10), (x, h as i32 - 10)],
                BLACK.mix(0.3),
            ))
            .map_err(err)?;
        }
        for (k, s) in trace.steps.iter().enumerate() {
            let y = TOP + ROW * k as i32 + ROW / 2;
            let x0 = x_of(&s.actor)?;
            let short: String = s.label.chars().take(60).collect();
            match &s.to {
                Some(to) => {
                    let x1 = x_of(to)?;
                    let dir = if x1 >= x0 { 1 } else { -1 };
                    root.draw(&PathElement::new(
                        vec![(x0, y), (x1, y)],
                        BLUE.stroke_width(2),
                    ))
                    .map_err(err)?;
                    root.draw(&Polygon::new(
                        vec![(x1, y), (x1 - 8 * dir, y - 5), (x1 - 8 * dir, y + 5)],
                        BLUE.filled(),
                    ))
                    .map_err(err)?;
                    root.draw(&Text::new(
                        format!("{}. {short}", k + 1),
                        (x0.min(x1) + 6, y - 14),
                        text.clone(),
                    ))
                    .map_err(err)?;
                }
                None => {
                    root.draw(&Rectangle::new(
                        [(x0 - 6, y - 6), (x0 + 6, y + 6)],
                        RED.filled(),
                    ))
                    .map_err(err)?;
                    root.draw(&Text::new(
                        format!("{}. {short}", k + 1),
                        (x0 + 10, y - 7),
                        text.clone(),
                    ))
                    .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn axis_labels_are_short_and_carry_no_trailing_zeros() {
        let labels: Vec<String> = [0.0, 1.0, 2.5, 0.25, 1.234, 10.0, 1024.0, 5_184_000.0]
            .into_iter()
            .map(human)
            .collect();
        assert_eq!(
            labels,
            ["0", "1", "2.5", "0.25", "1.23", "10", "1.0k", "5.2M"]
        );
    }
}
