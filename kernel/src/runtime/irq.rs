//! What the device vectors do: the timer tick (sysmon, schedtrace, the
//! timer-rate test), the wake-up IPI, the preemption IPI.
//!
//! ## Ticks and idle cores
//!
//! A core that holds a P runs its LAPIC timer periodically at `hz=` (1000 by
//! default). Any core's tick may do sysmon's work; the first tick at least
//! half a period after the last round claims the next with a CAS on
//! `SYSMON_LAST` (see `on_timer`), so one core does each round, whichever
//! cores are awake. A core that parks stops
//! its periodic timer and, if the P it released has a timer pending, arms a
//! one-shot for that deadline; with nothing due it halts with no timer at
//! all (Go's sysmon also stops when every P is idle). `schedtrace=` keeps
//! the boot core ticking so the trace continues while idle.
use crate::arch::x86_64::{apic, percpu, time};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

/// Keep every core ticking even when idle (the timer-rate test).
pub static ALWAYS_TICK: AtomicBool = AtomicBool::new(false);
/// When sysmon last ran (ns).
static SYSMON_LAST: AtomicU64 = AtomicU64::new(0);
/// sysmon rounds run since boot (statistics: `bench=preempt_latency` reports their rate).
pub static SYSMON_ROUNDS: AtomicU64 = AtomicU64::new(0);
/// When schedtrace last printed (ns).
static TRACE_LAST: AtomicU64 = AtomicU64::new(0);
/// A test hook run on every wake-up IPI (the IPI ping-pong test).
pub static WAKE_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

fn hz() -> u32 {
    crate::boot::PARAMS.get().map(|p| p.hz).unwrap_or(1000)
}

/// Start this core's periodic tick.
pub fn start_ticks() {
    apic::timer_periodic(super::profiler::tick_hz(hz()));
}

// ## Timer advance
//
// A parked core with a timer due halts with a one-shot LAPIC timer armed for the deadline.
// The wake-up comes late: under TCG the one-shot is a host timer, and the halted vCPU is a
// host thread that must be woken. A parked core resumed about 150 us after its one-shot's time
// (the advance learnt below settles at 136 to 175 us), and a 1 ms sleep ended about 200 us late
// (`bench=timer_latency`). As KVM does for its guests (`lapic_timer_advance_ns`, adaptive),
// the one-shot is armed `TIMER_ADVANCE_NS` early and the core, once awake, polls the clock
// and its note until the deadline (`notesleep_halt`); it also polls instead of halting when
// the deadline is nearer than the advance. The advance follows the wake-ups' measured
// lateness (`gmp_core::timeradvance`: an average with weight 1/8, capped at 200 us): on hardware,
// where a LAPIC timer is late by a microsecond, it stays near zero. The cost is a core that
// polls for up to the advance before each timer it wakes for.

/// How early a parked core arms its one-shot timer (ns); all cores share it (the lateness is
/// the host's, not the core's). Relaxed: a heuristic; a lost update only delays adaptation.
static TIMER_ADVANCE_NS: AtomicU64 = AtomicU64::new(0);

/// The current timer advance (ns).
pub fn timer_advance() -> u64 {
    TIMER_ADVANCE_NS.load(Ordering::Relaxed)
}

/// About to halt in notesleep (interrupts are off).
pub fn before_halt() {
    let me = percpu::this();
    if ALWAYS_TICK.load(Ordering::Relaxed) || (percpu::cpu_id() == 0 && crate::boot::params().schedtrace_ms > 0) {
        return; // keep ticking
    }
    let d = me.wake_deadline.load(Ordering::Relaxed);
    if d != 0 {
        let now = time::nanotime();
        let fire = d.saturating_sub(timer_advance()).max(now + 1000);
        me.oneshot_at.store(fire, Ordering::Relaxed);
        apic::timer_oneshot(fire - now);
    } else {
        apic::timer_stop();
    }
}

/// Woke from halt.
pub fn after_halt() {
    let me = percpu::this();
    let fire = me.oneshot_at.swap(0, Ordering::Relaxed);
    if fire != 0 {
        let now = time::nanotime();
        // Woken at or after the one-shot's time: most likely by it (an IPI that came between
        // the timer's time and its late delivery makes the sample smaller, not larger).
        if now >= fire {
            TIMER_ADVANCE_NS.store(gmp_core::timeradvance::next(timer_advance(), now - fire), Ordering::Relaxed);
        }
    }
    start_ticks();
}

pub fn on_timer() {
    let me = percpu::this();
    let tsc = time::rdtsc();
    if me.ticks.fetch_add(1, Ordering::Relaxed) == 0 {
        me.first_tick_tsc.store(tsc, Ordering::Relaxed);
    }
    me.last_tick_tsc.store(tsc, Ordering::Relaxed);
    if !crate::runtime::proc::scheduler_started() {
        return;
    }
    let now = time::nanotime();
    let period = 1_000_000_000 / hz() as u64;
    let last = SYSMON_LAST.load(Ordering::Relaxed);
    // The first tick at least half a period after the last round claims the next one. Not a
    // whole period: the LAPIC timer and the TSC clock are calibrated separately, and under TCG
    // a tick comes up to a few hundred microseconds early or late, so with `>= last + period`
    // many ticks measured just under a period and missed, and sysmon ran at 578 rounds/s at
    // hz=1000 (`bench=preempt_latency` reports `sysmon_rate`), which doubled the time past the
    // slice before a hog was preempted. With one core ticking, every tick now runs sysmon;
    // with several, at most two rounds a period do (Go's sysmon runs every 20 us when busy).
    if now >= last + period / 2 && SYSMON_LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        sysmon(now);
    }
}

/// One round of sysmon (Go's `sysmon` loop body): retake, schedtrace.
fn sysmon(now: u64) {
    SYSMON_ROUNDS.fetch_add(1, Ordering::Relaxed);
    super::preempt::retake(now);
    let st = crate::boot::params().schedtrace_ms as u64;
    if st > 0 {
        let last = TRACE_LAST.load(Ordering::Relaxed);
        if now >= last + st * 1_000_000
            && TRACE_LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            super::trace::schedtrace(crate::boot::params().scheddetail);
            // Count the period from the end of the print: a detailed trace of
            // many goroutines through the emulated UART can take longer than
            // a short period, and must not leave the core no time for work.
            TRACE_LAST.store(time::nanotime(), Ordering::Relaxed);
        }
    }
}

pub fn on_wake() {
    super::tracer::ipi_recv(crate::arch::x86_64::apic::WAKE_VECTOR);
    percpu::this().ipis.fetch_add(1, Ordering::Relaxed);
    let hook = WAKE_HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: WAKE_HOOK only ever holds an `fn()` (set_wake_hook).
        let f: fn() = unsafe { core::mem::transmute::<*mut (), fn()>(hook) };
        f();
    }
}

/// Install a function to run on every wake-up IPI (tests).
pub fn set_wake_hook(f: Option<fn()>) {
    WAKE_HOOK.store(f.map(|f| f as *mut ()).unwrap_or(core::ptr::null_mut()), Ordering::Release);
}

pub fn on_preempt() {
    super::tracer::ipi_recv(crate::arch::x86_64::apic::PREEMPT_VECTOR);
    percpu::this().ipis.fetch_add(1, Ordering::Relaxed);
}
