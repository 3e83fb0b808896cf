//! `wsbench plot`: throughput per server CPU-second and p99 latency against connection count,
//! one line per label (server), from the JSON lines of earlier runs (`--json`).
//!
//! Several runs of the same label and connection count (rounds) are reduced to their median.

use crate::{BenchError, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Connections.
    pub conns: f64,
    /// The chosen rate per server CPU-second (or per second if the CPU was not measured).
    pub throughput: f64,
    /// p99 latency in milliseconds.
    pub p99_ms: f64,
}

/// Reads JSON-line reports of `scenario` and returns, per label, median points sorted by
/// connection count. `rate` names the throughput (`deliveries`, `round_trips`, ...).
pub fn load(
    inputs: &[PathBuf],
    scenario: &str,
    rate: &str,
) -> Result<BTreeMap<String, Vec<Point>>> {
    let mut raw: BTreeMap<String, BTreeMap<u64, Vec<(f64, f64)>>> = BTreeMap::new();
    for path in inputs {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["scenario"] != scenario {
                continue;
            }
            let Some(r) = v["rates"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["name"] == rate))
            else {
                continue;
            };
            let tput = r["per_server_cpu_sec"]
                .as_f64()
                .or_else(|| r["per_sec"].as_f64())
                .unwrap_or(0.0);
            let p99 = v["latency"]["p99_us"].as_f64().unwrap_or(0.0) / 1000.0;
            let label = v["label"].as_str().unwrap_or("?").to_owned();
            let conns = v["connections"].as_u64().unwrap_or(0);
            raw.entry(label)
                .or_default()
                .entry(conns)
                .or_default()
                .push((tput, p99));
        }
    }
    Ok(raw
        .into_iter()
        .map(|(label, by_conns)| {
            let points = by_conns
                .into_iter()
                .map(|(conns, runs)| Point {
                    conns: conns as f64,
                    throughput: median(runs.iter().map(|r| r.0).collect()),
                    p99_ms: median(runs.iter().map(|r| r.1).collect()),
                })
                .collect();
            (label, points)
        })
        .collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Registers DejaVu Sans as plotters' "sans-serif" (plotters draws text with ab_glyph and needs
/// the font's bytes; Debian's fonts-dejavu-core ships it).
fn register_font() -> Result<()> {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];
    let bytes = CANDIDATES
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| {
            BenchError::Plot("DejaVuSans.ttf not found (apt-get install fonts-dejavu-core)".into())
        })?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Vec::leak(bytes))
        .map_err(|_| BenchError::Plot("DejaVuSans.ttf is not a usable font".into()))
}

const COLORS: [RGBColor; 6] = [
    RGBColor(0xd9, 0x48, 0x1c),
    RGBColor(0x1f, 0x6f, 0xb4),
    RGBColor(0x2a, 0x9d, 0x4b),
    RGBColor(0x8e, 0x44, 0xad),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xe6, 0xa1, 0x00),
];

/// Draws the two panels into a PNG at `out`.
pub fn draw(
    series: &BTreeMap<String, Vec<Point>>,
    out: &Path,
    title: &str,
    rate: &str,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| BenchError::Plot(e.to_string());
    let all: Vec<&Point> = series.values().flatten().collect();
    if all.is_empty() {
        return Err(BenchError::Plot("no matching runs in the input".into()));
    }
    register_font()?;
    let xmin = all
        .iter()
        .map(|p| p.conns)
        .fold(f64::MAX, f64::min)
        .max(1.0);
    let xmax = all
        .iter()
        .map(|p| p.conns)
        .fold(0.0, f64::max)
        .max(xmin * 2.0);
    let ymax = all.iter().map(|p| p.throughput).fold(0.0, f64::max) * 1.15;
    let lmax = all.iter().map(|p| p.p99_ms).fold(0.0, f64::max).max(0.01) * 2.0;
    let lmin = all
        .iter()
        .map(|p| p.p99_ms)
        .filter(|&v| v > 0.0)
        .fold(f64::MAX, f64::min)
        .min(lmax / 10.0)
        / 2.0;

    let root = BitMapBackend::new(out, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 24))
        .map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(700);
    let x_range = (xmin / 1.3..xmax * 1.3).log_scale();

    let mut tput = ChartBuilder::on(&left)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .caption(format!("{rate} per server CPU-second"), ("sans-serif", 18))
        .build_cartesian_2d(x_range.clone(), 0.0..ymax.max(1.0))
        .map_err(|e| err(&e))?;
    tput.configure_mesh()
        .x_desc("connections (log)")
        .x_labels(12)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| crate::report::si(*v))
        .draw()
        .map_err(|e| err(&e))?;

    let mut lat = ChartBuilder::on(&right)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .caption("p99 latency (ms, log)", ("sans-serif", 18))
        .build_cartesian_2d(x_range, (lmin..lmax).log_scale())
        .map_err(|e| err(&e))?;
    lat.configure_mesh()
        .x_desc("connections (log)")
        .x_labels(12)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(12)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(|e| err(&e))?;

    for (i, (label, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = ShapeStyle::from(color).stroke_width(3);
        let xy = points.iter().map(|p| (p.conns, p.throughput));
        tput.draw_series(LineSeries::new(xy.clone(), style))
            .map_err(|e| err(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        tput.draw_series(xy.map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
        let xy = points.iter().map(|p| (p.conns, p.p99_ms.max(lmin)));
        lat.draw_series(LineSeries::new(xy.clone(), style))
            .map_err(|e| err(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        lat.draw_series(xy.map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    tput.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    lat.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_reduce_to_medians_per_label_and_count() {
        let line = |label: &str, conns: u64, tput: f64, p99: u64| {
            format!(
                r#"{{"scenario":"room","label":"{label}","connections":{conns},"rates":[{{"name":"deliveries","count":1,"per_sec":1.0,"per_server_cpu_sec":{tput}}}],"latency":{{"p99_us":{p99}}}}}"#
            )
        };
        let text = [
            line("a", 100, 10.0, 1000),
            line("a", 100, 30.0, 3000),
            line("a", 100, 20.0, 2000),
            line("a", 10, 5.0, 500),
            line("b", 10, 7.0, 700),
            r#"{"scenario":"echo","label":"a","connections":1}"#.to_string(),
            "not json".to_string(),
        ]
        .join("\n");
        let file = crate::temp_jsonl("plot", &text);
        let dir = file.parent().unwrap().to_path_buf();
        let s = load(std::slice::from_ref(&file), "room", "deliveries").unwrap();
        assert_eq!(s.len(), 2);
        let a = &s["a"];
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].conns, 10.0, "sorted by connections");
        assert_eq!(a[1].throughput, 20.0);
        assert_eq!(a[1].p99_ms, 2.0);
        if register_font().is_ok() {
            let png = dir.join("plot.png");
            draw(&s, &png, "test", "deliveries").unwrap();
            assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
