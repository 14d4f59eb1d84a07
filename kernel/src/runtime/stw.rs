//! Stop the world and GOMAXPROCS (Go's `stopTheWorld`, `startTheWorld`,
//! `procresize` and `GOMAXPROCS`, all in Go's proc.go; here in their own file
//! so that the mechanism reads in one place).
//!
//! ## The stop-the-world protocol
//!
//! One stop at a time (`WORLDSEMA`). The stopper, holding a `PreemptGuard`:
//! 1. under `sched.lock`, sets `stopwait = GOMAXPROCS` and `gcwaiting`, and
//!    asks every *other* running P's goroutine to stop (`preemptall`; never
//!    its own, as Go's `preemptone` refuses `getg().m`);
//! 2. stops its own P, every P in a syscall (`_Psyscall -> _Pgcstop`, a CAS
//!    that races with `exitsyscall`), and every idle P, counting each off
//!    `stopwait`;
//! 3. if Ps are still running, spins (re-preempting every 100 us) until the
//!    last M to stop its P (in `gcstopm`, `pidleput`, `exitsyscall`, ...)
//!    counts `stopwait` to 0 and wakes `stopnote`.
//!
//! Then `start_the_world` resizes (`procresize`: new Ps are made, Ps beyond
//! the new count are destroyed and their goroutines, free Gs and timers move
//! to the global lists and P0), clears `gcwaiting`, hands every P with work
//! to an M (an idle one, or a new `startm`), and `wakep`s. A P that comes
//! back while the stop is in progress (`pidleput`) is counted and stopped
//! instead of going idle (issue 14's hang).
use super::lock::PreemptGuard;
use super::proc::*;
use super::runtime2::*;
use super::time;
use alloc::vec::Vec;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::Ordering;


/// Go's `preemptAll`: ask every running P's goroutine to stop, except our
/// own. Go's `preemptone` refuses `mp == getg().m`; ours cannot, because
/// sysmon's `retake` runs on the core whose goroutine it preempts. Without
/// the skip, stop-the-world preempted its own caller: at -smp 1 the caller
/// of `gomaxprocs` went to the tail of the global queue after every change
/// and waited behind every runnable goroutine (regress::stw_wakep_churn).
fn preemptall() {
    let me = getm().p.load(Ordering::Relaxed);
    for i in 0..GOMAXPROCS.load(Ordering::Relaxed) {
        let pp = allp(i);
        if core::ptr::eq(pp, me) {
            continue;
        }
        if pp.status.load(Ordering::Relaxed) == P_RUNNING {
            super::preempt::preemptone(pp);
        }
    }
}

/// Go's `stopTheWorld`: every P stops (P_GCSTOP) except ours. Called with a
/// PreemptGuard held, on a goroutine.
fn stop_the_world() {
    super::tracer::stw_begin();
    let mp = getm();
    let mut s = SCHED.lock.lock();
    noteclear(&SCHED.stopnote);
    s.stopwait = GOMAXPROCS.load(Ordering::Relaxed);
    SCHED.gcwaiting.store(true, Ordering::SeqCst);
    // Whether Ps are still running (`stopwait > 0`) once every P that can be stopped from
    // here is stopped.
    let wait = {
        //~ lab7 begin stopTheWorld: ask the other running Ps to stop (preemptall), then stop every
        //~ P you can stop yourself (your own, those in a syscall, the idle ones: P_GCSTOP), counting
        //~ each off stopwait with stopwait_done. A P in a syscall may leave it at any moment: claim
        //~ it with a CAS. Return whether some P is still running.
        preemptall();
        let pp = p_of(mp);
        pp.status.store(P_GCSTOP, Ordering::Release);
        stopwait_done(&mut s);
        for i in 0..GOMAXPROCS.load(Ordering::Relaxed) {
            let p = allp(i);
            if p.status.compare_exchange(P_SYSCALL, P_GCSTOP, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                stopwait_done(&mut s);
            }
        }
        while let Some(p) = pidleget(&mut s) {
            p.status.store(P_GCSTOP, Ordering::Release);
            stopwait_done(&mut s);
        }
        s.stopwait > 0
        //~ lab7 end
    };
    drop(s);
    // A core waiting for its locked goroutine (locked_wait) holds a P but
    // sleeps on its note: wake it so it sees gcwaiting and stops its P.
    for m in allm_slice() {
        if !m.lockedg.load(Ordering::Relaxed).is_null() && !core::ptr::eq(m, mp) {
            notewakeup(&m.park, m.apic_id);
        }
    }
    if wait {
        //~ lab7 begin stopwait: wait (spin, without the lock) until the last M to stop its P wakes
        //~ stopnote (SCHED.stopnote.key becomes non-zero), asking the running Ps again every
        //~ 100 us (an IPI can arrive while its goroutine is not at a safe point); after 20 s,
        //~ throw. Then clear stopnote for the next stop.
        // Spin with pause, re-preempting every 100 us, until the last M
        // stops its P (it sets stopnote). Bounded by the 20 s throw below.
        let start = time::nanotime();
        let mut last = start;
        while SCHED.stopnote.key.load(Ordering::SeqCst) == 0 {
            core::hint::spin_loop();
            let now = time::nanotime();
            if now - last > 100_000 {
                preemptall();
                last = now;
            }
            if now - start > 20_000_000_000 {
                // Show who did not stop (P status, M, lockedg) first.
                super::trace::schedtrace(true);
                super::fatal::throw("stopTheWorld: Ps did not stop within 20 s");
            }
        }
        noteclear(&SCHED.stopnote);
        //~ lab7 end
    }
    let s = SCHED.lock.lock();
    if s.stopwait != 0 {
        super::fatal::throw("stopTheWorld: not stopped");
    }
}

