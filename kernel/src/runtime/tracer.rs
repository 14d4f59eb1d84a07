//! The execution tracer (Go's `runtime/trace`, for this kernel): what the
//! scheduler did, event by event, for `gmpos trace FILE` to turn into a
//! Perfetto timeline, an SVG and a summary. (`trace.rs` is `schedtrace`.)
//!
//! # The protocol
//!
//! *Switching.* `trace=1` (keep the first `tracebuf` events of each core,
//! count the rest as lost) or `trace=flight` (a flight recorder: keep the
//! last `tracebuf` events of each core) makes [`init`] allocate one ring per
//! core and then set [`ON`]. Every hook is `#[inline(always)]` and starts
//! with `if on()` (`ON.load(Relaxed)`): with tracing off that is the whole
//! cost, one load and one predictable branch. The work is out of line, in
//! `emit` or a hook's `*_slow` function: `#[cold]` and in the `rust-cold`
//! calling convention, which preserves the caller's registers, so that a
//! hook does not make its caller save registers on the hot path (it did:
//! `execute` pushed four more, 13 instructions per `gosched`; now 6). The
//! kernel crate's feature `notrace` makes `on()` a constant false, so the
//! hooks compile to nothing: that build is the baseline
//! `bench/tracer_overhead.sh` measures the hooks against.
//!
//! *Writing.* A core writes only its own ring. `emit` first makes the
//! goroutine unmovable (`locks_inc`: asynchronous preemption is refused
//! while `m.locks != 0`) and only then reads its core number, so a record is
//! never written into another core's ring. It takes a slot by incrementing
//! the ring's `pos` (an interrupt on the same core that emits too takes the
//! next slot; no lock, no interrupt masking, no allocation). In a full
//! stream ring the event is only counted (`pos` keeps growing: the lost
//! count is `pos - cap`); in flight mode the slot index wraps and the
//! oldest record is overwritten.
//!
//! *Reading* happens once, in [`dump`], when `main` returns or on a fatal
//! error or panic, while other cores may still be running: [`ON`] is
//! cleared first, so only writers already past the check can still write.
//! Each slot carries a sequence word (a seqlock): the writer stores
//! `u32::MAX` in it, then the payload, then the slot's index. The reader
//! takes a slot only if it reads the expected index before and after
//! copying the payload; a slot being written (or overwritten by a flight
//! ring wrapping) is skipped and counted as lost. x86 keeps stores in
//! program order and loads in program order, so compiler fences around the
//! payload are the only barriers needed.
//!
//! *Transport.* The dump goes to QEMU's `isa-debugcon` port (binary-safe;
//! `arch::x86_64::debugcon`), which the runner's `--trace FILE` connects to
//! the file. The format is described at [`dump`] and decoded by
//! `boot/src/trace/format.rs`.
use super::proc::{self, GOMAXPROCS};
use super::runtime2::{G, M, P};
use crate::arch::x86_64::{debugcon, percpu, time};
use alloc::vec::Vec;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// The switch every hook tests. Set once by [`init`]; cleared by [`dump`].
/// Relaxed: a hook that misses the first events after `init` only records
/// less; the rings are published to other cores before `ON` by the
/// Release store in `init` (read with Relaxed + the address dependency of
/// `RINGS[cpu]`, which is loaded Acquire in `emit`).
pub static ON: AtomicBool = AtomicBool::new(false);

