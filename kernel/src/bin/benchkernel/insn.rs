//! What single instructions cost under the emulator (`bench=insn`).
//!
//! On hardware a `lock cmpxchg` costs about 20 cycles and a register `add`
//! under one; under QEMU's TCG the ratios are different, and some
//! instructions the scheduler uses on every switch (`pushf`/`popf`, `cli`,
//! `rdtsc`, port and APIC accesses) cost far more than hardware intuition
//! says. Each figure here is the guest time of one instruction (or pair), in ps,
//! from a loop that repeats it 8 times per iteration, minus the same loop
//! with nothing in it; `insn_<name>_ratio` divides by a plain load from
//! memory (`mov_load`).
//! Best of three runs. `bench/README.md` keeps a table of them.
use crate::report;
use crate::sched::best_of_3;
use core::arch::asm;
use core::sync::atomic::AtomicU64;

pub const BENCHES: &[crate::Bench] = &[("insn", insn)];

/// A word for the memory operands (never read for its value).
static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// The loop iterations per measurement (8 instructions each).
const ITERS: u64 = 50_000;

/// One function per instruction: `ITERS` iterations of 8 copies of `$body`
/// and a `dec`/`jnz`. Every loop declares the same clobbers (rax, rcx, rdx
/// and the flags), so they differ only in the body and its operands.
macro_rules! insn_loop {
    ($name:ident, $body:literal $(, $op:ident = $val:expr)*) => {
        #[inline(never)]
        fn $name() -> u64 {
            let t0 = kernel::nanotime();
            // SAFETY: the bodies touch only the clobbered registers, the
            // stack (balanced) and SCRATCH, and leave the interrupt flag as
            // they found it (interrupts are enabled in a goroutine).
            unsafe {
                asm!(
                    "2:",
                    ".rept 8",
                    $body,
                    ".endr",
                    "dec {n}",
                    "jnz 2b",
                    n = inout(reg) ITERS => _,
                    $($op = in(reg) $val,)*
                    out("rax") _, out("rcx") _, out("rdx") _,
                );
            }
            kernel::nanotime() - t0
        }
    };
}

/// The target of the `call` measurement: returns at once.
#[unsafe(naked)]
extern "C" fn ret_only() {
    core::arch::naked_asm!("ret");
}

insn_loop!(empty, "");
insn_loop!(add, "add rax, 1");
insn_loop!(mov_load, "mov rax, [{p}]", p = SCRATCH.as_ptr());
insn_loop!(mov_store, "mov [{p}], rax", p = SCRATCH.as_ptr());
insn_loop!(gs_load, "mov rax, gs:[0]");
insn_loop!(lock_xadd, "lock xadd [{p}], rax", p = SCRATCH.as_ptr());
insn_loop!(xchg, "xchg [{p}], rax", p = SCRATCH.as_ptr());
insn_loop!(lock_cmpxchg, "lock cmpxchg [{p}], rcx", p = SCRATCH.as_ptr());
insn_loop!(mfence, "mfence");
insn_loop!(pause, "pause");
insn_loop!(rdtsc, "rdtsc");
insn_loop!(jmp_next, "jmp 3f\n3:");
insn_loop!(call_ret, "call {f}", f = ret_only as extern "C" fn() as usize);
insn_loop!(pushf_popf, "pushfq\npopfq");
insn_loop!(cli_sti, "cli\nsti");
// The halves of the two pairs, for what each costs on its own: `pushf`
// with the `pop` that balances the stack (a plain load), and `sti` with
// interrupts already on (TCG still ends the block after it). `popf` is the
// pair less `pushf`.
insn_loop!(pushf_pop, "pushfq\npop rax");
insn_loop!(sti_only, "sti");
/// `cli` alone: the loop runs with interrupts off and turns them back on
/// once at the end (one `sti` per 400 000 `cli`s: below the noise).
#[inline(never)]
fn cli_only() -> u64 {
    let t0 = kernel::nanotime();
    // SAFETY: only the declared registers; interrupts are back on (as they
    // were: a goroutine runs with them on) when the block ends.
    unsafe {
        asm!(
            "2:",
            ".rept 8",
            "cli",
            ".endr",
            "dec {n}",
            "jnz 2b",
            "sti",
            n = inout(reg) ITERS => _,
            out("rax") _, out("rcx") _, out("rdx") _,
        );
    }
    kernel::nanotime() - t0
}
insn_loop!(port_out, "out 0x80, al");

