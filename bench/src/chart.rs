//! An SVG chart of purchase throughput and p99 latency against client count.

use crate::load::Measurement;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 360.0;
const MARGIN: f64 = 60.0;
const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/// Two panels side by side: req/s and p99 ms, one line per system and shape.
pub fn svg(rows: &[Measurement]) -> String {
    let purchases: Vec<&Measurement> = rows.iter().filter(|row| row.op == "purchase").collect();
    let mut series: Vec<(String, Vec<&Measurement>)> = Vec::new();
    for row in &purchases {
        let name = format!("{} ({})", row.system, row.shape);
        match series.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, points)) => points.push(row),
            None => series.push((name, vec![row])),
        }
    }
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        WIDTH * 2.0,
        HEIGHT + 40.0 + 18.0 * series.len() as f64
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    panel(&mut out, 0.0, "purchases per second", &series, |row| Some(row.throughput));
    panel(&mut out, WIDTH, "p99 latency (ms), economy-host", &series, |row| row.p99_ms);
    for (index, (name, _)) in series.iter().enumerate() {
        let y = HEIGHT + 30.0 + 18.0 * index as f64;
        let color = COLORS[index % COLORS.len()];
        let _ = write!(
            out,
            r#"<line x1="{MARGIN}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
            MARGIN + 30.0,
            MARGIN + 40.0,
            y + 4.0
        );
    }
    out.push_str("</svg>\n");
    out
}

fn panel(
    out: &mut String,
    left: f64,
    title: &str,
    series: &[(String, Vec<&Measurement>)],
    value: impl Fn(&Measurement) -> Option<f64>,
) {
    let points: Vec<(usize, f64)> =
        series.iter().flat_map(|(_, rows)| rows.iter().filter_map(|row| Some((row.clients, value(row)?)))).collect();
    let max_clients = points.iter().map(|(c, _)| *c).max().unwrap_or(1).max(1) as f64;
    let max_value = points.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1.0) * 1.1;
    let x = |clients: usize| left + MARGIN + (clients as f64 / max_clients) * (WIDTH - 2.0 * MARGIN);
    let y = |v: f64| HEIGHT - MARGIN + 20.0 - (v / max_value) * (HEIGHT - 2.0 * MARGIN);
    let _ = write!(out, r#"<text x="{}" y="24" font-size="14" font-weight="bold">{title}</text>"#, left + MARGIN);
    let (x0, y0) = (left + MARGIN, HEIGHT - MARGIN + 20.0);
    let _ = write!(out, r#"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="black"/>"#, left + WIDTH - MARGIN);
    let _ = write!(out, r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{}" stroke="black"/>"#, MARGIN - 20.0);
    for step in 0..=4 {
        let v = max_value * step as f64 / 4.0;
        let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="end">{v:.0}</text>"#, x0 - 6.0, y(v) + 4.0);
    }
    let mut ticks: Vec<usize> = points.iter().map(|(c, _)| *c).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for clients in ticks {
        let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle">{clients}</text>"#, x(clients), y0 + 16.0);
    }
    let _ = write!(out, r#"<text x="{}" y="{}" text-anchor="middle">clients</text>"#, left + WIDTH / 2.0, y0 + 34.0);
    for (index, (_, rows)) in series.iter().enumerate() {
        let coords: Vec<String> =
            rows.iter().filter_map(|row| Some(format!("{:.1},{:.1}", x(row.clients), y(value(row)?)))).collect();
        if coords.is_empty() {
            continue;
        }
        let color = COLORS[index % COLORS.len()];
        let _ =
            write!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, coords.join(" "));
        for point in &coords {
            let (px, py) = point.split_once(',').expect("a coordinate pair");
            let _ = write!(out, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
        }
    }
}
