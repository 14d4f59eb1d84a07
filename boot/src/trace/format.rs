//! Decoding the kernel's trace dump (`kernel/src/runtime/tracer.rs`, `dump`).
//!
//! The file the runner's `--trace FILE` writes is whatever the kernel sent to the `isa-debugcon`
//! port: one trace section (`GMPTRC01` ... `GMPTEND!`), possibly next to a profile section. A
//! truncated or corrupt file is an error that says where it went wrong, never a panic.
use std::collections::HashMap;
use std::fmt;

/// Event kinds; the numbers are the kernel's (`tracer::ev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    GoCreate,
    GoStart,
    GoStop,
    GoBlock,
    GoUnblock,
    GoExit,
    RunqSteal,
    MSpinStart,
    MSpinStop,
    MPark,
    MWake,
    IpiSend,
    IpiRecv,
    TimerFire,
    SyscallEnter,
    SyscallExit,
    PHandoff,
    ProcsChange,
    StwBegin,
    StwEnd,
    ProcStart,
    ProcStop,
}

impl Kind {
    pub fn from_u8(k: u8) -> Option<Kind> {
        use Kind::*;
        Some(match k {
            1 => GoCreate,
            2 => GoStart,
            3 => GoStop,
            4 => GoBlock,
            5 => GoUnblock,
            6 => GoExit,
            7 => RunqSteal,
            8 => MSpinStart,
            9 => MSpinStop,
            10 => MPark,
            11 => MWake,
            12 => IpiSend,
            13 => IpiRecv,
            14 => TimerFire,
            15 => SyscallEnter,
            16 => SyscallExit,
            17 => PHandoff,
            18 => ProcsChange,
            19 => StwBegin,
            20 => StwEnd,
            21 => ProcStart,
            22 => ProcStop,
            _ => return None,
        })
    }
    pub fn to_u8(self) -> u8 {
        (1..=22).find(|&k| Kind::from_u8(k) == Some(self)).unwrap()
    }
}

/// Why a goroutine stopped (`GoStop`'s `a`).
pub const STOP_YIELD: u32 = 0;
pub const STOP_PREEMPT: u32 = 1;
pub const STOP_SYSCALL: u32 = 2;

/// No P (the `p` field).
pub const NO_P: u16 = 0xffff;

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Nanoseconds since the first event of the trace.
    pub ns: u64,
    pub tsc: u64,
    pub kind: Kind,
    pub cpu: u32,
    /// The emitting core's P, or [`NO_P`].
    pub p: u16,
    /// The goroutine (see the kind): 0 = none (g0).
    pub g: u64,
    pub a: u32,
    pub b: u64,
    /// Position in its core's stream.
    pub seq: u32,
}

/// A whole decoded trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub ncpu: u32,
    pub tsc_per_ms: u64,
    /// True: flight-recorder mode (the last events of each core).
    pub flight: bool,
    /// Events per core the kernel kept.
    pub cap: u32,
    /// True: written after a fatal error or panic.
    pub fatal: bool,
    pub gomaxprocs: u32,
    /// Events of every core, in time order.
    pub events: Vec<Event>,
    /// Per core: events lost (buffer full, overwritten, or torn).
    pub lost: Vec<u64>,
    /// Per core: its local APIC id (IPI destinations are APIC ids).
    pub apic_ids: Vec<u32>,
    /// Wait reason names by number.
    pub wait_reasons: Vec<String>,
    /// Goroutine names by packed key (`GoCreate`/`GoStart` `b`).
    pub names: HashMap<u64, String>,
    /// The time range (ns) in which every core's record is complete: for a stream trace that lost
    /// events, up to the first core's last record; for a flight trace, from the latest first
    /// record of a core that wrapped. The checker judges only this window.
    pub complete: (u64, u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);
impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DecodeError {}

