//! A kernel of your own with tests of its own: the ktest framework seen from outside.
//!
//! Run every test:   cargo run -- test --example ktest_demo
//! List them:        cargo run -- test --example ktest_demo --list
//! One trial:        cargo run -- test --example ktest_demo --exact 'channel_sum[big,smp=2]'
//!
//! Each `#[ktest]` is one function with its settings beside it; the runner boots one QEMU per
//! trial (test x core count x case) and compares the boot with what the test declared.
#![no_std]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::ktest::{ktest, T};
use kernel::{Chan, WaitGroup};

kernel::main!(main);

/// Booted without `test=`, the example is an ordinary kernel program.
fn main() {
    kernel::println!("ktest_demo: run my tests with: cargo run -- test --example ktest_demo");
}

/// Every goroutine runs exactly once, on 1, 2 and 4 cores.
#[ktest(smp = [1, 2, 4], timeout = 120)]
fn every_goroutine_runs(t: &mut T) {
    static RAN: AtomicU64 = AtomicU64::new(0);
    static WG: WaitGroup = WaitGroup::new();
    const N: u64 = 1000;
    WG.add(N as i32);
    for _ in 0..N {
        kernel::go(|| {
            RAN.fetch_add(1, Ordering::Relaxed);
            WG.done();
        });
    }
    WG.wait();
    assert_eq!(RAN.load(Ordering::Relaxed), N);
    t.log(format_args!("{N} goroutines ran on {} cores", kernel::num_cpu()));
}

/// A parameterized test: each case is its own trial, reported as `channel_sum[small,smp=1]`;
/// a case may carry boot parameters of its own.
#[ktest(smp = [1, 2], cases = ["small", ("big", "heap=64M")])]
fn channel_sum(t: &mut T) {
    let n: u64 = match t.case() {
        Some("big") => 100_000,
        _ => 100,
    };
    let c = Chan::<u64>::new(16);
    let tx = c.clone();
    kernel::go(move || {
        for i in 1..=n {
            tx.send(i);
        }
        tx.close();
    });
    let mut sum = 0;
    while let Some(v) = c.recv() {
        sum += v;
    }
    assert_eq!(sum, n * (n + 1) / 2);
    kernel::ktest::log!(t, "sum of 1..={n} = {sum}");
}

/// Expected to panic, like `#[should_panic(expected = ...)]`.
#[ktest(smp = [2], should_panic = "send on closed channel")]
fn send_on_closed_channel_panics() {
    let c = Chan::<u32>::new(1);
    c.close();
    c.send(1);
}

/// Expected to end in a fatal error: Go's deadlock report.
#[ktest(smp = [1], fatal = "all goroutines are asleep - deadlock!", output = ["goroutine 1 [chan receive]:"])]
fn deadlock_is_reported() {
    let c = Chan::<u32>::new(0);
    c.recv();
}

/// Skipped on fewer than 2 cores (the runner does not even boot those trials).
#[ktest(smp = [1, 2], min_cpus = 2)]
fn needs_two_cores() {
    assert!(kernel::num_cpu() >= 2);
}

/// Holds only at the core count it lists: with `--smp 1,2,3` the runner runs it at 2 and
/// skips it at 1 and 3 (without `smp_only`, `--smp` would boot it there and it would fail).
#[ktest(smp = [2], smp_only)]
fn exactly_two_cores() {
    assert_eq!(kernel::num_cpu(), 2);
}

/// A test can also decide at run time to skip itself.
#[ktest(smp = [1])]
fn skips_itself(t: &mut T) {
    if kernel::num_cpu() < 8 {
        t.skip("needs 8 cores to be interesting");
    }
}

/// Fails on purpose, to show a failure report. Tagged `manual`: the runner leaves it out
/// unless a FILTER or `--tags manual` selects it.
#[ktest(smp = [1], tags = ["manual"])]
fn fails_on_purpose(t: &mut T) {
    t.log("about to compare");
    assert_eq!(1 + 1, 3, "arithmetic still works");
}