/// Event kinds (the `kind` byte of a record). The host decoder
/// (`boot/src/trace/format.rs`) has the same numbers.
pub mod ev {
    /// g = parent goid, a = new goid, b = packed name (see `pack_name`).
    pub const GO_CREATE: u8 = 1;
    /// g = goid, a = local runq len | global runq len << 16, b = name.
    pub const GO_START: u8 = 2;
    /// g = goid, a = 0 yield (Gosched), 1 preempted, 2 syscall exit without a P.
    pub const GO_STOP: u8 = 3;
    /// g = goid, a = wait reason (`WaitReason as u8`).
    pub const GO_BLOCK: u8 = 4;
    /// g = waker goid (0 on g0: timers), a = woken goid.
    pub const GO_UNBLOCK: u8 = 5;
    /// g = goid.
    pub const GO_EXIT: u8 = 6;
    /// a = victim P, b = Gs taken (including the one run now).
    pub const RUNQ_STEAL: u8 = 7;
    pub const M_SPIN_START: u8 = 8;
    pub const M_SPIN_STOP: u8 = 9;
    /// The core parks (halts) in `mpark`.
    pub const M_PARK: u8 = 10;
    /// The core leaves `mpark`; a = 1 if it was woken to spin.
    pub const M_WAKE: u8 = 11;
    /// a = destination APIC id, b = vector.
    pub const IPI_SEND: u8 = 12;
    /// a = vector.
    pub const IPI_RECV: u8 = 13;
    /// a = timers fired in this batch.
    pub const TIMER_FIRE: u8 = 14;
    /// g = goid; p = the P it leaves.
    pub const SYSCALL_ENTER: u8 = 15;
    /// g = goid; p = the P it runs on again.
    pub const SYSCALL_EXIT: u8 = 16;
    /// a = the P handed off.
    pub const P_HANDOFF: u8 = 17;
    /// a = new GOMAXPROCS, b = old.
    pub const PROCS_CHANGE: u8 = 18;
    pub const STW_BEGIN: u8 = 19;
    pub const STW_END: u8 = 20;
    /// a = P id (acquirep).
    pub const PROC_START: u8 = 21;
    /// a = P id (releasep).
    pub const PROC_STOP: u8 = 22;
}

/// One record: 32 bytes, little-endian, as the host reads it.
#[repr(C)]
struct Slot {
    /// The index of the event in its core's stream, or `u32::MAX` while
    /// being written (the seqlock word; see the module comment).
    seq: AtomicU32,
    kind: u8,
    cpu: u8,
    /// The P of the emitting core (`0xffff`: none).
    p: u16,
    ts: u64,
    g: u32,
    a: u32,
    b: u64,
}
const _: () = assert!(core::mem::size_of::<Slot>() == 32);
pub const REC_SIZE: usize = 32;