/// Two indirect jumps per iteration, to targets `A` (offset 0 of a page) and
/// `B`, and one back to the loop: three look-ups in the vCPU's jump cache.
/// With `collide`, `B` sits at offset 0x41, whose entry is `A`'s (QEMU's
/// softmmu hash keeps a page's blocks in 64 entries, indexed by
/// `(pc ^ pc >> 6) & 63`: 0x41 gives 1 ^ 1 = 0, as offset 0 does), so each
/// look-up of one evicts the other and both miss every time; otherwise `B`
/// is at 0x80 (entry 2) and all three hit. Returns guest ns for `ITERS`.
#[inline(never)]
fn jump_pair(collide: bool) -> u64 {
    let t0 = kernel::nanotime();
    // SAFETY: jumps only between the labels of this block, which ends
    // where it started; touches only the declared registers.
    unsafe {
        asm!(
            "lea rax, [rip + 20f]",
            "lea rcx, [rip + 21f]",
            "lea rdx, [rip + 22f]",
            "test {c}, {c}",
            "cmovz rcx, rdx",
            "lea rdx, [rip + 3f]",
            "2:",
            "jmp rax",
            "3:",
            "dec {n}",
            "jnz 2b",
            "jmp 4f",
            ".balign 4096",
            "20:",
            "jmp rcx",
            ".balign 64",
            "nop",
            "21:",
            "jmp rdx",
            ".balign 64",
            "22:",
            "jmp rdx",
            "4:",
            n = inout(reg) ITERS => _,
            c = in(reg) collide as u64,
            out("rax") _, out("rcx") _, out("rdx") _,
        );
    }
    kernel::nanotime() - t0
}

/// The LAPIC's ID register read through `apic::id()` (a memory-mapped
/// read), less a call of an empty function, per call.
fn lapic_read() -> u64 {
    #[inline(never)]
    fn nothing() -> u32 {
        core::hint::black_box(0)
    }
    let t0 = kernel::nanotime();
    for _ in 0..ITERS {
        core::hint::black_box(kernel::arch::x86_64::apic::id());
    }
    let t1 = kernel::nanotime();
    for _ in 0..ITERS {
        core::hint::black_box(nothing());
    }
    let t2 = kernel::nanotime();
    // Scaled to the 8-per-iteration loops' units below.
    ((t1 - t0).saturating_sub(t2 - t1)) * 8
}

fn insn() {
    let per = |f: fn() -> u64| best_of_3(|| (f().saturating_sub(empty())) as f64 / (ITERS * 8) as f64);
    // Picoseconds: a load is about a nanosecond. A register `add` costs
    // less than the loops' noise (TCG turns 8 of them and the loop into a
    // few host instructions), so the ratios are to a plain load instead.
    report("insn_add", per(add) * 1000.0, "ps");
    let load = per(mov_load);
    report("insn_mov_load", load * 1000.0, "ps");
    let all: &[(&str, fn() -> u64)] = &[
        ("mov_store", mov_store),
        ("gs_load", gs_load),
        ("lock_xadd", lock_xadd),
        ("xchg", xchg),
        ("lock_cmpxchg", lock_cmpxchg),
        ("mfence", mfence),
        ("pause", pause),
        ("rdtsc", rdtsc),
        ("jmp_next", jmp_next),
        ("call_ret", call_ret),
        ("pushf_popf", pushf_popf),
        ("cli_sti", cli_sti),
        ("pushf_pop", pushf_pop),
        ("sti", sti_only),
        ("cli", cli_only),
        ("port_out", port_out),
    ];
    let ratio = |name: &str, v: f64| {
        report(&alloc::format!("insn_{name}"), v * 1000.0, "ps");
        if load > 0.0 {
            report(&alloc::format!("insn_{name}_ratio"), v / load, "x");
        }
    };
    for (name, f) in all {
        ratio(name, per(*f));
    }
    ratio("lapic_read", best_of_3(|| lapic_read() as f64 / (ITERS * 8) as f64));
    // A block transition looked up in the jump cache (an indirect jump, a
    // `ret`, a direct one to another page): three per iteration, less the
    // empty loop (the same `dec`/`jnz` per iteration). And what a look-up
    // costs more when its entry holds another hot block (two misses per
    // iteration).
    let hit = best_of_3(|| jump_pair(false) as f64);
    let miss = best_of_3(|| jump_pair(true) as f64);
    let loop_only = best_of_3(|| empty() as f64);
    ratio("lookup_hit", ((hit - loop_only) / 3.0).max(0.0) / ITERS as f64);
    ratio("lookup_miss_extra", ((miss - hit) / 2.0).max(0.0) / ITERS as f64);
}
