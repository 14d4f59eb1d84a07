//! Solution regions in the kernel's source, and the two rewrites of them: the starter
//! (a region's code becomes `todo!()`) and the solution (the code goes back).
//!
//! Syntax (see `labs/README.md`, "Solution regions"):
//!
//! ```text
//!         //~ lab1 begin runqget: the first line of the hint
//!         //~ more hint lines, each right below the previous one
//!         ... the solution: the last expression of a block, so that `todo!()` can stand in ...
//!         //~ lab1 end
//! ```
//!
//! In a starter the code between the hint lines and `//~ lab1 end` is replaced by one line,
//! `todo!("lab 1: runqget")`, at the indentation of the `begin` line. The markers and the hint
//! stay, so `solve` can find the region again.

use regex::Regex;
use std::sync::OnceLock;

/// One region of one lab in one file.
#[derive(Clone, Debug)]
pub struct Region {
    pub lab: u32,
    /// The Go function it stands for (`runqput`), also the key `solve` matches on.
    pub name: String,
    /// Line index of the `begin` marker.
    pub begin: usize,
    /// Line index of the first code line (after the hint lines).
    pub body: usize,
    /// Line index of the `end` marker.
    pub end: usize,
    pub indent: String,
    /// The hint: the begin line's text after the name, then the continuation lines.
    pub hint: Vec<String>,
}

fn begin_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^(\s*)//~ lab(\d+) begin ([A-Za-z_][A-Za-z0-9_]*):?\s*(.*)$").unwrap())
}
fn end_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^\s*//~ lab(\d+) end\s*$").unwrap())
}
fn hint_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^\s*//~ ?(.*)$").unwrap())
}

/// True if the text has a marker of any lab (a cheap pre-check).
pub fn has_markers(text: &str) -> bool {
    text.contains("//~ lab")
}

/// Every region of `lab` in `text`. Errors name the line (1-based) of a marker that does
/// not pair up.
pub fn parse(text: &str, lab: u32) -> Result<Vec<Region>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut open: Option<Region> = None;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(c) = begin_re().captures(l) {
            let n: u32 = c[2].parse().map_err(|_| format!("line {}: bad lab number", i + 1))?;
            if n == lab {
                if let Some(r) = &open {
                    return Err(format!("line {}: lab{lab} region inside region {} (line {})", i + 1, r.name, r.begin + 1));
                }
                let mut hint = vec![c[4].trim().to_string()];
                let mut j = i + 1;
                while j < lines.len() && !begin_re().is_match(lines[j]) && !end_re().is_match(lines[j]) {
                    match hint_re().captures(lines[j]) {
                        Some(h) => hint.push(h[1].trim_end().to_string()),
                        None => break,
                    }
                    j += 1;
                }
                hint.retain(|h| !h.is_empty());
                open = Some(Region {
                    lab,
                    name: c[3].to_string(),
                    begin: i,
                    body: j,
                    end: 0,
                    indent: c[1].to_string(),
                    hint,
                });
                i = j;
                continue;
            }
        } else if let Some(c) = end_re().captures(l) {
            if c[1].parse::<u32>().ok() == Some(lab) {
                let mut r = open.take().ok_or_else(|| format!("line {}: lab{lab} end without begin", i + 1))?;
                r.end = i;
                out.push(r);
            }
        }
        i += 1;
    }
    if let Some(r) = open {
        return Err(format!("line {}: lab{lab} region {} has no end", r.begin + 1, r.name));
    }
    Ok(out)
}

fn join(lines: &[String], trailing_newline: bool) -> String {
    let mut s = lines.join("\n");
    if trailing_newline {
        s.push('\n');
    }
    s
}

/// The starter version of `text`: each region of `lab` keeps its markers and hint, and its
/// code becomes `todo!("lab N: NAME")`.
pub fn stub(text: &str, lab: u32) -> Result<(String, usize), String> {
    let regions = parse(text, lab)?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut out = Vec::new();
    let mut at = 0;
    for r in &regions {
        out.extend_from_slice(&lines[at..r.body]);
        out.push(format!("{}todo!(\"lab {}: {}\")", r.indent, r.lab, r.name));
        at = r.end;
    }
    out.extend_from_slice(&lines[at..]);
    Ok((join(&out, text.ends_with('\n')), regions.len()))
}

/// `target` (a starter's file) with the code of each region of `lab` taken from `source` (the
/// same file of the full tree), matched by name.
pub fn solve(target: &str, source: &str, lab: u32) -> Result<(String, usize), String> {
    let tr = parse(target, lab)?;
    let sr = parse(source, lab)?;
    let tl: Vec<String> = target.lines().map(str::to_string).collect();
    let sl: Vec<String> = source.lines().map(str::to_string).collect();
    let mut out = Vec::new();
    let mut at = 0;
    for r in &tr {
        let s = sr
            .iter()
            .find(|s| s.name == r.name)
            .ok_or_else(|| format!("region {} is not in the source tree", r.name))?;
        out.extend_from_slice(&tl[at..r.body]);
        out.extend_from_slice(&sl[s.body..s.end]);
        at = r.end;
    }
    out.extend_from_slice(&tl[at..]);
    Ok((join(&out, target.ends_with('\n')), tr.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "fn f() -> u32 {\n    let a = 1;\n    //~ lab1 begin f: add one\n    //~ to a\n    a + 1\n    //~ lab1 end\n}\nfn g() {\n    //~ lab2 begin g\n    h();\n    //~ lab2 end\n}\n";

    #[test]
    fn stub_and_solve_round_trip() {
        let (s, n) = stub(SRC, 1).unwrap();
        assert_eq!(n, 1);
        assert!(s.contains("    //~ to a\n    todo!(\"lab 1: f\")\n    //~ lab1 end\n"), "{s}");
        assert!(!s.contains("a + 1"));
        assert!(s.contains("    h();\n"), "other labs are untouched");
        let (back, n) = solve(&s, SRC, 1).unwrap();
        assert_eq!((back.as_str(), n), (SRC, 1));
        let r = &parse(SRC, 1).unwrap()[0];
        assert_eq!(r.hint, ["add one", "to a"]);
    }

    #[test]
    fn unpaired_markers_are_errors() {
        assert!(parse("//~ lab1 begin f\n", 1).unwrap_err().contains("no end"));
        assert!(parse("//~ lab1 end\n", 1).unwrap_err().contains("without begin"));
        assert!(parse("//~ lab1 begin f\n//~ lab1 begin g\n//~ lab1 end\n", 1).unwrap_err().contains("inside"));
    }
}
