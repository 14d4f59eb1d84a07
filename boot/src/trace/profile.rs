//! `gmpos profile FILE`: the kernel's CPU profile samples (`kernel/src/runtime/profiler.rs`)
//! as a gzip-compressed pprof `profile.proto` (what `go tool pprof` reads) and a flame graph
//! SVG (the `inferno` crate), with function names and lines from the kernel ELF (`addr2line`).
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"GMPPRF01";
pub const END: &[u8; 8] = b"GMPPEND!";

/// The samples of one run.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub hz: u32,
    /// Call stacks, leaf first: `pcs[0]` is the interrupted instruction, the rest are return
    /// addresses. ELF addresses.
    pub stacks: Vec<Vec<u64>>,
    pub lost: u64,
    pub ncpu: u32,
}

pub fn decode(file: &[u8]) -> Result<Samples, String> {
    let start = file.windows(8).position(|w| w == MAGIC).ok_or_else(|| {
        format!("no profile in this file ({} bytes; no \"GMPPRF01\" header): boot with --profile FILE (profile=HZ)", file.len())
    })?;
    let mut pos = start + 8;
    let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
        if file.len() - pos < n {
            return Err(format!("profile truncated at byte {pos} while reading {what}"));
        }
        pos += n;
        Ok(&file[pos - n..pos])
    };
    let u32_ = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap());
    let u64_ = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    let ncpu = u32_(take(4, "the core count")?);
    let hz = u32_(take(4, "the rate")?);
    take(8, "padding")?;
    if ncpu == 0 || ncpu > 255 || hz == 0 {
        return Err(format!("bad profile header (cores {ncpu}, {hz} Hz)"));
    }
    let mut s = Samples { hz, ncpu, ..Default::default() };
    for cpu in 0..ncpu {
        let n = u32_(take(4, "a sample count")?);
        take(4, "padding")?;
        s.lost += u64_(take(8, "a lost count")?);
        for _ in 0..n {
            let depth = u64_(take(8, "a stack depth")?) as usize;
            if depth == 0 || depth > 64 {
                return Err(format!("core {cpu}: bad stack depth {depth}: the profile is corrupt"));
            }
            let raw = take(depth * 8, "a stack")?;
            s.stacks.push(raw.chunks_exact(8).map(u64_).collect());
        }
    }
    if take(8, "the end marker")? != END {
        return Err("missing profile end marker: the profile is corrupt".into());
    }
    Ok(s)
}

/// One source frame of an address (inlined frames come first, as pprof wants them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// Address -> frames, from the ELF's DWARF (or its symbol table when there is no line info).
pub struct Symbolizer {
    loader: Option<addr2line::Loader>,
    cache: HashMap<u64, Vec<Frame>>,
}

impl Symbolizer {
    pub fn new(elf: Option<&Path>) -> Result<Symbolizer, String> {
        let loader = match elf {
            Some(p) => Some(addr2line::Loader::new(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?),
            None => None,
        };
        Ok(Symbolizer { loader, cache: HashMap::new() })
    }

    pub fn frames(&mut self, addr: u64) -> Vec<Frame> {
        if let Some(f) = self.cache.get(&addr) {
            return f.clone();
        }
        let mut out = Vec::new();
        if let Some(l) = &self.loader {
            if let Ok(mut it) = l.find_frames(addr) {
                while let Ok(Some(f)) = it.next() {
                    let function = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok().map(|s| s.into_owned()))
                        .unwrap_or_else(|| format!("{addr:#x}"));
                    let (file, line) = f
                        .location
                        .as_ref()
                        .map(|l| (l.file.unwrap_or("").to_string(), l.line.unwrap_or(0)))
                        .unwrap_or_default();
                    out.push(Frame { function: strip_hash(&function), file, line });
                }
            }
            if out.is_empty() {
                if let Some(sym) = l.find_symbol(addr) {
                    let name = addr2line::demangle_auto(sym.into(), None).into_owned();
                    out.push(Frame { function: strip_hash(&name), file: String::new(), line: 0 });
                }
            }
        }
        if out.is_empty() {
            out.push(Frame { function: format!("{addr:#x}"), file: String::new(), line: 0 });
        }
        self.cache.insert(addr, out.clone());
        out
    }
}

