//! The CPU profiler (`profile=HZ`): on every timer tick of a busy core, the
//! interrupted instruction pointer and its frame-pointer call chain go into
//! that core's sample buffer; when `main` returns (or on a fatal error) the
//! samples are written to the debug console, and `gmpos profile FILE`
//! turns them into a pprof `profile.proto` and a flame graph.
//!
//! With `profile=HZ` the LAPIC tick of busy cores runs at HZ instead of
//! `hz=` (sysmon keeps its own period: it measures time, not ticks). Idle
//! cores halt with their tick off, so they are not sampled, as an idle
//! thread is not in a Go CPU profile.
//!
//! Writing: only in the timer interrupt, on the interrupted core, with
//! interrupts off, into that core's buffer: no lock, no allocation. A full
//! buffer counts lost samples. The count `n` is stored (Release) after the
//! sample, and `dump` reads it (Acquire) after clearing [`ON`].
//!
//! Format (little-endian; decoded by `boot/src/trace/profile.rs`):
//! ```text
//! "GMPPRF01" u32 ncpu  u32 hz  u64 0
//! ncpu x { u32 nsamples  u32 0  u64 lost  nsamples x { u32 depth, u32 0, depth x u64 pc } }
//! "GMPPEND!"
//! ```
//! `pc[0]` is the interrupted RIP, the others are return addresses; all are
//! ELF addresses (the load offset subtracted), as `addr2line` wants them.
use crate::arch::x86_64::switch::IrqFrame;
use crate::arch::x86_64::{apic, debugcon, percpu, time};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// The switch the tick hook tests (one load, one predictable branch).
pub static ON: AtomicBool = AtomicBool::new(false);

/// Frames kept per sample (the leaf included).
pub const DEPTH: usize = 32;
/// Words per sample slot: the depth, then up to DEPTH pcs.
const SLOT: usize = DEPTH + 1;
/// Samples kept per core (about 8 s at 1000 Hz of one busy core; 2.1 MiB).
pub const SAMPLES_PER_CPU: u32 = 1 << 13;

struct Buf {
    words: AtomicPtr<u64>,
    /// Samples written; only this core's tick writes it.
    n: AtomicU32,
    lost: AtomicU64,
}
#[allow(clippy::declare_interior_mutable_const)]
const BUF: Buf = Buf { words: AtomicPtr::new(core::ptr::null_mut()), n: AtomicU32::new(0), lost: AtomicU64::new(0) };
static BUFS: [Buf; percpu::MAX_CPUS] = [BUF; percpu::MAX_CPUS];
static NCPU: AtomicU32 = AtomicU32::new(0);
static DUMPED: AtomicBool = AtomicBool::new(false);

/// Allocate the buffers and start sampling (boot, before the scheduler).
pub fn init(ncpu: usize) {
    let hz = crate::boot::params().profile_hz;
    if hz == 0 {
        return;
    }
    for b in BUFS.iter().take(ncpu) {
        let mut v: Vec<u64> = Vec::new();
        v.resize(SAMPLES_PER_CPU as usize * SLOT, 0);
        b.words.store(v.leak().as_mut_ptr(), Ordering::Relaxed);
    }
    NCPU.store(ncpu as u32, Ordering::Relaxed);
    crate::println!("profiler: sampling busy cores at {hz} Hz, up to {SAMPLES_PER_CPU} samples per core");
    // Release: the buffers are visible to every core that sees ON.
    ON.store(true, Ordering::Release);
}

/// The tick rate of busy cores: `profile=` if set, else `hz=`.
pub fn tick_hz(hz: u32) -> u32 {
    match crate::boot::PARAMS.get().map(|p| p.profile_hz) {
        Some(p) if p > 0 => p,
        _ => hz,
    }
}

/// Called from the interrupt dispatcher for every device vector.
#[inline(always)]
pub fn on_irq(vector: u32, frame: *const IrqFrame) {
    if ON.load(Ordering::Relaxed) && vector as u8 == apic::TIMER_VECTOR {
        // SAFETY: the interrupt stub passes the frame it built.
        sample(unsafe { &*frame });
    }
}

#[inline(never)]
fn sample(f: &IrqFrame) {
    let b = &BUFS[percpu::cpu_id()];
    let words = b.words.load(Ordering::Acquire);
    let n = b.n.load(Ordering::Relaxed);
    if words.is_null() || n >= SAMPLES_PER_CPU {
        b.lost.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let off = crate::boot::KERNEL_IMAGE_OFFSET.load(Ordering::Relaxed);
    let mut pcs = [0u64; DEPTH];
    pcs[0] = f.rip.wrapping_sub(off);
    let mut depth = 1;
    // The frame-pointer chain: [rbp] = caller's rbp, [rbp+8] = return
    // address. Every word is checked to be mapped before it is read (stacks
    // are never unmapped), and the chain must go up the stack.
    let mut bp = f.rbp;
    while depth < DEPTH && bp != 0 && bp % 8 == 0 && crate::mem::is_mapped_unlocked(bp) && crate::mem::is_mapped_unlocked(bp + 8) {
        // SAFETY: both words were checked to be mapped.
        let (next, ret) = unsafe { (*(bp as *const u64), *((bp + 8) as *const u64)) };
        if ret < off {
            break;
        }
        pcs[depth] = ret.wrapping_sub(off);
        depth += 1;
        if next <= bp {
            break;
        }
        bp = next;
    }
    // SAFETY: slot `n` lies inside this core's buffer; only this core's
    // tick (interrupts off) writes it.
    unsafe {
        let s = words.add(n as usize * SLOT);
        *s = depth as u64;
        core::ptr::copy_nonoverlapping(pcs.as_ptr(), s.add(1), depth);
    }
    // Release: pairs with the Acquire load in dump.
    b.n.store(n + 1, Ordering::Release);
}

/// Write the samples to the debug console, once (at exit or on a fatal
/// error). No allocation, no lock.
pub fn dump() {
    if !ON.swap(false, Ordering::SeqCst) || DUMPED.swap(true, Ordering::SeqCst) {
        return;
    }
    // A tick that passed the ON check finishes its sample in a few us.
    time::udelay(50);
    let ncpu = NCPU.load(Ordering::Relaxed);
    let hz = crate::boot::params().profile_hz;
    let mut h = [0u8; 24];
    h[0..8].copy_from_slice(b"GMPPRF01");
    h[8..12].copy_from_slice(&ncpu.to_le_bytes());
    h[12..16].copy_from_slice(&hz.to_le_bytes());
    debugcon::write(&h);
    let mut total = 0u64;
    for b in BUFS.iter().take(ncpu as usize) {
        let n = b.n.load(Ordering::Acquire);
        let words = b.words.load(Ordering::Acquire);
        let mut ch = [0u8; 16];
        ch[0..4].copy_from_slice(&n.to_le_bytes());
        ch[8..16].copy_from_slice(&b.lost.load(Ordering::Relaxed).to_le_bytes());
        debugcon::write(&ch);
        for i in 0..n as usize {
            // SAFETY: samples 0..n are complete (Release/Acquire on n).
            let s = unsafe { core::slice::from_raw_parts(words.add(i * SLOT), SLOT) };
            let depth = (s[0] as usize).min(DEPTH);
            debugcon::write(&(depth as u64).to_le_bytes());
            for pc in &s[1..1 + depth] {
                debugcon::write(&pc.to_le_bytes());
            }
        }
        total += n as u64;
    }
    debugcon::write(b"GMPPEND!");
    crate::arch::x86_64::serial::emergency(format_args!("profiler: wrote {total} samples from {ncpu} cores to the debug console\n"));
}
