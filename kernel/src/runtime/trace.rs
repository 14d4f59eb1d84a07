//! `schedtrace=N` / `scheddetail=1`: Go's `schedtrace` output on the serial
//! console, and the summary printed at exit.
use super::proc::{self, GOMAXPROCS, NCPU, SCHED};
use super::runtime2::*;
use crate::arch::x86_64::time;
use crate::println;
use core::fmt::Write;
use core::sync::atomic::Ordering;

struct Line {
    buf: [u8; 512],
    len: usize,
}
impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
impl Line {
    fn new() -> Self {
        Line { buf: [0; 512], len: 0 }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

/// Print one `SCHED` line (and the detail lines).
pub fn schedtrace(detail: bool) {
    let now_ms = time::nanotime() / 1_000_000;
    let procs = GOMAXPROCS.load(Ordering::Relaxed);
    let mut l = Line::new();
    let _ = write!(
        l,
        "SCHED {now_ms}ms: gomaxprocs={procs} idleprocs={} threads={} spinningthreads={} needspinning={} idlethreads={} runqueue={}",
        SCHED.npidle.load(Ordering::Relaxed),
        NCPU.load(Ordering::Relaxed),
        SCHED.nmspinning.load(Ordering::Relaxed),
        SCHED.needspinning.load(Ordering::Relaxed),
        SCHED.nmidle.load(Ordering::Relaxed),
        SCHED.runqsize.load(Ordering::Relaxed),
    );
    if detail {
        let _ = write!(
            l,
            " gcwaiting={} lockedm_needp={:#x} timers added={} fired={}",
            SCHED.gcwaiting.load(Ordering::Relaxed) as u32,
            super::proc::lockedm_needp(),
            super::time::TIMERS_ADDED.load(Ordering::Relaxed),
            super::time::TIMERS_FIRED.load(Ordering::Relaxed)
        );
    } else {
        let _ = write!(l, " [");
        for (i, pp) in proc::allp_slice().enumerate() {
            let _ = write!(l, "{}{}", if i > 0 { " " } else { "" }, pp.runq.stealer().len());
        }
        let _ = write!(l, "]");
    }
    println!("{}", l.as_str());
    if !detail {
        return;
    }
    for pp in proc::allp_slice() {
        let m = pp.m.load(Ordering::Relaxed);
        // SAFETY: Ms are never freed.
        let mid = unsafe { m.as_ref() }.map(|m| m.id as i64).unwrap_or(-1);
        println!(
            "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} timerslen={}",
            pp.id,
            pp.status.load(Ordering::Relaxed),
            pp.schedtick.load(Ordering::Relaxed),
            pp.syscalltick.load(Ordering::Relaxed),
            mid,
            pp.runq.stealer().len(),
            pp.timers.len()
        );
    }
    for m in proc::allm_slice() {
        let p = m.p.load(Ordering::Relaxed);
        // SAFETY: Ps and Gs are never freed.
        let pid = unsafe { p.as_ref() }.map(|p| p.id as i64).unwrap_or(-1);
        let g = m.curg.load(Ordering::Relaxed);
        let gid = unsafe { g.as_ref() }.map(|g| g.id() as i64).unwrap_or(-1);
        let lg = m.lockedg.load(Ordering::Relaxed);
        let lgid = unsafe { lg.as_ref() }.map(|g| g.id() as i64).unwrap_or(-1);
        println!(
            "  M{}: p={} curg={} spinning={} lockedg={} parks={} wakeups={} steals={}",
            m.id,
            pid,
            gid,
            m.spinning.load(Ordering::Relaxed),
            lgid,
            m.parks.load(Ordering::Relaxed),
            m.wakeups.load(Ordering::Relaxed),
            m.steals.load(Ordering::Relaxed)
        );
    }
    proc::for_each_g(|g| {
        let st = g.status();
        if st == G_DEAD || st == G_IDLE {
            return;
        }
        // SAFETY: diagnostic read.
        let reason = unsafe { g.waitreason.get() };
        let lm = g.lockedm.load(Ordering::Relaxed);
        let lmid = unsafe { lm.as_ref() }.map(|m| m.id as i64).unwrap_or(-1);
        let r = if st == G_WAITING { reason.as_str() } else { "" };
        println!("  G{}: status={}({}) m={} lockedm={}", g.id(), st, r, g.lastcpu.load(Ordering::Relaxed), lmid);
    });
}

/// Totals for the summary line.
pub struct Stats {
    pub created: u64,
    pub steals: u64,
    pub parks: u64,
    pub wakeups: u64,
}

pub fn stats() -> Stats {
    let mut s = Stats { created: 0, steals: 0, parks: 0, wakeups: 0 };
    for m in proc::allm_slice() {
        s.created += m.ngcreated.load(Ordering::Relaxed);
        s.steals += m.steals.load(Ordering::Relaxed);
        s.parks += m.parks.load(Ordering::Relaxed);
        s.wakeups += m.wakeups.load(Ordering::Relaxed);
    }
    s
}

/// Called when main returns: with schedtrace on, print the summary.
pub fn at_exit() {
    if crate::boot::params().schedtrace_ms > 0 {
        schedtrace(crate::boot::params().scheddetail);
        let s = stats();
        println!(
            "sched summary: goroutines created={} steals={} M parks={} M wakeups={}",
            s.created, s.steals, s.parks, s.wakeups
        );
        mem_summary();
    }
}

/// The `mem` line of the summary: physical frames in use (each 4 KiB:
/// the heap, mapped whole at boot, page tables, goroutine stack pages), and
/// what the goroutine stacks did.
pub fn mem_summary() {
    proc::gfreap();
    let (used, total) = crate::mem::frame::stats();
    let st = crate::mem::stack::stats();
    let (shootdowns, sent, answered) = crate::mem::tlb::stats();
    println!(
        "mem: frames in use={} of {} ({} KiB) stack pages mapped={} unmapped={} in use={} page tables freed={} stack slots={} stacks being freed={} TLB shootdowns={} IPIs sent={} answered={}",
        used,
        total,
        used * 4,
        st.pages_mapped,
        st.pages_unmapped,
        st.pages_mapped.saturating_sub(st.pages_unmapped),
        st.tables_freed,
        st.slots,
        proc::gfree_limbo(),
        shootdowns,
        sent,
        answered
    );
}