pub const MAGIC: &[u8; 8] = b"GMPTRC01";
pub const END: &[u8; 8] = b"GMPTEND!";
pub const REC_SIZE: usize = 32;

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.b.len() - self.pos < n {
            return Err(DecodeError(format!(
                "trace truncated at byte {} while reading {what} (need {n} more bytes, {} left)",
                self.pos,
                self.b.len() - self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
}

/// Find the trace section in `file` and decode it.
pub fn decode(file: &[u8]) -> Result<Trace, DecodeError> {
    let start = find(file, MAGIC).ok_or_else(|| {
        DecodeError(format!(
            "no trace in this file ({} bytes; no {:?} header): was the kernel booted with trace=1 \
             (the runner's --trace FILE) and did it reach the end of main or a fatal error?",
            file.len(),
            std::str::from_utf8(MAGIC).unwrap()
        ))
    })?;
    let mut r = Reader { b: file, pos: start + 8 };
    let version = r.u32("the version")?;
    if version != 1 {
        return Err(DecodeError(format!("trace version {version} is not supported (this gmpos reads version 1)")));
    }
    let ncpu = r.u32("the core count")?;
    if ncpu == 0 || ncpu > 255 {
        return Err(DecodeError(format!("bad core count {ncpu} in the trace header")));
    }
    let tsc_per_ms = r.u64("the TSC rate")?;
    if tsc_per_ms == 0 {
        return Err(DecodeError("TSC rate 0 in the trace header".into()));
    }
    let mode = r.u32("the mode")?;
    let cap = r.u32("the buffer size")?;
    let end = r.u32("the end reason")?;
    let gomaxprocs = r.u32("gomaxprocs")?;
    let rec = r.u32("the record size")? as usize;
    if rec != REC_SIZE {
        return Err(DecodeError(format!("record size {rec} is not {REC_SIZE}")));
    }
    r.u32("padding")?;
    let mut raw = Vec::new();
    let mut lost = vec![0u64; ncpu as usize];
    let mut apic_ids = vec![0u32; ncpu as usize];
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    for i in 0..ncpu as usize {
        let cpu = r.u32("a core header")?;
        if cpu as usize != i {
            return Err(DecodeError(format!("core section {i} is labelled core {cpu}: the trace is corrupt")));
        }
        apic_ids[i] = r.u32("an APIC id")?;
        let n = r.u32("a record count")? as usize;
        r.u32("padding")?;
        lost[i] = r.u64("a lost count")?;
        let recs = r.take(n * REC_SIZE, &format!("the {n} records of core {i}"))?;
        let mut first = None;
        let mut last = None;
        // The index of the core's oldest record: above 0, a flight ring wrapped and the
        // events before it were overwritten.
        let mut first_seq: Option<u32> = None;
        for c in recs.chunks_exact(REC_SIZE) {
            let kind = c[4];
            if kind == 0 {
                lost[i] += 1; // torn at dump time (see the kernel's dump)
                continue;
            }
            let Some(kind) = Kind::from_u8(kind) else {
                return Err(DecodeError(format!("core {i}: unknown event kind {kind}: the trace is corrupt")));
            };
            let tsc = u64::from_le_bytes(c[8..16].try_into().unwrap());
            first_seq.get_or_insert(u32::from_le_bytes(c[0..4].try_into().unwrap()));
            first = Some(first.map_or(tsc, |f: u64| f.min(tsc)));
            last = Some(last.map_or(tsc, |l: u64| l.max(tsc)));
            raw.push(Event {
                ns: 0,
                tsc,
                kind,
                cpu: c[5] as u32,
                p: u16::from_le_bytes(c[6..8].try_into().unwrap()),
                g: u32::from_le_bytes(c[16..20].try_into().unwrap()) as u64,
                a: u32::from_le_bytes(c[20..24].try_into().unwrap()),
                b: u64::from_le_bytes(c[24..32].try_into().unwrap()),
                seq: u32::from_le_bytes(c[0..4].try_into().unwrap()),
            });
        }
        // Events missing before the first one: lost ones, or ones a wrapped flight ring
        // overwrote (the kernel does not count those as lost; they are the design).
        firsts.push((first, lost[i] + first_seq.unwrap_or(0) as u64));
        lasts.push((last, lost[i]));
    }
    let nr = r.u32("the wait reason count")?;
    let mut wait_reasons = Vec::new();
    for _ in 0..nr {
        let len = r.u8("a wait reason")? as usize;
        wait_reasons.push(String::from_utf8_lossy(r.take(len, "a wait reason")?).into_owned());
    }
    let nn = r.u32("the name count")?;
    let mut names = HashMap::new();
    for _ in 0..nn {
        let key = r.u64("a name key")?;
        let len = r.u16("a name length")? as usize;
        names.insert(key, String::from_utf8_lossy(r.take(len, "a goroutine name")?).into_owned());
    }
    if r.take(8, "the end marker")? != END {
        return Err(DecodeError(format!("missing end marker at byte {}: the trace is corrupt", r.pos - 8)));
    }
    // Stable sort by time; within a core, the stream order breaks ties.
    raw.sort_by_key(|e| (e.tsc, e.cpu, e.seq));
    let t0 = raw.first().map(|e| e.tsc).unwrap_or(0);
    let to_ns = |tsc: u64| ((tsc - t0) as u128 * 1_000_000 / tsc_per_ms as u128) as u64;
    for e in &mut raw {
        e.ns = to_ns(e.tsc);
    }
    let flight = mode == 2;
    let last_ns = raw.last().map(|e| e.ns).unwrap_or(0);
    let mut complete = (0, last_ns);
    if flight {
        // The window starts once every core's record has begun: before a wrapped core's
        // oldest surviving event, what that core did is unknown (a goroutine's start there
        // may be gone while its stop survives).
        for (f, l) in &firsts {
            if let (Some(f), true) = (f, *l > 0) {
                complete.0 = complete.0.max(to_ns(*f));
            }
        }
    } else {
        for (la, l) in &lasts {
            if let (Some(la), true) = (la, *l > 0) {
                complete.1 = complete.1.min(to_ns(*la));
            }
        }
    }
    Ok(Trace {
        ncpu,
        tsc_per_ms,
        flight,
        cap,
        fatal: end == 1,
        gomaxprocs,
        events: raw,
        lost,
        apic_ids,
        wait_reasons,
        names,
        complete,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Trace {
    /// The goroutine name of a `GoCreate`/`GoStart` event's `b`, shortened for display:
    /// `testkernel::sched::spawn_storm::{{closure}}` -> `sched::spawn_storm::{{closure}}`.
    pub fn name(&self, key: u64) -> Option<&str> {
        self.names.get(&key).map(|s| s.as_str())
    }

    pub fn wait_reason(&self, r: u32) -> String {
        match self.wait_reasons.get(r as usize) {
            Some(s) if !s.is_empty() => s.clone(),
            Some(_) => "(none)".into(),
            None => format!("reason {r}"),
        }
    }

    /// The core whose APIC id is `apic`.
    pub fn cpu_of_apic(&self, apic: u32) -> Option<u32> {
        self.apic_ids.iter().position(|&a| a == apic).map(|c| c as u32)
    }

    pub fn total_lost(&self) -> u64 {
        self.lost.iter().sum()
    }

    pub fn duration_ns(&self) -> u64 {
        self.events.last().map(|e| e.ns).unwrap_or(0)
    }
}

/// Encode a trace in the kernel's format (for tests of the decoder and the tools).
pub fn encode(t: &Trace) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend_from_slice(MAGIC);
    o.extend_from_slice(&1u32.to_le_bytes());
    o.extend_from_slice(&t.ncpu.to_le_bytes());
    o.extend_from_slice(&t.tsc_per_ms.to_le_bytes());
    o.extend_from_slice(&(if t.flight { 2u32 } else { 1 }).to_le_bytes());
    o.extend_from_slice(&t.cap.to_le_bytes());
    o.extend_from_slice(&(t.fatal as u32).to_le_bytes());
    o.extend_from_slice(&t.gomaxprocs.to_le_bytes());
    o.extend_from_slice(&(REC_SIZE as u32).to_le_bytes());
    o.extend_from_slice(&0u32.to_le_bytes());
    for cpu in 0..t.ncpu {
        let evs: Vec<&Event> = t.events.iter().filter(|e| e.cpu == cpu).collect();
        o.extend_from_slice(&cpu.to_le_bytes());
        o.extend_from_slice(&t.apic_ids.get(cpu as usize).copied().unwrap_or(cpu).to_le_bytes());
        o.extend_from_slice(&(evs.len() as u32).to_le_bytes());
        o.extend_from_slice(&0u32.to_le_bytes());
        o.extend_from_slice(&t.lost.get(cpu as usize).copied().unwrap_or(0).to_le_bytes());
        for (i, e) in evs.iter().enumerate() {
            // The ring index: the event's own when set (a wrapped flight ring starts above 0).
            let seq = if e.seq != 0 { e.seq } else { i as u32 };
            o.extend_from_slice(&seq.to_le_bytes());
            o.push(e.kind.to_u8());
            o.push(e.cpu as u8);
            o.extend_from_slice(&e.p.to_le_bytes());
            o.extend_from_slice(&e.tsc.to_le_bytes());
            o.extend_from_slice(&(e.g as u32).to_le_bytes());
            o.extend_from_slice(&e.a.to_le_bytes());
            o.extend_from_slice(&e.b.to_le_bytes());
        }
    }
    o.extend_from_slice(&(t.wait_reasons.len() as u32).to_le_bytes());
    for w in &t.wait_reasons {
        o.push(w.len() as u8);
        o.extend_from_slice(w.as_bytes());
    }
    let mut names: Vec<_> = t.names.iter().collect();
    names.sort();
    o.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for (k, v) in names {
        o.extend_from_slice(&k.to_le_bytes());
        o.extend_from_slice(&(v.len() as u16).to_le_bytes());
        o.extend_from_slice(v.as_bytes());
    }
    o.extend_from_slice(END);
    o
}
