//! The default demo kernel (`cargo run`): a fork-join computation that
//! spreads over every P by work stealing, then prints who ran what.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::println;

kernel::main!(main);

const PER_CPU_SLOTS: usize = 64;
static WORK_BY_CPU: [AtomicU64; PER_CPU_SLOTS] = [const { AtomicU64::new(0) }; PER_CPU_SLOTS];

/// Sum 0..n by splitting the range in halves, a goroutine per half, down
/// to leaves of `leaf` numbers; the parent waits by polling with gosched.
fn sum(lo: u64, hi: u64, leaf: u64) -> u64 {
    if hi - lo <= leaf {
        let mut s = 0;
        for i in lo..hi {
            s += i;
        }
        WORK_BY_CPU[kernel::cpu_id()].fetch_add(hi - lo, Ordering::Relaxed);
        return s;
    }
    let mid = lo + (hi - lo) / 2;
    let left = alloc_slot();
    let l2 = left;
    kernel::go(move || {
        let v = sum(lo, mid, leaf);
        l2.0.store(v | DONE, Ordering::Release);
    });
    let right = sum(mid, hi, leaf);
    loop {
        let v = left.0.load(Ordering::Acquire);
        if v & DONE != 0 {
            return (v & !DONE) + right;
        }
        kernel::gosched();
    }
}

const DONE: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Slot(&'static AtomicU64);

fn alloc_slot() -> Slot {
    extern crate alloc;
    Slot(alloc::boxed::Box::leak(alloc::boxed::Box::new(AtomicU64::new(0))))
}

fn main() {
    let n = 1u64 << 20;
    println!("demo: fork-join sum of 0..{n} on {} Ps ({} cores)", kernel::current_gomaxprocs(), kernel::num_cpu());
    let t0 = kernel::nanotime();
    let s = sum(0, n, 1 << 12);
    let dt = kernel::nanotime() - t0;
    assert_eq!(s, n * (n - 1) / 2, "wrong sum");
    println!("demo: sum = {s} (correct) in {} us", dt / 1000);
    for cpu in 0..kernel::num_cpu() as usize {
        println!("demo: cpu{cpu} summed {} numbers", WORK_BY_CPU[cpu].load(Ordering::Relaxed));
    }
}
