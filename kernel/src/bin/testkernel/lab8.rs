//! Lab 8's QEMU test (`labs/lab8/`, the bonus lab): how many IPIs and halts each wake-up of a
//! parked core costs, with and without halt polling.
//!
//! Graded by `./run-qemu.sh grade lab8`, which boots it twice per run with the same fresh
//! random `seed=` (the nonce): with `haltpoll=0` (the reference kernel's behaviour) and with
//! `haltpoll=1` (the student's poll and window policy). It recomputes the `ok` line on the
//! host (`boot/src/lab/spec/lab8.rs` has its copy of [`rounds`] and [`step`]; keep them equal),
//! parses the `counters` line of both boots and scores the ratio `(ipis + halts) / wakeups`
//! of the second against the first. The grader also checks that this file is unchanged.
//!
//! The workload is a ping-pong between two goroutines over two unbuffered channels, with a
//! nonce-derived few microseconds of work on each side. Each goroutine is locked to its own
//! core (`lock_os_thread`), so every hand-over wakes the other core: the receiver is never
//! queued, its core waits for it (`locked_wait` → `notesleep`) and the sender wakes that core
//! (`ready_locked` → `notewakeup`). Without locking, the pair usually shared one P through
//! `runnext` and the other core was hardly ever woken: the first version of this test scored
//! a correct poll like the reference in 2 of 6 boots. Without polling each wake-up costs an
//! IPI and a halt; a core that polls a little longer than the other side's work catches the
//! next wake-up without either. `wakeups` counts `notewakeup` calls. Every [`LONG_GAP_EVERY`]
//! round trips the test sleeps 1 to 2 ms, longer than any poll window: no poll may last much
//! longer than the largest window (`long_polls`).
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, Ordering};
use gmp_core::rand::mix64;
use kernel::ktest::{ktest, T};
use kernel::println;
use kernel::runtime::proc::HALTPOLL;
use kernel::Chan;

/// A sleep of 1 to 2 ms after every this many round trips.
const LONG_GAP_EVERY: u64 = 128;

/// Round trips for nonce `seed`: 2000 to 2499.
fn rounds(seed: u64) -> u64 {
    2000 + mix64(seed ^ 0x6c61_6238) % 500
}

/// What the echo goroutine sends back for `x` in round `r`.
fn step(x: u64, r: u64) -> u64 {
    mix64(x ^ r.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The counters the grader reads, as deltas over the workload.
struct Counters {
    wakeups: u64,
    parks: u64,
    ipis: u64,
    halts: u64,
    hits: u64,
    wasted_ns: u64,
    poll_ns: u64,
    long_polls: u64,
}

fn counters() -> Counters {
    let s = kernel::runtime::trace::stats();
    Counters {
        wakeups: HALTPOLL.wakes.load(Ordering::Relaxed),
        parks: s.parks,
        ipis: HALTPOLL.ipis.load(Ordering::Relaxed),
        halts: HALTPOLL.halts.load(Ordering::Relaxed),
        hits: HALTPOLL.poll_hits.load(Ordering::Relaxed),
        wasted_ns: HALTPOLL.poll_wasted_ns.load(Ordering::Relaxed),
        poll_ns: HALTPOLL.poll_ns.load(Ordering::Relaxed),
        long_polls: HALTPOLL.long_polls.load(Ordering::Relaxed),
    }
}

#[ktest(smp = [2, 4], also = [(2, "haltpoll=1"), (4, "haltpoll=1")], timeout = 120,
        output = ["/^lab8: nonce [0-9]+ rounds [0-9]+ checksum [0-9a-f]{16} ok$/",
                  "/^lab8: counters haltpoll=[01] wakeups [0-9]+ parks [0-9]+ ipis [0-9]+ halts [0-9]+ poll_hits [0-9]+ wasted_poll_us [0-9]+ poll_us [0-9]+ long_polls [0-9]+$/"])]
fn haltpoll_ratio(t: &mut T) {
    if kernel::num_cpu() < 2 {
        // One core cannot hold two locked goroutines: the first to block would leave the
        // other runnable with no core to run it (the runtime reports that as a deadlock).
        t.skip("needs 2 cores: each goroutine of the ping-pong locks its own core");
        return;
    }
    let params = kernel::boot::params();
    let seed = params.seed.unwrap_or(1);
    let rounds = rounds(seed);
    let ping = Chan::<u64>::new(0);
    let pong = Chan::<u64>::new(0);
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let echoed: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let c0 = counters();
    // Main first: the echo goroutine then cannot run on main's core (a locked core runs only
    // its own goroutine), and locks itself to the core it gets.
    kernel::lock_os_thread();
    let done = Chan::<()>::new(1);
    let done2 = done.clone();
    kernel::go(move || {
        kernel::lock_os_thread();
        for r in 0..rounds {
            let x = ping2.recv().expect("lab8: ping closed early");
            // A few µs of work on this side too.
            kernel::arch::x86_64::time::udelay(1 + mix64(x) % 8);
            echoed.fetch_add(1, Ordering::Relaxed);
            pong2.send(step(x, r));
        }
        kernel::unlock_os_thread();
        done2.send(());
    });
    let mut x = mix64(seed);
    let mut sum = 0u64;
    for r in 0..rounds {
        ping.send(x);
        x = pong.recv().expect("lab8: pong closed early");
        sum = sum.wrapping_add(x);
        kernel::arch::x86_64::time::udelay(1 + mix64(x ^ r) % 8);
        // Now and then a long idle gap: every core parks for longer than any window, so a
        // poll that ignores its window shows (`long_polls`), and the windows shrink.
        if r % LONG_GAP_EVERY == LONG_GAP_EVERY - 1 {
            kernel::sleep(1_000_000 + mix64(x) % 1_000_000);
        }
    }
    let c1 = counters();
    done.recv().expect("lab8: echo goroutine did not finish");
    kernel::unlock_os_thread();
    let c = Counters {
        wakeups: c1.wakeups - c0.wakeups,
        parks: c1.parks - c0.parks,
        ipis: c1.ipis - c0.ipis,
        halts: c1.halts - c0.halts,
        hits: c1.hits - c0.hits,
        wasted_ns: c1.wasted_ns - c0.wasted_ns,
        poll_ns: c1.poll_ns - c0.poll_ns,
        long_polls: c1.long_polls - c0.long_polls,
    };
    if !params.haltpoll {
        assert_eq!((c.hits, c.wasted_ns), (0, 0), "lab8: haltpoll=0 polls nothing");
    }
    println!(
        "lab8: counters haltpoll={} wakeups {} parks {} ipis {} halts {} poll_hits {} wasted_poll_us {} poll_us {} long_polls {}",
        params.haltpoll as u32,
        c.wakeups,
        c.parks,
        c.ipis,
        c.halts,
        c.hits,
        c.wasted_ns / 1000,
        c.poll_ns / 1000,
        c.long_polls
    );
    let want = {
        let mut x = mix64(seed);
        let mut s = 0u64;
        for r in 0..rounds {
            x = step(x, r);
            s = s.wrapping_add(x);
        }
        s
    };
    assert_eq!(echoed.load(Ordering::Relaxed), rounds);
    assert_eq!(sum, want, "lab8: wrong checksum");
    println!("lab8: nonce {seed} rounds {rounds} checksum {sum:016x} ok");
}
