//! Memory scenarios: running out of frames in the page-fault path, stacks
//! that come back after a burst of goroutines, and scale (many goroutines
//! parked at once, a million spawned over time).
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use kernel::mem::{frame, stack};
use kernel::ktest::ktest;
use kernel::{println, Chan, WaitGroup};

/// Use `n` KiB of this goroutine's stack, so that later calls (println's
/// formatting) find their pages already mapped.
#[inline(never)]
fn pretouch_stack(kib: usize) {
    let buf = core::hint::black_box([0u8; 1024]);
    if kib > 1 {
        pretouch_stack(kib - 1);
    }
    core::hint::black_box(&buf);
}

/// Regression (issue 16, item 10): a goroutine stack page faulted in when
/// exactly one frame is left, at an address that also needs a new
/// page-table page. The leaf frame is taken, the page table cannot be had:
/// that is out of memory, reported, never a fault that repeats forever.
/// Run at `--mem 64 heap=4M` so that taking every frame is quick.
/// Issue 16, item 10: one frame left, and a fresh stack page that also
/// needs a new page-table page. Before the fix the fault handler gave the
/// frame back and returned, the fault repeated, and the run hung until the
/// timeout with no report.
#[ktest(
    smp = [1, 2],
    mem = 64,
    params = "heap=4M",
    timeout = 90,
    fatal = "fatal error: out of memory: no physical frame left while growing a goroutine stack (no frame for its page table)",
    output = ["oom_page_table: took ", "/^goroutine [0-9]+ \\[running\\]:/"]
)]
fn oom_page_table() {
    pretouch_stack(32);
    // Take every frame, threading them through their own first word.
    let mut head: u64 = 0;
    let mut n = 0u64;
    while let Some(f) = frame::alloc() {
        let a = f.start_address().as_u64();
        // SAFETY: the frame is ours; the linear map covers it.
        unsafe { *(kernel::mem::phys_to_virt(a) as *mut u64) = head };
        head = a;
        n += 1;
    }
    // Give exactly one back.
    // SAFETY: `head` is a frame we took, linked as above.
    let next = unsafe { *(kernel::mem::phys_to_virt(head) as *const u64) };
    frame::free(x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(head)));
    // Reserve stack slots until one starts a fresh 2 MiB region: its first
    // page needs a level-1 page table that does not exist yet.
    let st = loop {
        let s = stack::alloc();
        if (s.lo - stack::PAGE) % (2 << 20) == 0 {
            break s;
        }
    };
    // As newproc1 does for a goroutine's stack: a fault in a slot no live
    // goroutine owns is reported as a dangling pointer instead.
    stack::set_live(st, true);
    let (used, total) = frame::stats();
    println!("oom_page_table: took {n} frames, gave one back ({used} of {total} in use); touching {:#x}", st.hi - 8);
    let _ = next;
    // SAFETY: deliberately touches a reserved, unmapped stack page: the
    // fault handler must report out of memory.
    unsafe { core::ptr::write_volatile((st.hi - 8) as *mut u64, 1) };
    panic!("oom_page_table: the stack page was mapped with no frame left for its page table");
}

// ---- memory comes back ------------------------------------------------------------------------

/// Frames in use once every stack being given back has come back: wait
/// (bounded) for the stack scavenger to unmap the free Gs' stacks beyond
/// what it keeps (it looks once per `GFREE_SCAVENGE_NS`, and a stack must
/// have sat unused for a whole period) and for the TLB shootdowns in
/// flight.
fn settled_frames() -> u64 {
    let t0 = kernel::nanotime();
    while !kernel::runtime::proc::gfree_settled() && kernel::nanotime() - t0 < 2_000_000_000 {
        kernel::sleep(1_000_000);
    }
    let s = stack::stats();
    assert!(
        kernel::runtime::proc::gfree_settled(),
        "stacks not back after 2 s: {} dead Gs and {} batches of frames waiting for a TLB shootdown (a core never answered?), or the scavenger did not run",
        kernel::runtime::proc::gfree_limbo(),
        s.limbo_batches
    );
    frame::stats().0
}

