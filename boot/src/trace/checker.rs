//! The trace checker: the scheduler's invariants, asserted over a whole trace.
//!
//! - no goroutine runs on two Ps at once (a start of a goroutine that is running);
//! - every start follows a create, an unblock, or a stop (yield, preemption, syscall exit
//!   without a P): the goroutine must be runnable;
//! - no P runs two goroutines at once (a start on a P whose goroutine has not stopped);
//! - a goroutine stops, blocks, exits or enters a syscall only while running, and is unblocked
//!   only while blocked; nothing happens to a goroutine after it exited.
//!
//! Only the window in which every core's record is complete is judged ([`Trace::complete`]). In
//! a flight-recorder trace the window starts mid-run, so a goroutine's first event there defines
//! its state instead of being judged.
use super::format::{Kind, Trace, NO_P, STOP_SYSCALL};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Runnable,
    Running(u16),
    Waiting,
    Syscall,
    Dead,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub ns: u64,
    pub cpu: u32,
    pub msg: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {:.3} us on cpu{}: {}", self.ns as f64 / 1000.0, self.cpu, self.msg)
    }
}

/// The result of checking a trace.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Events judged (inside the complete window).
    pub checked: usize,
    pub goroutines: usize,
    pub starts: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

fn st_name(s: Option<St>) -> String {
    match s {
        None => "unknown (never created in the trace)".into(),
        Some(St::Runnable) => "runnable".into(),
        Some(St::Running(p)) => format!("running on P{p}"),
        Some(St::Waiting) => "waiting".into(),
        Some(St::Syscall) => "in a syscall".into(),
        Some(St::Dead) => "dead".into(),
    }
}

pub fn check(t: &Trace) -> Report {
    let mut r = Report::default();
    let (lo, hi) = t.complete;
    let lenient = t.flight;
    let mut g: HashMap<u64, St> = HashMap::new();
    let mut p_g: HashMap<u16, u64> = HashMap::new();
    let bad = |r: &mut Report, e: &super::format::Event, msg: String| {
        if r.violations.len() < 1000 {
            r.violations.push(Violation { ns: e.ns, cpu: e.cpu, msg });
        }
    };
    for e in &t.events {
        if e.ns < lo || e.ns > hi {
            continue;
        }
        r.checked += 1;
        match e.kind {
            Kind::GoCreate => {
                let new = e.a as u64;
                if let Some(s) = g.get(&new) {
                    bad(&mut r, e, format!("goroutine {new} created twice (it is {})", st_name(Some(*s))));
                }
                g.insert(new, St::Runnable);
            }
            Kind::GoStart => {
                r.starts += 1;
                let cur = g.get(&e.g).copied();
                match cur {
                    Some(St::Runnable) => {}
                    None if lenient => {}
                    Some(St::Running(p)) => bad(
                        &mut r,
                        e,
                        format!("goroutine {} started on P{} while running on P{p} (a G on two Ps at once)", e.g, e.p),
                    ),
                    other => bad(
                        &mut r,
                        e,
                        format!(
                            "goroutine {} started on P{} but it is {}: a start must follow a create, an unblock or a stop",
                            e.g,
                            e.p,
                            st_name(other)
                        ),
                    ),
                }
                if let Some(&other) = p_g.get(&e.p) {
                    if other != e.g {
                        bad(&mut r, e, format!("P{} starts goroutine {} while goroutine {other} still runs on it (a P running two Gs)", e.p, e.g));
                    }
                }
                if let Some(St::Running(old)) = cur {
                    p_g.remove(&old);
                }
                g.insert(e.g, St::Running(e.p));
                p_g.insert(e.p, e.g);
            }
            Kind::GoStop | Kind::GoBlock | Kind::GoExit | Kind::SyscallEnter => {
                let cur = g.get(&e.g).copied();
                let from_syscall = e.kind == Kind::GoStop && e.a == STOP_SYSCALL;
                match cur {
                    Some(St::Running(p)) if !from_syscall => {
                        if p_g.get(&p) == Some(&e.g) {
                            p_g.remove(&p);
                        }
                        // (The P may differ from the event's: GOMAXPROCS can move a running M
                        // from a destroyed P to P0.)
                    }
                    Some(St::Syscall) if from_syscall => {}
                    None if lenient => {
                        if e.p != NO_P && p_g.get(&e.p) == Some(&e.g) {
                            p_g.remove(&e.p);
                        }
                    }
                    other => bad(
                        &mut r,
                        e,
                        format!("{:?} of goroutine {} on P{}, but it is {}", e.kind, e.g, e.p, st_name(other)),
                    ),
                }
                let next = match e.kind {
                    Kind::GoStop => St::Runnable,
                    Kind::GoBlock => St::Waiting,
                    Kind::GoExit => St::Dead,
                    _ => St::Syscall,
                };
                g.insert(e.g, next);
            }
            Kind::SyscallExit => {
                match g.get(&e.g).copied() {
                    Some(St::Syscall) => {}
                    None if lenient => {}
                    other => bad(&mut r, e, format!("syscall exit of goroutine {}, but it is {}", e.g, st_name(other))),
                }
                if let Some(&other) = p_g.get(&e.p) {
                    bad(&mut r, e, format!("goroutine {} leaves its syscall on P{} while goroutine {other} runs there", e.g, e.p));
                }
                g.insert(e.g, St::Running(e.p));
                p_g.insert(e.p, e.g);
            }
            Kind::GoUnblock => {
                let target = e.a as u64;
                match g.get(&target).copied() {
                    Some(St::Waiting) => {}
                    None if lenient => {}
                    other => bad(&mut r, e, format!("goroutine {target} unblocked by goroutine {}, but it is {}", e.g, st_name(other))),
                }
                g.insert(target, St::Runnable);
            }
            _ => {}
        }
    }
    r.goroutines = g.len();
    r
}
