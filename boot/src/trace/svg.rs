//! An SVG timeline: one lane per P with the goroutines it ran (one colour per goroutine),
//! steals (green triangles), preemptions (red ticks) and blocking ends; below, one lane per core
//! (M) with its spinning (orange) and parked (grey) time; STW in purple on top; a time axis.
//! Plain SVG with generic fonts: no font files needed, and `rsvg-convert` turns it into a PNG.
use super::format::Trace;
use super::model::{Model, SliceEnd};
use std::fmt::Write;

const W: f64 = 1400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 26.0;
const MLANE: f64 = 12.0;
const TOP: f64 = 46.0;

fn colour(g: u64) -> String {
    // Spread goroutine ids over the hue circle (golden-ratio steps), mid saturation.
    let h = (g as f64 * 137.508) % 360.0;
    format!("hsl({h:.0},62%,55%)")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) for about `n` ticks over `span`.
fn tick_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|&s| s >= raw).unwrap_or(10.0 * p)
}

pub fn render(t: &Trace, m: &Model, title: &str) -> String {
    let span = t.duration_ns().max(1) as f64;
    let x = |ns: u64| LEFT + (ns as f64 / span) * (W - LEFT - RIGHT);
    let np = m.nprocs as usize;
    let nm = t.ncpu as usize;
    let m_top = TOP + np as f64 * LANE + 22.0;
    let axis_y = m_top + nm as f64 * (MLANE + 4.0) + 8.0;
    let h = axis_y + 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{}</text>"#, esc(title));
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="34" fill="#444">goroutine runs per P (colour = goroutine), ▲ steal, | preempted (red), ● blocked · below: cores spinning (orange) / parked (grey) · STW (purple)</text>"##
    );
    // P lanes.
    for p in 0..np {
        let y = TOP + p as f64 * LANE;
        let _ = writeln!(s, r##"<rect x="{LEFT}" y="{y}" width="{}" height="{}" fill="#f4f4f4"/>"##, W - LEFT - RIGHT, LANE - 4.0);
        let _ = writeln!(s, r#"<text x="8" y="{}">P{p}</text>"#, y + LANE / 2.0 + 2.0);
    }
    for sl in &m.slices {
        let y = TOP + sl.p as f64 * LANE;
        let x0 = x(sl.start);
        let w = (x(sl.end) - x0).max(0.6);
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.2}" y="{y:.1}" width="{w:.2}" height="{}" fill="{}"><title>G{} {} ({:.1} us)</title></rect>"#,
            LANE - 4.0,
            colour(sl.g),
            sl.g,
            esc(&sl.name),
            (sl.end - sl.start) as f64 / 1000.0
        );
        let xe = x(sl.end);
        match sl.how {
            SliceEnd::Preempted => {
                let _ = writeln!(s, r#"<rect x="{:.2}" y="{:.1}" width="1.5" height="{}" fill="red"/>"#, xe - 0.75, y - 2.0, LANE);
            }
            SliceEnd::Blocked(_) if w > 4.0 => {
                let _ = writeln!(s, r#"<circle cx="{xe:.2}" cy="{:.1}" r="2" fill="black"/>"#, y + LANE - 6.0);
            }
            _ => {}
        }
    }
    for &(ns, thief, _victim, _n) in &m.steals {
        if thief == super::format::NO_P {
            continue;
        }
        let cx = x(ns);
        let y = TOP + thief as f64 * LANE;
        let _ = writeln!(s, r#"<path d="M{:.2},{:.1} l-4,7 l8,0 z" fill="green"/>"#, cx, y - 1.0);
    }
    for &(a, b) in &m.stw {
        let _ = writeln!(
            s,
            r#"<rect x="{:.2}" y="{}" width="{:.2}" height="4" fill="purple"/>"#,
            x(a),
            TOP - 6.0,
            (x(b) - x(a)).max(1.0)
        );
    }
    // M lanes.
    let _ = writeln!(s, r##"<text x="8" y="{}" fill="#444">cores</text>"##, m_top - 6.0);
    for c in 0..nm {
        let y = m_top + c as f64 * (MLANE + 4.0);
        let _ = writeln!(s, r#"<text x="8" y="{}" font-size="10">M{c}</text>"#, y + MLANE - 2.0);
        let _ = writeln!(s, r##"<rect x="{LEFT}" y="{y}" width="{}" height="{MLANE}" fill="#fafafa"/>"##, W - LEFT - RIGHT);
    }
    for (iv, col) in m.parked.iter().map(|i| (i, "#b0b0b0")).chain(m.spinning.iter().map(|i| (i, "orange"))) {
        let y = m_top + iv.cpu as f64 * (MLANE + 4.0);
        let _ = writeln!(s, r#"<rect x="{:.2}" y="{y:.1}" width="{:.2}" height="{MLANE}" fill="{col}"/>"#, x(iv.start), (x(iv.end) - x(iv.start)).max(0.5));
    }
    // Time axis.
    let _ = writeln!(s, r#"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="black"/>"#, W - RIGHT);
    let step = tick_step(span, 10.0);
    let (unit, div) = if span >= 2e6 { ("ms", 1e6) } else { ("us", 1e3) };
    let mut tk = 0.0;
    while tk <= span {
        let xx = x(tk as u64);
        let _ = writeln!(s, r#"<line x1="{xx:.2}" y1="{axis_y}" x2="{xx:.2}" y2="{}" stroke="black"/>"#, axis_y + 5.0);
        let _ = writeln!(s, r#"<text x="{xx:.2}" y="{}" text-anchor="middle">{}</text>"#, axis_y + 18.0, fmt_num(tk / div));
        tk += step;
    }
    let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="end">time ({unit})</text>"#, W - RIGHT, axis_y + 36.0);
    s.push_str("</svg>\n");
    s
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