/// The bound on what the gFree lists keep mapped: each idle P's list holds
/// at most 63 dead Gs with one stack page each (a busy P's may hold up to
/// 2047, but it parks when it finds no work, and gives all but 32 to the
/// global list then: `proc::gftrim`), the global list at most
/// `GFREE_STACK_KEEP` more once the scavenger has run, and each may keep
/// one level-1 page table alive; level-2 tables (one a GiB of slots) stay.
fn kept_bound(slots: u64) -> u64 {
    let gs = kernel::current_gomaxprocs() as u64 * 63 + kernel::runtime::proc::GFREE_STACK_KEEP as u64;
    gs * 2 + slots * stack::STACK_SLOT / (1 << 30) + 2
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Issue 8, "memory comes back", and the scale test: `N` goroutines parked
/// on channels at once (run in a `--mem 1024` guest), each woken by one
/// value, every value received exactly once, every goroutine accounted for.
/// Then the frames in use must return to within 10% of the figure before
/// the burst, and what is kept must be within the gFree bound.
#[ktest(
    smp = [1, 2, 4],
    mem = 1024,
    params = "heap=128M",
    timeout = 300,
    output = [
        "mem_burst: woken=100000 of 100000, values not received exactly once=0",
        "mem_burst: frames back within 10%",
        "/^mem: frames in use=/"
    ]
)]
fn mem_burst() {
    const N: u64 = 100_000;
    const CHANS: u64 = 1000;
    let f0 = settled_frames();
    let (_, total) = frame::stats();
    println!("mem_burst: before: {f0} of {total} frames in use");
    let chans: &'static Vec<Chan<u64>> = leak((0..CHANS).map(|_| Chan::new(0)).collect());
    let seen: &'static Vec<AtomicU8> = leak((0..N).map(|_| AtomicU8::new(0)).collect());
    let parked = leak(WaitGroup::new());
    let done = leak(WaitGroup::new());
    let woken = leak(AtomicU64::new(0));
    parked.add(N as i32);
    done.add(N as i32);
    for i in 0..N {
        kernel::go(move || {
            let c = &chans[(i % CHANS) as usize];
            parked.done();
            let v = c.recv().expect("channel closed");
            assert!(seen[v as usize].fetch_add(1, Ordering::Relaxed) == 0, "value {v} received twice");
            woken.fetch_add(1, Ordering::Relaxed);
            done.done();
        });
    }
    parked.wait();
    let f1 = frame::stats().0;
    let st = stack::stats();
    println!(
        "mem_burst: {N} goroutines started: {f1} frames in use, {} stack slots, {} goroutines exist",
        st.slots,
        kernel::num_goroutine()
    );
    for v in 0..N {
        chans[(v % CHANS) as usize].send(v);
    }
    done.wait();
    let w = woken.load(Ordering::Relaxed);
    let missing = seen.iter().filter(|s| s.load(Ordering::Relaxed) != 1).count();
    println!("mem_burst: woken={w} of {N}, values not received exactly once={missing}");
    assert_eq!(w, N, "goroutines lost");
    assert_eq!(missing, 0, "values lost or received twice");
    // The goroutines have called done() but may still be exiting.
    for _ in 0..1000 {
        if kernel::num_goroutine() <= 1 {
            break;
        }
        kernel::sleep(1_000_000);
    }
    let f2 = settled_frames();
    let st = stack::stats();
    let kept = f2.saturating_sub(f0);
    println!(
        "mem_burst: after: {f2} frames in use ({kept} more than before; at the peak {} more); stack pages mapped={} unmapped={} page tables freed={}",
        f1 - f0,
        st.pages_mapped,
        st.pages_unmapped,
        st.tables_freed
    );
    kernel::runtime::trace::mem_summary();
    assert!(f2 * 10 <= f0 * 11, "frames in use {f2} not within 10% of {f0} after the burst");
    assert!(kept <= kept_bound(st.slots), "{kept} frames kept after the burst, more than the gFree bound {}", kept_bound(st.slots));
    println!("mem_burst: frames back within 10% (kept {kept}, bound {})", kept_bound(st.slots));
}

#[inline(never)]
fn recurse(n: u64, pattern: u64) -> u64 {
    let buf = core::hint::black_box([pattern ^ n; 128]); // 1 KiB, about 2 KiB a frame in all
    let below = if n == 0 { 0 } else { recurse(n - 1, pattern) };
    for (i, w) in buf.iter().enumerate() {
        assert!(*w == pattern ^ n, "stack word {i} of frame {n} changed: {w:#x} (pattern {:#x})", pattern ^ n);
    }
    below + buf[(n % 128) as usize]
}

/// A goroutine that once recursed deeply gives its stack back when it
/// dies: spawn goroutines that each use about 170 KiB, one after the
/// other, and check that the frames come back.
/// Goroutines that each used ~170 KiB of stack give it back when they die.
#[ktest(smp = [1, 2, 4], timeout = 180, output = ["mem_deep: 160 goroutines"])]
fn mem_deep() {
    let f0 = settled_frames();
    for round in 0..20u64 {
        let wg = leak(WaitGroup::new());
        for j in 0..8u64 {
            wg.add(1);
            kernel::go(move || {
                core::hint::black_box(recurse(80, round << 8 | j)); // about 170 KiB of stack (~2 KiB a frame)
                wg.done();
            });
        }
        wg.wait();
    }
    for _ in 0..1000 {
        if kernel::num_goroutine() <= 1 {
            break;
        }
        kernel::sleep(1_000_000);
    }
    let f2 = settled_frames();
    let st = stack::stats();
    let kept = f2.saturating_sub(f0);
    println!(
        "mem_deep: 160 goroutines of ~170 KiB each: {kept} frames kept; stack pages mapped={} unmapped={}",
        st.pages_mapped, st.pages_unmapped
    );
    assert!(kept <= kept_bound(st.slots), "{kept} frames kept by dead deep goroutines (bound {})", kept_bound(st.slots));
}