struct Ring {
    slots: AtomicPtr<Slot>,
    /// Capacity, a power of two.
    cap: AtomicU32,
    /// Events emitted so far (slots taken). Only this ring's core writes
    /// it; `fetch_add` is one instruction, so an interrupt that emits on
    /// the same core cannot tear it. Read by `dump` on another core after
    /// `ON` is cleared.
    pos: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const RING: Ring = Ring { slots: AtomicPtr::new(core::ptr::null_mut()), cap: AtomicU32::new(0), pos: AtomicU64::new(0) };
static RINGS: [Ring; percpu::MAX_CPUS] = [RING; percpu::MAX_CPUS];
static FLIGHT: AtomicBool = AtomicBool::new(false);
static NCPU: AtomicU32 = AtomicU32::new(0);
/// Set by the first `dump`: a trace is written once.
static DUMPED: AtomicBool = AtomicBool::new(false);

/// `trace=` modes (boot parameter).
pub const MODE_OFF: u8 = 0;
pub const MODE_STREAM: u8 = 1;
pub const MODE_FLIGHT: u8 = 2;

/// Allocate the rings and switch tracing on (boot, before the scheduler
/// starts, so goroutine 1's creation is in the trace).
pub fn init(ncpu: usize) {
    let p = crate::boot::params();
    if p.trace == MODE_OFF {
        return;
    }
    if cfg!(feature = "notrace") {
        crate::println!("tracer: compiled out (kernel built with --features notrace): trace= records nothing");
        return;
    }
    let cap = p.tracebuf.next_power_of_two();
    for ring in RINGS.iter().take(ncpu) {
        let mut v: Vec<Slot> = Vec::with_capacity(cap as usize);
        for _ in 0..cap {
            v.push(Slot { seq: AtomicU32::new(u32::MAX), kind: 0, cpu: 0, p: 0, ts: 0, g: 0, a: 0, b: 0 });
        }
        ring.slots.store(v.leak().as_mut_ptr(), Ordering::Relaxed);
        ring.cap.store(cap, Ordering::Relaxed);
    }
    NCPU.store(ncpu as u32, Ordering::Relaxed);
    FLIGHT.store(p.trace == MODE_FLIGHT, Ordering::Relaxed);
    crate::println!(
        "tracer: {} mode, {} events per core ({} KiB each)",
        if p.trace == MODE_FLIGHT { "flight-recorder" } else { "stream" },
        cap,
        cap as usize * REC_SIZE / 1024
    );
    // Release: the rings above are visible to any core that sees ON.
    ON.store(true, Ordering::Release);
}

/// Whether hooks record: [`ON`], or never with the `notrace` feature.
#[inline(always)]
fn on() -> bool {
    !cfg!(feature = "notrace") && ON.load(Ordering::Relaxed)
}

/// The P held by this core's M, or 0xffff.
#[inline(always)]
fn cur_p() -> u16 {
    let m = percpu::this().m.load(Ordering::Relaxed) as *const M;
    // SAFETY: the per-CPU M pointer is null or a never-freed M; its `p` is
    // written only by this core.
    match unsafe { m.as_ref() } {
        Some(m) => {
            let p = m.p.load(Ordering::Relaxed);
            // SAFETY: Ps are never freed.
            unsafe { p.as_ref() }.map(|p| p.id as u16).unwrap_or(0xffff)
        }
        None => 0xffff,
    }
}

/// Write one record into this core's ring. See the module comment.
#[cold]
#[inline(never)]
extern "rust-cold" fn emit(kind: u8, p: Option<u16>, g: u64, a: u32, b: u64) {
    // No migration from here to locks_dec (see the module comment).
    percpu::locks_inc();
    let cpu = percpu::cpu_id();
    let ring = &RINGS[cpu];
    let slots = ring.slots.load(Ordering::Acquire);
    if !slots.is_null() {
        let cap = ring.cap.load(Ordering::Relaxed) as u64;
        let idx = ring.pos.fetch_add(1, Ordering::Relaxed);
        if idx < cap || FLIGHT.load(Ordering::Relaxed) {
            let ts = time::rdtsc();
            let p = p.unwrap_or_else(cur_p);
            // SAFETY: `idx & (cap-1)` is inside the ring; only this core
            // writes this slot (the index was taken atomically on this
            // core); the reader validates it with `seq`.
            unsafe {
                let s = slots.add((idx & (cap - 1)) as usize);
                (*s).seq.store(u32::MAX, Ordering::Relaxed);
                compiler_fence(Ordering::Release);
                core::ptr::write_volatile(&mut (*s).kind, kind);
                core::ptr::write_volatile(&mut (*s).cpu, cpu as u8);
                core::ptr::write_volatile(&mut (*s).p, p);
                core::ptr::write_volatile(&mut (*s).ts, ts);
                core::ptr::write_volatile(&mut (*s).g, g as u32);
                core::ptr::write_volatile(&mut (*s).a, a);
                core::ptr::write_volatile(&mut (*s).b, b);
                compiler_fence(Ordering::Release);
                (*s).seq.store(idx as u32, Ordering::Relaxed);
            }
        }
    }
    percpu::locks_dec();
}

/// A goroutine's name (its entry closure's type) as one word: the string's
/// address in the low 48 bits (kernel addresses are sign-extended from bit
/// 47) and its length in the high 16. `dump` writes the strings themselves.
fn pack_name(g: &G) -> u64 {
    // SAFETY: startfn is written by newproc1 before the G is published and
    // is a &'static str.
    let s = unsafe { g.startfn.get() };
    (s.as_ptr() as u64 & 0xffff_ffff_ffff) | ((s.len().min(0xffff) as u64) << 48)
}

// ---------------------------------------------------------------------------
// The hooks: one line each in proc.rs and friends.

#[inline(always)]
pub fn go_create(parent: u64, g: &G) {
    if on() {
        go_create_slow(parent, g);
    }
}

#[cold]
#[inline(never)]
extern "rust-cold" fn go_create_slow(parent: u64, g: &G) {
    emit(ev::GO_CREATE, None, parent, g.id() as u32, pack_name(g));
}

#[inline(always)]
pub fn go_start(g: &G, pp: &P) {
    if on() {
        go_start_slow(g, pp);
    }
}

// The hooks that compute their record's fields call one of these cold
// functions, so that the computing stays out of the caller too (see
// `emit`).
#[cold]
#[inline(never)]
extern "rust-cold" fn go_start_slow(g: &G, pp: &P) {
    let local = pp.runq.stealer().len().min(0xffff);
    let global = proc::global_runq_len().min(0xffff);
    emit(ev::GO_START, Some(pp.id as u16), g.id(), local | (global << 16), pack_name(g));
}

/// `Gosched` (`preempted = false`) or a preemption.
#[inline(always)]
pub fn go_stop(g: &G, preempted: bool) {
    if on() {
        emit(ev::GO_STOP, None, g.id(), preempted as u32, 0);
    }
}

/// `exitsyscall` found no P: the goroutine waits in the global queue.
#[inline(always)]
pub fn go_stop_syscall(g: &G) {
    if on() {
        emit(ev::GO_STOP, None, g.id(), 2, 0);
    }
}

#[inline(always)]
pub fn go_block(g: &G) {
    if on() {
        go_block_slow(g);
    }
}

#[cold]
#[inline(never)]
extern "rust-cold" fn go_block_slow(g: &G) {
    // SAFETY: the G's owner (this M, in park_m) set it in gopark.
    let reason = unsafe { g.waitreason.get() } as u32;
    emit(ev::GO_BLOCK, None, g.id(), reason, 0);
}

/// `g` is made runnable by the goroutine running here (or by g0).
#[inline(always)]
pub fn go_unblock(g: &G) {
    if on() {
        go_unblock_slow(g);
    }
}

#[cold]
#[inline(never)]
extern "rust-cold" fn go_unblock_slow(g: &G) {
    let cur = percpu::curg_raw() as *const G;
    // SAFETY: curg is null or a live G.
    let waker = unsafe { cur.as_ref() }.map(|w| w.id()).unwrap_or(0);
    emit(ev::GO_UNBLOCK, None, waker, g.id() as u32, 0);
}

#[inline(always)]
pub fn go_exit(g: &G) {
    if on() {
        emit(ev::GO_EXIT, None, g.id(), 0, 0);
    }
}

/// A steal from `victim` succeeded; `got` = Gs now in our queue (the one
/// to run is counted on top).
#[inline(always)]
pub fn runq_steal(victim: &P, got: u32) {
    if on() {
        emit(ev::RUNQ_STEAL, None, 0, victim.id, got as u64 + 1);
    }
}

#[inline(always)]
pub fn spin_start() {
    if on() {
        emit(ev::M_SPIN_START, None, 0, 0, 0);
    }
}

#[inline(always)]
pub fn spin_stop() {
    if on() {
        emit(ev::M_SPIN_STOP, None, 0, 0, 0);
    }
}

/// `let _t = park_scope(mp);` at the top of `mpark`: `M_PARK` now,
/// `M_WAKE` when `mpark` returns (on any path).
#[inline(always)]
pub fn park_scope(mp: &M) -> ParkScope<'_> {
    if on() {
        emit(ev::M_PARK, None, 0, 0, 0);
    }
    ParkScope(mp)
}