/// `foo::bar::h0123456789abcdef` -> `foo::bar`.
fn strip_hash(s: &str) -> String {
    match s.rfind("::h") {
        Some(i) if s.len() - i == 19 && s[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// The address to symbolise for frame `i` of a stack: return addresses point after the call, so
/// step back one byte into the call instruction.
fn probe(stack: &[u64], i: usize) -> u64 {
    if i == 0 {
        stack[0]
    } else {
        stack[i].saturating_sub(1)
    }
}

// ---------------------------------------------------------------------------------------------
// profile.proto, hand-encoded (the format is small; see github.com/google/pprof proto/profile.proto)

fn varint(o: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        o.push((v as u8) | 0x80);
        v >>= 7;
    }
    o.push(v as u8);
}
fn key(o: &mut Vec<u8>, field: u32, wire: u32) {
    varint(o, ((field << 3) | wire) as u64);
}
fn int(o: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(o, field, 0);
        varint(o, v);
    }
}
fn bytes(o: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(o, field, 2);
    varint(o, b.len() as u64);
    o.extend_from_slice(b);
}
fn packed(o: &mut Vec<u8>, field: u32, vs: &[u64]) {
    let mut b = Vec::new();
    for &v in vs {
        varint(&mut b, v);
    }
    bytes(o, field, &b);
}

struct Strings {
    list: Vec<String>,
    idx: HashMap<String, u64>,
}
impl Strings {
    fn get(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.idx.get(s) {
            return i;
        }
        let i = self.list.len() as u64;
        self.list.push(s.to_string());
        self.idx.insert(s.to_string(), i);
        i
    }
}

/// The uncompressed profile.proto bytes.
pub fn to_pprof(s: &Samples, sym: &mut Symbolizer) -> Vec<u8> {
    let mut st = Strings { list: Vec::new(), idx: HashMap::new() };
    st.get("");
    let period = 1_000_000_000 / s.hz as u64;
    let mut out = Vec::new();
    let vt = |st: &mut Strings, t: &str, u: &str| {
        let mut b = Vec::new();
        int(&mut b, 1, st.get(t));
        int(&mut b, 2, st.get(u));
        b
    };
    let b = vt(&mut st, "samples", "count");
    bytes(&mut out, 1, &b);
    let b = vt(&mut st, "cpu", "nanoseconds");
    bytes(&mut out, 1, &b);
    let mut loc_ids: HashMap<u64, u64> = HashMap::new();
    let mut locs: Vec<(u64, u64, Vec<Frame>)> = Vec::new();
    let mut counts: HashMap<Vec<u64>, u64> = HashMap::new();
    for stack in &s.stacks {
        let mut ids = Vec::with_capacity(stack.len());
        for i in 0..stack.len() {
            let a = probe(stack, i);
            let id = *loc_ids.entry(a).or_insert_with(|| {
                let id = locs.len() as u64 + 1;
                locs.push((id, a, sym.frames(a)));
                id
            });
            ids.push(id);
        }
        *counts.entry(ids).or_default() += 1;
    }
    let mut samples: Vec<_> = counts.into_iter().collect();
    samples.sort();
    for (ids, n) in samples {
        let mut b = Vec::new();
        packed(&mut b, 1, &ids);
        packed(&mut b, 2, &[n, n * period]);
        bytes(&mut out, 2, &b);
    }
    let mut b = Vec::new();
    int(&mut b, 1, 1);
    let kname = st.get("kernel");
    int(&mut b, 5, kname);
    int(&mut b, 7, 1);
    int(&mut b, 8, 1);
    int(&mut b, 9, 1);
    int(&mut b, 10, 1);
    bytes(&mut out, 3, &b);
    let mut funcs: HashMap<(String, String), u64> = HashMap::new();
    let mut func_list: Vec<(u64, String, String)> = Vec::new();
    for (id, addr, frames) in &locs {
        let mut b = Vec::new();
        int(&mut b, 1, *id);
        int(&mut b, 2, 1);
        int(&mut b, 3, *addr);
        for f in frames {
            let fid = *funcs.entry((f.function.clone(), f.file.clone())).or_insert_with(|| {
                let fid = func_list.len() as u64 + 1;
                func_list.push((fid, f.function.clone(), f.file.clone()));
                fid
            });
            let mut l = Vec::new();
            int(&mut l, 1, fid);
            int(&mut l, 2, f.line as u64);
            bytes(&mut b, 4, &l);
        }
        bytes(&mut out, 4, &b);
    }
    for (fid, name, file) in &func_list {
        let mut b = Vec::new();
        int(&mut b, 1, *fid);
        let n = st.get(name);
        int(&mut b, 2, n);
        int(&mut b, 3, n);
        let f = st.get(file);
        int(&mut b, 4, f);
        bytes(&mut out, 5, &b);
    }
    let strings = std::mem::take(&mut st.list);
    for s in &strings {
        bytes(&mut out, 6, s.as_bytes());
    }
    let mut b = Vec::new();
    let cpu = st.idx["cpu"];
    let ns = st.idx["nanoseconds"];
    int(&mut b, 1, cpu);
    int(&mut b, 2, ns);
    bytes(&mut out, 11, &b);
    int(&mut out, 12, period);
    int(&mut out, 10, s.stacks.len() as u64 * period / s.ncpu.max(1) as u64);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// Folded stacks ("outer;...;leaf count"), one line per distinct stack, for the flame graph.
pub fn folded(s: &Samples, sym: &mut Symbolizer) -> Vec<String> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for stack in &s.stacks {
        let mut names: Vec<String> = Vec::new();
        for i in (0..stack.len()).rev() {
            for f in sym.frames(probe(stack, i)).iter().rev() {
                names.push(f.function.replace(';', ":"));
            }
        }
        *counts.entry(names.join(";")).or_default() += 1;
    }
    let mut v: Vec<String> = counts.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.sort();
    v
}

pub fn flamegraph(lines: &[String], title: &str) -> Result<Vec<u8>, String> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "samples".to_string();
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), &mut out).map_err(|e| format!("flame graph: {e}"))?;
    Ok(out)
}

