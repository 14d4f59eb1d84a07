#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::ktest::{ktest, T};
use kernel::{Chan, WaitGroup};

kernel::main!(main);

fn main() {
    kernel::println!("run my tests with: cargo run -- test --example mytests");
}

/// Runs at -smp 1, 2 and 4, each trial with a 120 s timeout.
#[ktest(smp = [1, 2, 4], timeout = 120)]
fn goroutines_all_run(t: &mut T) {
    static RAN: AtomicU64 = AtomicU64::new(0);
    static WG: WaitGroup = WaitGroup::new();
    WG.add(100);
    for _ in 0..100 {
        kernel::go(|| {
            RAN.fetch_add(1, Ordering::Relaxed);
            WG.done();
        });
    }
    WG.wait();
    assert_eq!(RAN.load(Ordering::Relaxed), 100);
    t.log(format_args!("100 goroutines on {} cores", kernel::num_cpu()));
}

/// Two cases, each its own trial (`buffered[small,smp=2]`, ...); a case may add boot parameters.
#[ktest(smp = [2], cases = ["small", ("big", "gomaxprocs=1")])]
fn buffered(t: &mut T) {
    let n = if t.case() == Some("big") { 10_000 } else { 10 };
    let c = Chan::<u64>::new(8);
    let tx = c.clone();
    kernel::go(move || {
        (0..n).for_each(|i| tx.send(i));
        tx.close();
    });
    let mut got = 0;
    while c.recv().is_some() {
        got += 1;
    }
    assert_eq!(got, n);
}

/// Passes only if it panics with this text (like `#[should_panic(expected = ...)]`).
#[ktest(smp = [1], should_panic = "close of closed channel")]
fn double_close() {
    let c = Chan::<u8>::new(0);
    c.close();
    c.close();
}