pub struct ParkScope<'a>(&'a M);
impl Drop for ParkScope<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if on() {
            emit(ev::M_WAKE, None, 0, self.0.spinning.load(Ordering::Relaxed) as u32, 0);
        }
    }
}

#[inline(always)]
pub fn ipi_send(apic_id: u32, vector: u8) {
    if on() {
        emit(ev::IPI_SEND, None, 0, apic_id, vector as u64);
    }
}

#[inline(always)]
pub fn ipi_recv(vector: u8) {
    if on() {
        emit(ev::IPI_RECV, None, 0, vector as u32, 0);
    }
}

#[inline(always)]
pub fn timer_fire(n: usize) {
    if on() && n > 0 {
        emit(ev::TIMER_FIRE, None, 0, n as u32, 0);
    }
}

#[inline(always)]
pub fn syscall_enter(g: &G, pp: &P) {
    if on() {
        emit(ev::SYSCALL_ENTER, Some(pp.id as u16), g.id(), 0, 0);
    }
}

/// After the goroutine has its (old or new) P again.
#[inline(always)]
pub fn syscall_exit(g: &G) {
    if on() {
        emit(ev::SYSCALL_EXIT, None, g.id(), 0, 0);
    }
}

#[inline(always)]
pub fn p_handoff(pp: &P) {
    if on() {
        emit(ev::P_HANDOFF, None, 0, pp.id, 0);
    }
}

#[inline(always)]
pub fn procs_change(new: u32, old: u32) {
    if on() {
        emit(ev::PROCS_CHANGE, None, 0, new, old as u64);
    }
}

#[inline(always)]
pub fn stw_begin() {
    if on() {
        emit(ev::STW_BEGIN, None, 0, 0, 0);
    }
}

#[inline(always)]
pub fn stw_end() {
    if on() {
        emit(ev::STW_END, None, 0, 0, 0);
    }
}

#[inline(always)]
pub fn proc_start(pp: &P) {
    if on() {
        emit(ev::PROC_START, Some(pp.id as u16), 0, pp.id, 0);
    }
}

