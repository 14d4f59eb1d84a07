//! `gmpos bench-chart`: the picture of a speed comparison (`bench/compare.sh`, `bench/ab.sh`).
//!
//! ```text
//! cargo run -- bench-chart FILE.tsv -o OUT.svg [--title TEXT] [--ref-label TEXT]
//! ```
//!
//! The input has one line per figure, tab-separated: `name  median  min  max` (ratios, e.g. the
//! kernel's time over Go's; `#` lines are comments). The chart has one horizontal bar per figure
//! at its median ratio, a whisker from min to max, and a vertical line at 1.0 (the reference).
//! The scale is logarithmic, so that 0.5 (twice as fast) and 2.0 (twice as slow) are as far from
//! the line. Bars at or below 1.0 are green, above it red.

use std::fmt::Write;

/// One figure: its name and the median, smallest and largest ratio over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// Parse the TSV described in the module comment.
pub fn parse(tsv: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, line) in tsv.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 {
            return Err(format!("line {}: expected 4 tab-separated fields (name, median, min, max), found {}", i + 1, f.len()));
        }
        let num = |s: &str, what: &str| -> Result<f64, String> {
            match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(format!("line {}: {what} {s:?} is not a positive number", i + 1)),
            }
        };
        let (median, min, max) = (num(f[1], "median")?, num(f[2], "min")?, num(f[3], "max")?);
        if !(min <= median && median <= max) {
            return Err(format!("line {}: expected min <= median <= max, found {min} {median} {max}", i + 1));
        }
        rows.push(Row { name: f[0].to_string(), median, min, max });
    }
    if rows.is_empty() {
        return Err("no figures in the file".into());
    }
    Ok(rows)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn svg(rows: &[Row], title: &str, ref_label: &str) -> String {
    const LEFT: f64 = 230.0;
    const WIDTH: f64 = 520.0;
    const ROW: f64 = 26.0;
    const TOP: f64 = 50.0;
    // Log2 axis over whole powers of two around every value and 1.0.
    let lo = rows.iter().map(|r| r.min).fold(1.0f64, f64::min).log2().floor().min(-1.0);
    let hi = rows.iter().map(|r| r.max).fold(1.0f64, f64::max).log2().ceil().max(1.0);
    let x = |v: f64| LEFT + (v.log2() - lo) / (hi - lo) * WIDTH;
    let h = TOP + ROW * rows.len() as f64 + 50.0;
    let w = LEFT + WIDTH + 120.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15">{}</text>"#,
        esc(title)
    );
    // Grid and axis labels at each power of two.
    let axis_y = TOP + ROW * rows.len() as f64 + 8.0;
    let mut e = lo as i32;
    while e <= hi as i32 {
        let v = 2f64.powi(e);
        let gx = x(v);
        let label = if e >= 0 { format!("{}", v as u64) } else { format!("1/{}", 2f64.powi(-e) as u64) };
        let _ = write!(
            s,
            r##"<line x1="{gx:.1}" y1="{TOP}" x2="{gx:.1}" y2="{axis_y}" stroke="#ddd"/><text x="{gx:.1}" y="{:.1}" font-size="11" text-anchor="middle">{label}x</text>"##,
            axis_y + 14.0
        );
        e += 1;
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let (x1, x0) = (x(r.median), x(1.0));
        let (bx, bw) = if x1 >= x0 { (x0, x1 - x0) } else { (x1, x0 - x1) };
        let color = if r.median <= 1.0 { "#2e8b57" } else { "#c0392b" };
        let cy = y + ROW / 2.0 - 2.0;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.8"/><line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="black"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/><text x="{:.1}" y="{:.1}" font-size="11">{:.2} ({:.2}-{:.2})</text>"##,
            LEFT - 8.0,
            y + ROW / 2.0 + 2.0,
            esc(&r.name),
            y + 4.0,
            bw.max(1.0),
            ROW - 10.0,
            x(r.min),
            x(r.max),
            x(r.min),
            cy - 5.0,
            x(r.min),
            cy + 5.0,
            x(r.max),
            cy - 5.0,
            x(r.max),
            cy + 5.0,
            LEFT + WIDTH + 8.0,
            y + ROW / 2.0 + 2.0,
            r.median,
            r.min,
            r.max
        );
    }
    let x0 = x(1.0);
    let _ = write!(
        s,
        r##"<line x1="{x0:.1}" y1="{:.1}" x2="{x0:.1}" y2="{axis_y}" stroke="#333" stroke-width="2"/><text x="{x0:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text><text x="10" y="{:.1}" font-size="11">bar: median ratio; whisker: min-max over the rounds; log scale; left of the line is faster</text></svg>"##,
        TOP - 8.0,
        TOP - 12.0,
        esc(ref_label),
        h - 8.0
    );
    s
}

