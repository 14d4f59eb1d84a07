//! `gmpos trace FILE`: turn the kernel's execution trace into a Perfetto/Chrome JSON timeline,
//! an SVG (and PNG) timeline and a text summary, and check the scheduler's invariants over it.
//! The kernel side is `kernel/src/runtime/tracer.rs`; the runner's `--trace FILE` boots a kernel
//! with `trace=1` and the debug console connected to FILE.
pub mod checker;
pub mod format;
pub mod model;
pub mod perfetto;
pub mod profile;
pub mod summary;
pub mod svg;

use std::path::{Path, PathBuf};

pub const TRACE_USAGE: &str = "\
usage: cargo run -- trace FILE [-o PREFIX] [--title TEXT]

Reads a trace written by a kernel booted with --trace FILE (or trace=1 / trace=flight and the
isa-debugcon device) and writes
  PREFIX.json   Chrome trace-event JSON: open it in https://ui.perfetto.dev or chrome://tracing
  PREFIX.svg    a timeline picture (and PREFIX.png when rsvg-convert is installed)
  PREFIX.txt    the summary, also printed here
PREFIX defaults to FILE without its extension. Exit status 1 if the trace checker finds a
broken scheduler invariant, 2 if the file cannot be read or decoded.";

/// Everything `gmpos trace` produces, in memory.
pub struct Outputs {
    pub trace: format::Trace,
    pub model: model::Model,
    pub check: checker::Report,
    pub json: serde_json::Value,
    pub svg: String,
    pub summary: String,
}

/// Decode and analyse a trace file's bytes.
pub fn analyse(bytes: &[u8], title: &str) -> Result<Outputs, format::DecodeError> {
    let trace = format::decode(bytes)?;
    let model = model::build(&trace);
    let check = checker::check(&trace);
    let json = perfetto::to_json(&trace, &model);
    let svg = svg::render(&trace, &model, title);
    let summary = summary::render(&trace, &model, &check);
    Ok(Outputs { trace, model, check, json, svg, summary })
}

/// Render `svg` to `png` with `rsvg-convert` (Debian's librsvg2-bin), if it is installed.
pub fn svg_to_png(svg: &Path, png: &Path) -> Result<(), String> {
    let out = std::process::Command::new("rsvg-convert")
        .arg("-o")
        .arg(png)
        .arg(svg)
        .output()
        .map_err(|e| format!("rsvg-convert not available ({e}); install it with: apt-get install librsvg2-bin"))?;
    if !out.status.success() {
        return Err(format!("rsvg-convert failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}

/// `gmpos trace ...` (the arguments after `trace`). Returns the exit status.
pub fn cli(args: &[String]) -> u8 {
    let mut file = None;
    let mut prefix = None;
    let mut title = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{TRACE_USAGE}");
                return 0;
            }
            "-o" => match it.next() {
                Some(v) => prefix = Some(PathBuf::from(v)),
                None => return usage("-o needs a value (output prefix)"),
            },
            "--title" => match it.next() {
                Some(v) => title = Some(v.clone()),
                None => return usage("--title needs a value"),
            },
            _ if a.starts_with('-') => return usage(&format!("unknown option `{a}`")),
            _ if file.is_none() => file = Some(PathBuf::from(a)),
            _ => return usage(&format!("unexpected argument `{a}`")),
        }
    }
    let Some(file) = file else { return usage("no trace FILE given") };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("gmpos trace: cannot read {}: {e}", file.display());
            return 2;
        }
    };
    let prefix = prefix.unwrap_or_else(|| file.with_extension(""));
    let title = title.unwrap_or_else(|| format!("gmpos trace {}", file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()));
    let out = match analyse(&bytes, &title) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gmpos trace: {}: {e}", file.display());
            return 2;
        }
    };
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", prefix.display()));
    let (json, svg, png, txt) = (with("json"), with("svg"), with("png"), with("txt"));
    let write = |p: &Path, data: &[u8]| -> bool {
        match std::fs::write(p, data) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("gmpos trace: cannot write {}: {e}", p.display());
                false
            }
        }
    };
    if !(write(&json, &serde_json::to_vec(&out.json).expect("JSON serialises"))
        && write(&svg, out.svg.as_bytes())
        && write(&txt, out.summary.as_bytes()))
    {
        return 2;
    }
    print!("{}", out.summary);
    println!();
    println!("wrote {} (open in https://ui.perfetto.dev or chrome://tracing)", json.display());
    println!("wrote {}", svg.display());
    match svg_to_png(&svg, &png) {
        Ok(()) => println!("wrote {}", png.display()),
        Err(e) => println!("no PNG: {e}"),
    }
    println!("wrote {}", txt.display());
    if out.check.ok() {
        0
    } else {
        1
    }
}