/// Go's `startTheWorld` with `procresize(newprocs)`.
fn start_the_world(newprocs: u32) {
    let runnable = {
        let mut s = SCHED.lock.lock();
        let r = procresize(&mut s, newprocs);
        SCHED.gcwaiting.store(false, Ordering::SeqCst);
        r
    };
    for (pp, nmp) in runnable {
        //~ lab7 begin startTheWorld: hand pp (it has work) to an M: to nmp if procresize found an
        //~ idle one (its nextp, then wake it on its park note), else start one (startm with pp).
        match nmp {
            Some(nmp) => {
                nmp.nextp.store(pp as *const P as *mut P, Ordering::Release);
                notewakeup(&nmp.park, nmp.apic_id);
            }
            None => startm(Some(pp), false),
        }
        //~ lab7 end
    }
    // A core whose locked goroutine is runnable may have parked on the idle
    // list during the stop (gcstopm), and mget never hands it a P: wake it,
    // so that it asks for one itself (mpark → take_idle_p).
    let me = getm();
    for m in allm_slice() {
        if !core::ptr::eq(m, me) && !m.lockedg.load(Ordering::Relaxed).is_null() {
            notewakeup(&m.park, m.apic_id);
        }
    }
    super::tracer::stw_end();
    wakep();
}