#[inline(always)]
pub fn proc_stop(pp: &P) {
    if on() {
        emit(ev::PROC_STOP, Some(pp.id as u16), 0, pp.id, 0);
    }
}

// ---------------------------------------------------------------------------
// The dump

/// Why the trace was written (header field).
pub const END_EXIT: u32 = 0;
pub const END_FATAL: u32 = 1;

/// Write the trace to the debug console, once: when `main` returns
/// (`END_EXIT`) or on a fatal error/panic (`END_FATAL`, after the report).
/// No allocation (it may run after an out-of-memory report) and no lock.
///
/// Format (little-endian; decoded by `boot/src/trace/format.rs`):
/// ```text
/// "GMPTRC01"  u32 version=1  u32 ncpu  u64 tsc_per_ms  u32 mode(1 stream, 2 flight)
/// u32 cap  u32 end(0 exit, 1 fatal)  u32 gomaxprocs  u32 rec_size=32  u32 0
/// ncpu x { u32 cpu  u32 apic_id  u32 nrec  u32 0  u64 lost  nrec x 32-byte record }
/// u32 nreasons   nreasons x { u8 len, bytes }        (wait reason names by number)
/// u32 nnames     nnames x { u64 packed, u16 len, bytes }   (goroutine names)
/// "GMPTEND!"
/// ```
/// A record: `u32 seq, u8 kind, u8 cpu, u16 p, u64 tsc, u32 g, u32 a, u64 b`.
pub fn dump(end: u32) {
    if !ON.swap(false, Ordering::SeqCst) || DUMPED.swap(true, Ordering::SeqCst) {
        return;
    }
    // Writers that passed the ON check just before finish within a few
    // hundred instructions; those that did not are caught by `seq`.
    time::udelay(20);
    let ncpu = NCPU.load(Ordering::Relaxed);
    let flight = FLIGHT.load(Ordering::Relaxed);
    let cap = RINGS[0].cap.load(Ordering::Relaxed);
    let mut h = [0u8; 48];
    h[0..8].copy_from_slice(b"GMPTRC01");
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..16].copy_from_slice(&ncpu.to_le_bytes());
    h[16..24].copy_from_slice(&time::tsc_per_ms().to_le_bytes());
    h[24..28].copy_from_slice(&(if flight { MODE_FLIGHT } else { MODE_STREAM } as u32).to_le_bytes());
    h[28..32].copy_from_slice(&cap.to_le_bytes());
    h[32..36].copy_from_slice(&end.to_le_bytes());
    h[36..40].copy_from_slice(&GOMAXPROCS.load(Ordering::Relaxed).to_le_bytes());
    h[40..44].copy_from_slice(&(REC_SIZE as u32).to_le_bytes());
    debugcon::write(&h);

    let mut names = Names { keys: [0; MAX_NAMES], n: 0 };
    let mut total = 0u64;
    let mut total_lost = 0u64;
    for cpu in 0..ncpu as usize {
        let ring = &RINGS[cpu];
        let slots = ring.slots.load(Ordering::Acquire);
        let pos = ring.pos.load(Ordering::Acquire);
        let capu = cap as u64;
        let (first, last) = if flight { (pos.saturating_sub(capu), pos) } else { (0, pos.min(capu)) };
        // Pass 1: count the valid records (the count goes first).
        let mut valid = 0u32;
        let mut buf = [0u8; REC_SIZE];
        for idx in first..last {
            // SAFETY: idx & (cap-1) is inside the ring.
            if unsafe { read_slot(slots, cap, idx, &mut buf) } {
                valid += 1;
            }
        }
        let lost = (pos - first) - valid as u64;
        let mut ch = [0u8; 24];
        ch[0..4].copy_from_slice(&(cpu as u32).to_le_bytes());
        ch[4..8].copy_from_slice(&crate::boot::apic_id(cpu).to_le_bytes());
        ch[8..12].copy_from_slice(&valid.to_le_bytes());
        ch[16..24].copy_from_slice(&lost.to_le_bytes());
        debugcon::write(&ch);
        // Pass 2: write them. A slot that went bad between the passes (a
        // late writer wrapping a flight ring) is written as a record of
        // kind 0, which the host skips and counts as lost.
        let mut written = 0u32;
        for idx in first..last {
            if written == valid {
                break;
            }
            // SAFETY: as above.
            if !unsafe { read_slot(slots, cap, idx, &mut buf) } {
                continue;
            }
            if buf[4] == ev::GO_CREATE || buf[4] == ev::GO_START {
                names.add(u64::from_le_bytes(buf[24..32].try_into().unwrap()));
            }
            debugcon::write(&buf);
            written += 1;
        }
        while written < valid {
            debugcon::write(&[0u8; REC_SIZE]);
            written += 1;
        }
        total += valid as u64;
        total_lost += lost;
    }

    let reasons = wait_reasons();
    debugcon::write(&(reasons.len() as u32).to_le_bytes());
    for r in reasons.iter() {
        debugcon::write(&[r.len() as u8]);
        debugcon::write(r.as_bytes());
    }
    debugcon::write(&(names.n as u32).to_le_bytes());
    for &k in &names.keys[..names.n] {
        let len = (k >> 48) as usize;
        let addr = (k & 0xffff_ffff_ffff) | 0xffff_0000_0000_0000;
        debugcon::write(&k.to_le_bytes());
        debugcon::write(&(len as u16).to_le_bytes());
        // SAFETY: the key was packed from a `&'static str` (pack_name); the
        // kernel lives in the upper half, so bits 48..64 are all ones.
        let s = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
        debugcon::write(s);
    }
    debugcon::write(b"GMPTEND!");
    crate::arch::x86_64::serial::emergency(format_args!(
        "tracer: wrote {total} events ({total_lost} lost) from {ncpu} cores to the debug console\n"
    ));
}