/// Stacks given back and faulted in again, over and over, on every core:
/// each goroutine fills a few pages of its stack with its own pattern,
/// yields (so it may move to another core), and checks the pattern. A
/// core still translating through a freed page (a missing or early TLB
/// shootdown) would show another goroutine's pattern or lose a write.
/// Stacks unmapped and faulted in again across cores keep their contents:
/// a missing or early TLB shootdown would show up as wrong stack words.
#[ktest(smp = [2, 4], timeout = 240, output = [" 0 wrong stack words"])]
fn mem_reuse() {
    const ROUNDS: u64 = 60;
    const PER: u64 = 96;
    let bad = leak(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let wg = leak(WaitGroup::new());
        for j in 0..PER {
            wg.add(1);
            kernel::go(move || {
                #[inline(never)]
                fn body(pattern: u64, bad: &AtomicU64) -> u64 {
                    let buf = core::hint::black_box([pattern; 1536]); // 12 KiB: three pages
                    kernel::gosched();
                    kernel::gosched();
                    let wrong = buf.iter().filter(|w| **w != pattern).count() as u64;
                    bad.fetch_add(wrong, Ordering::Relaxed);
                    buf[5]
                }
                core::hint::black_box(body(0x5eed_0000_0000_0000 | round << 16 | j, bad));
                wg.done();
            });
        }
        wg.wait();
    }
    let _ = settled_frames();
    let st = stack::stats();
    let (sd, sent, answered) = kernel::mem::tlb::stats();
    println!(
        "mem_reuse: {} goroutines, {} wrong stack words; stack pages mapped={} unmapped={}; shootdowns={sd} IPIs sent={sent} answered={answered}",
        ROUNDS * PER,
        bad.load(Ordering::Relaxed),
        st.pages_mapped,
        st.pages_unmapped
    );
    assert_eq!(bad.load(Ordering::Relaxed), 0, "stack contents changed under a goroutine");
    assert!(st.pages_unmapped > 0, "no stack was ever given back");
}

