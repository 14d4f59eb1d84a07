//! Monotonic time from the TSC, calibrated against the PIT at boot.
//!
//! The emulated CPU sets no invariant-TSC bit, but under QEMU TCG `rdtsc`
//! returns a host-derived counter that is monotonic and shared by all vCPUs,
//! which is what `nanotime` needs. Everything here is emulated time.
use core::sync::atomic::{AtomicU64, Ordering};

/// TSC ticks per millisecond (set once by `calibrate` on the boot core,
/// before any other core reads it: the AP start-up is the release point).
static TSC_PER_MS: AtomicU64 = AtomicU64::new(1_000_000);
/// TSC value at boot: `nanotime()` counts from here.
static TSC_BASE: AtomicU64 = AtomicU64::new(0);
/// ns = (tsc * MULT) >> 32
static MULT: AtomicU64 = AtomicU64::new(1 << 32);

#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measure the TSC against 10 ms of PIT time. Called once on the boot core.
pub fn calibrate() {
    // Two measurements of CAL_MS that agree within 1% (a PIT wrap during a
    // host-side gap makes one of them far off; see pit.rs). Each end of a
    // measurement is bracketed within 40 us, so 5 ms windows are good to
    // better than 1% in the worst case and far better typically; boot time
    // is two windows.
    const CAL_MS: u64 = 5;
    let mut prev = super::pit::measure_tsc(CAL_MS);
    let mut tsc = prev;
    for _ in 0..16 {
        tsc = super::pit::measure_tsc(CAL_MS);
        if tsc.abs_diff(prev) * 100 <= tsc {
            break;
        }
        prev = tsc;
    }
    let per_ms = (tsc / CAL_MS).max(1);
    TSC_PER_MS.store(per_ms, Ordering::Relaxed);
    MULT.store(((1_000_000u128 << 32) / per_ms as u128) as u64, Ordering::Relaxed);
    TSC_BASE.store(rdtsc(), Ordering::Relaxed);
}

/// How far `sample()` (another counter that runs in real time, such as the
/// LAPIC timer) advances in `ms` milliseconds, measured against the TSC
/// (calibrated first). Each end reads the TSC, the counter and the TSC
/// again; a pair split by a host-side gap (the vCPU lost its host CPU) is
/// read again. A gap *between* the ends does not matter: both counters run
/// in real time.
pub fn measure_against_tsc(ms: u64, sample: impl Fn() -> u64) -> u64 {
    let per_ms = tsc_per_ms();
    let tight = (per_ms / 100).max(1); // 10 us
    let pair = || {
        let mut best = (u64::MAX, 0, 0);
        for _ in 0..1000 {
            let a = rdtsc();
            let s = sample();
            let b = rdtsc();
            if b - a < best.0 {
                best = (b - a, a / 2 + b / 2, s);
            }
            if b - a <= tight {
                break;
            }
        }
        (best.1, best.2)
    };
    x86_64::instructions::interrupts::without_interrupts(|| {
        let (t0, s0) = pair();
        while rdtsc() - t0 < ms * per_ms {
            core::hint::spin_loop();
        }
        let (t1, s1) = pair();
        (s1.wrapping_sub(s0) as u128 * (ms * per_ms) as u128 / (t1 - t0).max(1) as u128) as u64
    })
}

pub fn tsc_per_ms() -> u64 {
    TSC_PER_MS.load(Ordering::Relaxed)
}

/// Nanoseconds since boot (emulated time).
#[inline]
pub fn nanotime() -> u64 {
    tsc_to_nanotime(rdtsc())
}

/// The `nanotime()` of an earlier `rdtsc()` reading.
#[inline]
pub fn tsc_to_nanotime(tsc: u64) -> u64 {
    let d = tsc.saturating_sub(TSC_BASE.load(Ordering::Relaxed));
    ((d as u128 * MULT.load(Ordering::Relaxed) as u128) >> 32) as u64
}

/// Convert a TSC difference to microseconds.
pub fn tsc_to_us(d: u64) -> u64 {
    ((d as u128 * 1000) / TSC_PER_MS.load(Ordering::Relaxed) as u128) as u64
}

/// Busy-wait for `us` microseconds (bring-up only: INIT/SIPI delays).
pub fn udelay(us: u64) {
    let end = rdtsc() + us * TSC_PER_MS.load(Ordering::Relaxed) / 1000;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}