const USAGE: &str = "usage: cargo run -- bench-chart FILE.tsv -o OUT.svg [--title TEXT] [--ref-label TEXT]

FILE.tsv: one figure per line, tab-separated: name, median ratio, min, max (# starts a comment).
Writes a bar chart of the medians with min-max whiskers and a line at 1.0 (log scale), and
OUT.png next to it when rsvg-convert is installed.";

/// The subcommand; returns the exit status.
pub fn cli(args: &[String]) -> u8 {
    let (mut input, mut out, mut title, mut ref_label) = (None, None, "ratio".to_string(), "1.0".to_string());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            "-o" | "--title" | "--ref-label" => {
                let Some(v) = it.next() else {
                    eprintln!("gmpos bench-chart: {a} needs a value\n{}", USAGE.lines().next().unwrap_or_default());
                    return 64;
                };
                match a.as_str() {
                    "-o" => out = Some(v.clone()),
                    "--title" => title = v.clone(),
                    _ => ref_label = v.clone(),
                }
            }
            f if input.is_none() && !f.starts_with('-') => input = Some(f.to_string()),
            other => {
                eprintln!("gmpos bench-chart: unexpected argument {other:?}\n{}", USAGE.lines().next().unwrap_or_default());
                return 64;
            }
        }
    }
    let (Some(input), Some(out)) = (input, out) else {
        eprintln!("gmpos bench-chart: needs FILE.tsv and -o OUT.svg\n{}", USAGE.lines().next().unwrap_or_default());
        return 64;
    };
    let text = match std::fs::read_to_string(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gmpos bench-chart: cannot read {input}: {e}");
            return 1;
        }
    };
    let rows = match parse(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gmpos bench-chart: {input}: {e}");
            return 1;
        }
    };
    if let Err(e) = std::fs::write(&out, svg(&rows, &title, &ref_label)) {
        eprintln!("gmpos bench-chart: cannot write {out}: {e}");
        return 1;
    }
    eprintln!("wrote {out}");
    let png = std::path::Path::new(&out).with_extension("png");
    match crate::trace::svg_to_png(std::path::Path::new(&out), &png) {
        Ok(()) => eprintln!("wrote {}", png.display()),
        Err(e) => eprintln!("gmpos bench-chart: no PNG: {e}"),
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let rows = parse("# ratio kernel/go\nchan_sync\t2.05\t2.0\t2.3\ngosched\t0.5\t0.4\t0.6\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], Row { name: "gosched".into(), median: 0.5, min: 0.4, max: 0.6 });
        assert!(parse("").unwrap_err().contains("no figures"));
        assert!(parse("a\t1\t2").unwrap_err().contains("4 tab-separated"));
        assert!(parse("a\tx\t1\t2").unwrap_err().contains("median \"x\""));
        assert!(parse("a\t3\t1\t2").unwrap_err().contains("min <= median <= max"));
        assert!(parse("a\t0\t0\t2").unwrap_err().contains("positive"));
    }

    #[test]
    fn chart_has_a_bar_and_whisker_per_figure_and_the_reference_line() {
        let rows = parse("chan_sync\t2.05\t2.0\t2.3\ngosched\t0.5\t0.4\t0.6\nspawn\t1\t0.9\t1.1\n").unwrap();
        let s = svg(&rows, "kernel / Go <qemu-user>", "Go");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<rect").count(), 1 + 3, "background + one bar per figure");
        assert_eq!(s.matches("fill=\"#c0392b\"").count(), 1, "one slower figure");
        assert_eq!(s.matches("fill=\"#2e8b57\"").count(), 2);
        assert!(s.contains("kernel / Go &lt;qemu-user&gt;"));
        assert!(s.contains("2.05 (2.00-2.30)") && s.contains("0.50 (0.40-0.60)"));
        // 0.5 and 2 are equally far from 1 on the log axis.
        let lo = rows.iter().map(|r| r.min).fold(1.0f64, f64::min).log2().floor().min(-1.0);
        let hi = rows.iter().map(|r| r.max).fold(1.0f64, f64::max).log2().ceil().max(1.0);
        assert_eq!((lo, hi), (-2.0, 2.0));
        assert!(s.contains(">1/2x<") && s.contains(">2x<"));
    }
}
