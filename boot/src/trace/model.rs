//! What the exporters draw, computed once from a decoded trace: goroutine slices per P, M
//! spinning and parked intervals, wake-ups, blocked intervals, steals.
use super::format::{Event, Kind, Trace, NO_P, STOP_PREEMPT, STOP_SYSCALL, STOP_YIELD};
use std::collections::HashMap;

/// How a goroutine's run on a P ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    Yield,
    Preempted,
    Blocked(u32),
    Exit,
    Syscall,
    /// Still running when the trace ends.
    Open,
}

/// A goroutine running on a P from `start` to `end` (ns).
#[derive(Debug, Clone)]
pub struct Slice {
    pub p: u16,
    pub g: u64,
    pub start: u64,
    pub end: u64,
    pub name: String,
    pub how: SliceEnd,
}

/// An interval on a core (M): spinning or parked.
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    pub cpu: u32,
    pub start: u64,
    pub end: u64,
}

/// A wake-up: `waker` (0 = the scheduler, e.g. a timer) made `g` runnable at `at`; it started
/// running at `started` on P `p`.
#[derive(Debug, Clone, Copy)]
pub struct Wake {
    pub waker: u64,
    pub g: u64,
    pub at: u64,
    pub at_cpu: u32,
    pub at_p: u16,
    pub started: Option<(u64, u16)>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub slices: Vec<Slice>,
    pub spinning: Vec<Interval>,
    pub parked: Vec<Interval>,
    pub wakes: Vec<Wake>,
    /// (reason, ns blocked) for every block that ended in the trace.
    pub blocked: Vec<(u32, u64)>,
    /// (ns, thief P, victim P, count).
    pub steals: Vec<(u64, u16, u16, u64)>,
    /// STW intervals.
    pub stw: Vec<(u64, u64)>,
    /// Run-queue samples: (ns, P, local len, global len), taken at each goroutine start.
    pub runq: Vec<(u64, u16, u32, u32)>,
    /// The Ps seen.
    pub nprocs: u16,
    /// Goroutine names by goid (from its create or first start).
    pub gnames: HashMap<u64, String>,
}

/// A short display name: the closure type without the crate path and generic noise.
pub fn short_name(full: &str) -> String {
    let s = full.replace("{{closure}}", "{closure}");
    let parts: Vec<&str> = s.split("::").collect();
    if parts.len() > 3 {
        parts[parts.len() - 3..].join("::")
    } else {
        s
    }
}

pub fn build(t: &Trace) -> Model {
    let mut m = Model::default();
    let end_ns = t.duration_ns();
    let mut running: HashMap<u64, (u16, u64)> = HashMap::new();
    let mut spin: HashMap<u32, u64> = HashMap::new();
    let mut park: HashMap<u32, u64> = HashMap::new();
    let mut block: HashMap<u64, (u32, u64)> = HashMap::new();
    let mut pending_wake: HashMap<u64, usize> = HashMap::new();
    let mut stw: Option<u64> = None;
    let mut maxp = t.gomaxprocs.min(u16::MAX as u32) as u16;
    let name_of = |m: &Model, g: u64| m.gnames.get(&g).cloned().unwrap_or_default();
    for e in &t.events {
        if e.p != NO_P {
            maxp = maxp.max(e.p + 1);
        }
        let close = |m: &mut Model, running: &mut HashMap<u64, (u16, u64)>, e: &Event, how: SliceEnd| {
            if let Some((p, start)) = running.remove(&e.g) {
                let name = name_of(m, e.g);
                m.slices.push(Slice { p, g: e.g, start, end: e.ns, name, how });
            }
        };
        match e.kind {
            Kind::GoCreate => {
                if let Some(n) = t.name(e.b) {
                    m.gnames.insert(e.a as u64, short_name(n));
                }
            }
            Kind::GoStart => {
                if !m.gnames.contains_key(&e.g) {
                    if let Some(n) = t.name(e.b) {
                        m.gnames.insert(e.g, short_name(n));
                    }
                }
                // A start while "running" means a lost stop: end the old slice here.
                close(&mut m, &mut running, e, SliceEnd::Open);
                running.insert(e.g, (e.p, e.ns));
                m.runq.push((e.ns, e.p, e.a & 0xffff, e.a >> 16));
                if let Some(i) = pending_wake.remove(&e.g) {
                    m.wakes[i].started = Some((e.ns, e.p));
                }
            }
            Kind::GoStop => {
                let how = match e.a {
                    STOP_YIELD => SliceEnd::Yield,
                    STOP_PREEMPT => SliceEnd::Preempted,
                    STOP_SYSCALL => SliceEnd::Syscall,
                    _ => SliceEnd::Yield,
                };
                close(&mut m, &mut running, e, how);
            }
            Kind::GoBlock => {
                close(&mut m, &mut running, e, SliceEnd::Blocked(e.a));
                block.insert(e.g, (e.a, e.ns));
            }
            Kind::GoExit => close(&mut m, &mut running, e, SliceEnd::Exit),
            Kind::SyscallEnter => close(&mut m, &mut running, e, SliceEnd::Syscall),
            Kind::SyscallExit => {
                running.insert(e.g, (e.p, e.ns));
            }
            Kind::GoUnblock => {
                let g = e.a as u64;
                if let Some((r, since)) = block.remove(&g) {
                    m.blocked.push((r, e.ns - since));
                }
                pending_wake.insert(g, m.wakes.len());
                m.wakes.push(Wake { waker: e.g, g, at: e.ns, at_cpu: e.cpu, at_p: e.p, started: None });
            }
            Kind::RunqSteal => m.steals.push((e.ns, e.p, e.a as u16, e.b)),
            Kind::MSpinStart => {
                spin.insert(e.cpu, e.ns);
            }
            Kind::MSpinStop => {
                if let Some(s) = spin.remove(&e.cpu) {
                    m.spinning.push(Interval { cpu: e.cpu, start: s, end: e.ns });
                }
            }
            Kind::MPark => {
                if let Some(s) = spin.remove(&e.cpu) {
                    m.spinning.push(Interval { cpu: e.cpu, start: s, end: e.ns });
                }
                park.insert(e.cpu, e.ns);
            }
            Kind::MWake => {
                if let Some(s) = park.remove(&e.cpu) {
                    m.parked.push(Interval { cpu: e.cpu, start: s, end: e.ns });
                }
                if e.a == 1 {
                    spin.insert(e.cpu, e.ns);
                }
            }
            Kind::StwBegin => stw = Some(e.ns),
            Kind::StwEnd => {
                if let Some(s) = stw.take() {
                    m.stw.push((s, e.ns));
                }
            }
            _ => {}
        }
    }
    for (g, (p, start)) in running {
        let name = name_of(&m, g);
        m.slices.push(Slice { p, g, start, end: end_ns, name, how: SliceEnd::Open });
    }
    for (cpu, s) in park {
        m.parked.push(Interval { cpu, start: s, end: end_ns });
    }
    for (cpu, s) in spin {
        m.spinning.push(Interval { cpu, start: s, end: end_ns });
    }
    m.slices.sort_by_key(|s| (s.p, s.start));
    m.nprocs = maxp;
    m
}