/// Copy slot `idx` into `out` if it holds event `idx` (see the seqlock in
/// the module comment).
///
/// # Safety
/// `slots` is a ring of `cap` slots.
unsafe fn read_slot(slots: *mut Slot, cap: u32, idx: u64, out: &mut [u8; REC_SIZE]) -> bool {
    // SAFETY: the slot is inside the ring (caller); the payload may be
    // torn by a late writer, which the second `seq` check catches, and
    // every field is plain data (any bit pattern is valid).
    unsafe {
        let s = slots.add((idx & (cap as u64 - 1)) as usize);
        if (*s).seq.load(Ordering::Relaxed) != idx as u32 {
            return false;
        }
        compiler_fence(Ordering::Acquire);
        let kind = core::ptr::read_volatile(&(*s).kind);
        let cpu = core::ptr::read_volatile(&(*s).cpu);
        let p = core::ptr::read_volatile(&(*s).p);
        let ts = core::ptr::read_volatile(&(*s).ts);
        let g = core::ptr::read_volatile(&(*s).g);
        let a = core::ptr::read_volatile(&(*s).a);
        let b = core::ptr::read_volatile(&(*s).b);
        compiler_fence(Ordering::Acquire);
        if (*s).seq.load(Ordering::Relaxed) != idx as u32 {
            return false;
        }
        out[0..4].copy_from_slice(&(idx as u32).to_le_bytes());
        out[4] = kind;
        out[5] = cpu;
        out[6..8].copy_from_slice(&p.to_le_bytes());
        out[8..16].copy_from_slice(&ts.to_le_bytes());
        out[16..20].copy_from_slice(&g.to_le_bytes());
        out[20..24].copy_from_slice(&a.to_le_bytes());
        out[24..32].copy_from_slice(&b.to_le_bytes());
    }
    true
}

const MAX_NAMES: usize = 512;
/// The distinct goroutine names seen in the records (no allocation).
struct Names {
    keys: [u64; MAX_NAMES],
    n: usize,
}
impl Names {
    fn add(&mut self, k: u64) {
        if k == 0 || self.keys[..self.n].contains(&k) || self.n == MAX_NAMES {
            return;
        }
        self.keys[self.n] = k;
        self.n += 1;
    }
}

/// Wait reason names by number (`WaitReason as u8`), written into the
/// trace so that the host needs no copy of the list.
const _: () = assert!(super::runtime2::WaitReason::Park as usize == 14);
fn wait_reasons() -> [&'static str; 15] {
    use super::runtime2::WaitReason as W;
    [
        W::Zero, W::ChanReceive, W::ChanSend, W::ChanReceiveNilChan, W::ChanSendNilChan, W::Select, W::SelectNoCases,
        W::Sleep, W::SyncMutexLock, W::Semacquire, W::SyncWaitGroupWait, W::SyncOnce, W::Preempted, W::StopTheWorld,
        W::Park,
    ]
    .map(|w| {
        debug_assert!(w as usize <= 14);
        w.as_str()
    })
}