/// Go's `procresize`: make `nprocs` Ps, destroying extra ones (their Gs and
/// free lists move to the global lists). Returns the Ps that have local
/// work, each with an idle M to run it (or None). Lock held, world stopped.
pub(super) fn procresize(s: &mut SchedLocked, nprocs: u32) -> Vec<(&'static P, Option<&'static M>)> {
    let old = GOMAXPROCS.load(Ordering::Relaxed);
    let old = if ALLP[0].load(Ordering::Relaxed).is_null() { 0 } else { old };
    for i in 0..nprocs {
        if ALLP[i as usize].load(Ordering::Relaxed).is_null() {
            ALLP[i as usize].store(new_p(i) as *const P as *mut P, Ordering::Release);
        }
    }
    let mp = getm();
    // Our own P survives if its id is small enough; else we take P0.
    let cur = mp.p.load(Ordering::Relaxed);
    // SAFETY: Ps are never freed.
    if !cur.is_null() && unsafe { (*cur).id } < nprocs {
        // SAFETY: as above.
        unsafe { (*cur).status.store(P_RUNNING, Ordering::Release) };
    } else {
        // The running goroutine (the caller of gomaxprocs) moves from its
        // P to P0 without stopping: tell the tracer, as Go's procresize does
        // (traceGoSched + traceProcStop, then traceGoStart after acquirep),
        // or the trace shows it still running on the old P.
        // SAFETY: getg() is the running goroutine (or null at boot).
        let curg = unsafe { getg().as_ref() };
        if !cur.is_null() {
            // SAFETY: as above.
            let c = unsafe { &*cur };
            if let Some(g) = curg {
                super::tracer::go_stop(g, false);
            }
            super::tracer::proc_stop(c);
            c.m.store(null_mut(), Ordering::Relaxed);
            mp.p.store(null_mut(), Ordering::Relaxed);
        }
        let p0 = allp(0);
        p0.m.store(null_mut(), Ordering::Relaxed);
        p0.status.store(P_IDLE, Ordering::Relaxed);
        acquirep(mp, p0);
        if let (Some(g), false) = (curg, cur.is_null()) {
            super::tracer::go_start(g, p0);
        }
    }
    let mine = p_of(mp);
    // Destroy the Ps beyond nprocs.
    for i in nprocs..old {
        let pp = allp(i);
        destroy_p(s, pp, mine);
    }
    // The world is stopped, so every P is as good as idle: like a P that
    // parks (`gftrim`), each gives its free Gs beyond GFREE_BATCH to the
    // global list, where every P can take them. Otherwise a P that ran
    // alone keeps the Gs of a burst (up to GFREE_MAX) and a P that joins
    // makes new ones, each with a stack to fault in: with `gfpurge` keeping
    // the stacks, the 2-P runs of `bench=forkjoin` still made 8 to 99 new
    // Gs each.
    for i in 0..nprocs {
        gftrim_stopped(s, allp(i));
    }
    GOMAXPROCS.store(nprocs, Ordering::SeqCst);
    //~ lab7 begin procresize: rebuild the idle list from scratch (pidle, idlepmask, npidle) and
    //~ sort the Ps other than ours: a P with no work (empty run queue, no timers) goes idle
    //~ (pidleput_raw), one with work is made P_IDLE and returned with an idle M (mget) or None,
    //~ for startTheWorld to hand out.
    // The idle mask and list are rebuilt from scratch.
    s.pidle = None;
    SCHED.idlepmask.clear_all(Ordering::SeqCst);
    SCHED.npidle.store(0, Ordering::SeqCst);
    let mut runnable = Vec::new();
    for i in (0..nprocs).rev() {
        let pp = allp(i);
        if core::ptr::eq(pp, mine) {
            continue;
        }
        pp.m.store(null_mut(), Ordering::Relaxed);
        if pp.runq.stealer().is_empty() && pp.timers.len() == 0 {
            // The world is stopped and gcwaiting still set: not a P
            // returning to a stop in progress (see pidleput).
            pidleput_raw(s, pp);
        } else {
            pp.status.store(P_IDLE, Ordering::Release);
            let m = mget(s);
            runnable.push((pp, m));
        }
    }
    runnable
    //~ lab7 end
}

/// Go's `(*p).destroy`: move everything off a P that stops existing.
fn destroy_p(s: &mut SchedLocked, pp: &'static P, to: &'static P) {
    //~ lab7 begin destroy: move pp's goroutines (runnext and the ring: runq.local().drain) to the
    //~ head of the global queue in their order, purge its free Gs (gfpurge(s, pp)), move its timers to
    //~ `to`, and mark it P_DEAD.
    // SAFETY: the world is stopped; nobody holds pp.
    let local = unsafe { pp.runq.local() };
    let mut tmp: Vec<NonNull<G>> = Vec::new();
    local.drain(|g| tmp.push(g));
    // Keep their order at the head of the global queue.
    for g in tmp.into_iter().rev() {
        globrunqputhead(s, g);
    }
    gfpurge(s, pp);
    super::time::move_timers(pp, to);
    pp.status.store(P_DEAD, Ordering::Release);
    //~ lab7 end
}

/// The error of [`gomaxprocs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GomaxprocsError {
    pub requested: u32,
    pub ncpu: u32,
}

impl core::fmt::Display for GomaxprocsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GOMAXPROCS({}) is out of range: must be 1..={} (the number of cores)", self.requested, self.ncpu)
    }
}

/// `runtime.GOMAXPROCS(n)`: stop the world, resize, start the world.
/// Returns the previous setting.
pub fn gomaxprocs(n: u32) -> Result<u32, GomaxprocsError> {
    let ncpu = NCPU.load(Ordering::Relaxed);
    if n < 1 || n > ncpu {
        return Err(GomaxprocsError { requested: n, ncpu });
    }
    // worldsema: one stop-the-world at a time. Yield while another runs it
    // (our M must reach the scheduler for that STW to finish).
    while WORLDSEMA.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        gosched();
    }
    let prev = {
        let _pg = PreemptGuard::new();
        let prev = GOMAXPROCS.load(Ordering::Relaxed);
        stop_the_world();
        start_the_world(n);
        super::tracer::procs_change(n, prev);
        prev
    };
    // Release: pairs with the acquire CAS above.
    WORLDSEMA.store(false, Ordering::Release);
    Ok(prev)
}