/// 1 000 000 goroutines spawned over time, at most `WINDOW` alive at once:
/// each marks its own slot; none may be lost or run twice.
/// 1 000 000 goroutines spawned over time (10 000 alive at most), each run
/// exactly once. About a minute at -smp 4 under TCG; `spawn_million_slow`
/// runs it at 1 and 2 cores (`cargo run -- test mem::spawn_million_slow`).
#[ktest(smp = [4], timeout = 400, output = ["lost=0 run twice=0"])]
fn spawn_million() {
    const N: u64 = 1_000_000;
    const WINDOW: u64 = 10_000;
    let runs: &'static Vec<AtomicU8> = leak((0..N).map(|_| AtomicU8::new(0)).collect());
    let f0 = settled_frames();
    let t0 = kernel::nanotime();
    let mut i = 0;
    while i < N {
        let wg = leak(WaitGroup::new());
        wg.add(WINDOW as i32);
        for k in i..i + WINDOW {
            kernel::go(move || {
                runs[k as usize].fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        i += WINDOW;
    }
    let ms = (kernel::nanotime() - t0) / 1_000_000;
    let lost = runs.iter().filter(|r| r.load(Ordering::Relaxed) == 0).count();
    let twice = runs.iter().filter(|r| r.load(Ordering::Relaxed) > 1).count();
    for _ in 0..1000 {
        if kernel::num_goroutine() <= 1 {
            break;
        }
        kernel::sleep(1_000_000);
    }
    let f2 = settled_frames();
    let st = stack::stats();
    println!(
        "spawn_million: {N} goroutines in {ms} ms (emulated): lost={lost} run twice={twice}; frames {f0} -> {f2}; stack slots={}",
        st.slots
    );
    assert_eq!(lost, 0, "goroutines lost");
    assert_eq!(twice, 0, "goroutines run twice");
}

// ---- a fault while a failure report prints --------------------------------------------------------

struct FaultyDisplay;
impl core::fmt::Display for FaultyDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: deliberately not: a null read while the panic report is
        // being printed.
        let v = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
        write!(f, "{v}")
    }
}

/// Regression (issue 16, item 11): a page fault on the core that is
/// printing a panic report. The report cannot finish; the run must still
/// end with a failure exit instead of halting that core forever.
/// Issue 16, item 11: a fault while the panic report prints ends the run
/// with a failure, not a hang until the timeout.
#[ktest(smp = [2], timeout = 90, fatal = "fatal error: fault while printing the failure report above")]
fn fault_in_report() {
    kernel::go(|| panic!("fault_in_report: {}", FaultyDisplay));
    loop {
        kernel::gosched();
    }
}

/// Issue 16, item 11: the AP trampoline page at 0x8000 is mapped (writable
/// and executable) only while the APs start.
/// Issue 16, item 11: the AP trampoline page is unmapped once the APs are up.
#[ktest(smp = [4])]
fn trampoline_unmapped() {
    let mapped = kernel::mem::is_mapped(kernel::arch::x86_64::smp::TRAMPOLINE);
    println!("trampoline_unmapped: 0x8000 mapped={mapped}");
    assert!(!mapped, "the AP trampoline page is still mapped after bring-up");
}

/// Issue 16, item 11: a touch of another goroutine's guard page is reported
/// as a wild pointer (naming the writer, main), not as the writer's overflow.
#[ktest(smp = [2], timeout = 90, fatal = "in the guard page of another goroutine's stack", output = ["goroutine 1 [running]:"])]
fn foreign_guard() {
    let lo = leak(AtomicU64::new(0));
    kernel::go(move || {
        lo.store(kernel::runtime::proc::current_stack_lo().0, Ordering::Release);
        loop {
            kernel::sleep(1_000_000);
        }
    });
    while lo.load(Ordering::Acquire) == 0 {
        kernel::gosched();
    }
    let addr = lo.load(Ordering::Acquire) - 8;
    println!("foreign_guard: main writes into another goroutine's guard page at {addr:#x}");
    // SAFETY: deliberately not: must end in a clean fatal report.
    unsafe { core::ptr::write_volatile(addr as *mut u64, 1) };
    unreachable!("the write into a guard page returned");
}

/// The address of a local 64 KiB below the top of the calling goroutine's
/// stack (so its page is not the top one, which a dead G keeps mapped).
#[inline(never)]
fn deep_local_addr() -> u64 {
    let buf = core::hint::black_box([7u8; 64 * 1024]);
    &buf[100] as *const u8 as u64
}

/// Issue 16, item 11: a pointer to a local that outlived its goroutine. The
/// dead goroutine's grown stack was unmapped; the write through the dangling
/// pointer used to map a fresh zeroed page under it without a word. It is
/// now a fatal error that names the writer (main).
#[ktest(smp = [1, 2, 4], timeout = 90, fatal = "of a dead goroutine on cpu", output = ["goroutine 1 [running]:"])]
fn dead_stack() {
    let addr = leak(AtomicU64::new(0));
    kernel::go(move || {
        addr.store(deep_local_addr(), Ordering::Release);
    });
    while addr.load(Ordering::Acquire) == 0 {
        kernel::gosched();
    }
    // Let it exit and its stack be given back (the TLB shootdown included).
    kernel::sleep(10_000_000);
    settled_frames();
    let a = addr.load(Ordering::Acquire);
    println!("dead_stack: main writes through a pointer into a dead goroutine's stack at {a:#x}");
    // SAFETY: deliberately not: must end in a clean fatal report.
    unsafe { core::ptr::write_volatile(a as *mut u8, 1) };
    unreachable!("the write into a dead goroutine's stack returned");
}

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: it ends in a stack overflow
fn down_forever(n: u64) -> u64 {
    let b = core::hint::black_box([n; 64]);
    down_forever(n + 1) + b[3]
}

extern "C" fn overflow_on_g0(_gp: *mut kernel::runtime::runtime2::G) -> ! {
    core::hint::black_box(down_forever(0));
    unreachable!("the g0 stack did not overflow");
}

/// Issue 16, item 11: the kernel's own stacks (interrupt, AP boot, g0) have
/// guard pages: an overflow of this core's g0 stack is reported, not a
/// silent write over the heap.
#[ktest(
    smp = [2],
    smp_only,
    timeout = 90,
    fatal = "fatal error: kernel stack overflow: page fault at ",
    output = ["g0_overflow: 11 kernel stacks with guard pages"]
)]
fn g0_overflow() {
    println!("g0_overflow: {} kernel stacks with guard pages; recursing on g0", kernel::mem::kstack::count());
    // SAFETY: deliberately not: the function never returns and overflows
    // the scheduler stack; it must end in a clean fatal report.
    unsafe { kernel::arch::x86_64::switch::mcall(overflow_on_g0) };
}

/// The million-goroutine scenario at 1 and 2 cores: slow under TCG (minutes),
/// so only when named: `cargo run -- test mem::spawn_million_slow`.
#[ktest(smp = [1, 2], timeout = 600, tags = ["slow", "manual"], output = ["lost=0 run twice=0"])]
fn spawn_million_slow() {
    spawn_million();
}