/// Self samples per function (the leaf frame's outermost... innermost function), most first.
pub fn top(s: &Samples, sym: &mut Symbolizer) -> Vec<(String, u64)> {
    let mut m: HashMap<String, u64> = HashMap::new();
    for st in &s.stacks {
        let f = sym.frames(st[0]);
        *m.entry(f[0].function.clone()).or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

pub const PROFILE_USAGE: &str = "\
usage: cargo run -- profile FILE [--elf KERNEL_ELF] [-o PREFIX]

Reads the CPU profile a kernel booted with --profile FILE (profile=HZ) wrote, and writes
  PREFIX.pb.gz  pprof profile.proto (go tool pprof -top PREFIX.pb.gz)
  PREFIX.svg    a flame graph
and prints the top functions. --elf names the kernel ELF for symbols (default: the demo's
debug ELF, kernel/target/x86_64-unknown-none/debug/kernel).";

pub fn cli(args: &[String]) -> u8 {
    let (mut file, mut elf, mut prefix) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{PROFILE_USAGE}");
                return 0;
            }
            "--elf" | "-o" => {
                let Some(v) = it.next() else {
                    eprintln!("gmpos profile: {a} needs a value");
                    return 64;
                };
                if a == "--elf" {
                    elf = Some(PathBuf::from(v));
                } else {
                    prefix = Some(PathBuf::from(v));
                }
            }
            _ if a.starts_with('-') => {
                eprintln!("gmpos profile: unknown option `{a}`\n{}", PROFILE_USAGE.lines().next().unwrap());
                return 64;
            }
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let Some(file) = file else {
        eprintln!("gmpos profile: no FILE given\n{}", PROFILE_USAGE.lines().next().unwrap());
        return 64;
    };
    let elf = match elf {
        Some(e) => e,
        None => match crate::kernel_dir() {
            Ok(k) => crate::kernel_elf_path(&k, crate::DEFAULT_BIN, false),
            Err(e) => {
                eprintln!("gmpos profile: {e} (or give --elf ELF)");
                return 3;
            }
        },
    };
    let samples = match std::fs::read(&file).map_err(|e| e.to_string()).and_then(|b| decode(&b)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gmpos profile: {}: {e}", file.display());
            return 2;
        }
    };
    let mut sym = match Symbolizer::new(Some(&elf)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gmpos profile: {e} (name the kernel ELF with --elf)");
            return 2;
        }
    };
    let prefix = prefix.unwrap_or_else(|| file.with_extension(""));
    let pb = PathBuf::from(format!("{}.pb.gz", prefix.display()));
    let svg = PathBuf::from(format!("{}.svg", prefix.display()));
    let proto = gzip(&to_pprof(&samples, &mut sym));
    let fg = match flamegraph(&folded(&samples, &mut sym), &format!("gmpos CPU profile ({} samples)", samples.stacks.len())) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gmpos profile: {e}");
            return 2;
        }
    };
    for (p, d) in [(&pb, &proto), (&svg, &fg)] {
        if let Err(e) = std::fs::write(p, d) {
            eprintln!("gmpos profile: cannot write {}: {e}", p.display());
            return 2;
        }
    }
    println!("{} samples at {} Hz from {} cores ({} lost)", samples.stacks.len(), samples.hz, samples.ncpu, samples.lost);
    println!("top functions (self samples):");
    for (f, n) in top(&samples, &mut sym).iter().take(15) {
        println!("  {:6} {:5.1}%  {f}", n, *n as f64 * 100.0 / samples.stacks.len().max(1) as f64);
    }
    println!("wrote {} (go tool pprof -top {} ; -http=: for the web view)", pb.display(), pb.display());
    println!("wrote {} (flame graph)", svg.display());
    0
}
