//! Lab 1's QEMU test (`labs/lab1/`): 1000 goroutines through the run queues, and a checksum.
//!
//! Graded by `./run-qemu.sh grade lab1`, which boots it with a fresh random `seed=` (the nonce)
//! and recomputes the expected checksum on the host: the workers' inputs come from the nonce,
//! so only a kernel that really ran every worker exactly once prints the right number. The
//! grader also checks that this file is unchanged. The formula is [`work`]; the grader has its
//! own copy (`boot/src/lab/`), keep the two equal.
//!
//! Four spawner goroutines each start 250 workers back to back, so every P's ring fills up
//! and overflows to the global queue (`runqputslow`) while idle Ps steal (`runqget` against
//! `runqgrab`); every 8th worker yields once (`gosched`) and comes back through the global
//! queue.
use crate::latch::Latch;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use kernel::ktest::ktest;
use kernel::println;
use gmp_core::rand::mix64;

/// Workers (the spawners are not counted).
const N: u64 = 1000;
const SPAWNERS: u64 = 4;

/// Worker `i`'s result for nonce `seed`: 1..=64 rounds of splitmix, the count from the nonce.
fn work(seed: u64, i: u64) -> u64 {
    let mut x = mix64(seed ^ i.wrapping_mul(0xd6e8_feb8_6659_fd93));
    for _ in 0..1 + (x & 63) {
        x = mix64(x);
    }
    x
}

#[ktest(smp = [1, 2, 4], timeout = 120, output = ["/^lab1: checksum [0-9a-f]{16} nonce [0-9]+ goroutines 1000 ok$/"])]
fn goroutines_checksum() {
    let seed = kernel::boot::params().seed.unwrap_or(1);
    let ran: &'static [AtomicU8] = Box::leak((0..N).map(|_| AtomicU8::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let sum: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let done: &'static Latch = Box::leak(Box::new(Latch::new(N)));
    for s in 0..SPAWNERS {
        kernel::go(move || {
            for i in s * N / SPAWNERS..(s + 1) * N / SPAWNERS {
                kernel::go(move || {
                    if i % 8 == 0 {
                        kernel::gosched();
                    }
                    ran[i as usize].fetch_add(1, Ordering::Relaxed);
                    sum.fetch_add(work(seed, i), Ordering::Relaxed);
                    done.done();
                });
            }
        });
    }
    done.wait();
    let (mut never, mut twice) = (0, 0);
    for r in ran {
        match r.load(Ordering::Relaxed) {
            0 => never += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    assert!(never == 0 && twice == 0, "lab1: {never} goroutines never ran, {twice} ran twice");
    let want = (0..N).fold(0u64, |a, i| a.wrapping_add(work(seed, i)));
    let got = sum.load(Ordering::Relaxed);
    assert_eq!(got, want, "lab1: wrong checksum");
    println!("lab1: checksum {got:016x} nonce {seed} goroutines {N} ok");
}