fn usage(msg: &str) -> u8 {
    eprintln!("gmpos trace: {msg}");
    eprintln!("{}", TRACE_USAGE.lines().next().unwrap_or_default());
    64
}

/// The runner's `--trace FILE` / `--profile FILE`: the QEMU arguments that connect the
/// `isa-debugcon` port (0xe9) to FILE, and the boot parameter to add unless given.
pub fn debugcon_qemu_args(file: &Path) -> Result<Vec<String>, crate::Error> {
    let f = file.display().to_string();
    if f.contains(',') {
        return Err(crate::Error(format!("{f}: the trace file name must not contain a comma (QEMU's -chardev syntax)")));
    }
    Ok(vec![
        "-chardev".into(),
        format!("file,id=gmpdbg,path={f}"),
        "-device".into(),
        "isa-debugcon,iobase=0xe9,chardev=gmpdbg".into(),
    ])
}

/// After parsing the runner's arguments: `--trace FILE` / `--profile FILE` (in `flags`, as
/// (option, file)) become the debug-console QEMU arguments plus `trace=1` / `profile=1000`
/// unless the command line sets `trace=` / `profile=` itself.
pub fn apply_runner_flags(cfg: &mut crate::RunConfig, flags: &[(String, String)]) -> Result<(), crate::Error> {
    let Some((_, file)) = flags.first() else { return Ok(()) };
    if let Some((o, f)) = flags.iter().find(|(_, f)| f != file) {
        return Err(crate::Error(format!("{o} {f}: --trace and --profile share one output file (the debug console); give both the same FILE")));
    }
    let path = PathBuf::from(file);
    cfg.extra_qemu_args.extend(debugcon_qemu_args(&path)?);
    for (opt, key, default) in [("--trace", "trace", "1"), ("--profile", "profile", "1000")] {
        if flags.iter().any(|(o, _)| o == opt) && !cfg.params.iter().any(|(k, _)| k == key) {
            cfg.params.push((key.to_string(), default.to_string()));
        }
    }
    cfg.debugcon = Some(path);
    Ok(())
}

#[cfg(test)]
mod tests;

/// `gmpos trace ...` / `gmpos profile ...` as the first argument: run that tool and return its
/// exit status; `None` for a normal boot.
pub fn subcommand(args: &[String]) -> Option<u8> {
    match args.first().map(|s| s.as_str()) {
        Some("trace") => Some(cli(&args[1..])),
        Some("profile") => Some(profile::cli(&args[1..])),
        _ => None,
    }
}

/// After a boot with `--trace FILE` / `--profile FILE`: say where the output went.
pub fn after_run(cfg: &crate::RunConfig) {
    if let Some(f) = &cfg.debugcon {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        eprintln!("gmpos: debug console ({size} bytes) in {}", f.display());
        if cfg.params.iter().any(|(k, v)| k == "trace" && v != "0") {
            eprintln!("gmpos: timeline, Perfetto JSON and summary: cargo run -- trace {}", f.display());
        }
        if cfg.params.iter().any(|(k, v)| k == "profile" && v != "0") {
            eprintln!("gmpos: pprof profile and flame graph: cargo run -- profile {} --elf <the kernel ELF>", f.display());
        }
    }
}
