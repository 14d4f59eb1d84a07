//! The default demo kernel (`cargo run`): a fork-join computation that
//! spreads over every P by work stealing, then channels at work: Go's
//! concurrent prime sieve (a goroutine per prime, shut down by closing
//! channels) and a worker pool fed and drained through channels, each
//! printing who ran what.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{after, println, select, Chan, WaitGroup};

kernel::main!(main);

const PER_CPU_SLOTS: usize = kernel::MAX_CPUS;
static WORK_BY_CPU: [AtomicU64; PER_CPU_SLOTS] = [const { AtomicU64::new(0) }; PER_CPU_SLOTS];

/// Sum lo..hi by splitting the range in halves, a goroutine for the lower
/// half (it lands in this P's runnext, where an idle core steals it), the
/// upper half in place, down to leaves of `leaf` numbers; the join is a
/// one-slot channel, so a waiting parent parks instead of holding its P.
fn sum(lo: u64, hi: u64, leaf: u64) -> u64 {
    if hi - lo <= leaf {
        let mut s = 0u64;
        for i in lo..hi {
            s = s.wrapping_add(core::hint::black_box(i));
        }
        WORK_BY_CPU[kernel::cpu_id()].fetch_add(hi - lo, Ordering::Relaxed);
        return s;
    }
    let mid = lo + (hi - lo) / 2;
    let left: Chan<u64> = Chan::new(1);
    let tx = left.clone();
    kernel::go(move || tx.send(sum(lo, mid, leaf)));
    let right = sum(mid, hi, leaf);
    left.recv().expect("the left half always answers") + right
}

fn main() {
    let n = 1u64 << 23;
    println!("demo: fork-join sum of 0..{n} on {} Ps ({} cores)", kernel::current_gomaxprocs(), kernel::num_cpu());
    let t0 = kernel::nanotime();
    let s = sum(0, n, 1 << 14);
    let dt = kernel::nanotime() - t0;
    assert_eq!(s, n * (n - 1) / 2, "wrong sum");
    println!("demo: sum = {s} (correct) in {} us", dt / 1000);
    per_cpu("summed", "numbers", |cpu| WORK_BY_CPU[cpu].load(Ordering::Relaxed));
    prime_sieve(100);
    worker_pool(200_000, 2_000);
}

// ---- Channels: Go's concurrent prime sieve ------------------------------------

static FILTERED_BY_CPU: [AtomicU64; PER_CPU_SLOTS] = [const { AtomicU64::new(0) }; PER_CPU_SLOTS];

/// A generator sends 2, 3, 4, ... until told to quit; each prime found gets
/// a filter goroutine that passes on the numbers it does not divide. The
/// channels are buffered so that the stages run on several cores at once.
/// Shutdown is by closing: the generator closes its output when it quits,
/// each filter's `for` loop then ends and it closes its own output, and so
/// on down the chain, which main drains.
fn prime_sieve(n: usize) {
    const BUF: usize = 16;
    let t0 = kernel::nanotime();
    let wg: &'static WaitGroup = alloc::boxed::Box::leak(alloc::boxed::Box::new(WaitGroup::new()));
    let quit = Chan::<()>::new(0);
    let mut ch = Chan::<u64>::new(BUF);
    {
        let (out, quit) = (ch.clone(), quit.clone());
        wg.add(1);
        kernel::go(move || {
            let mut i = 2;
            loop {
                select! {
                    send(out, i) => i += 1,
                    recv(quit) -> _ => break,
                }
            }
            out.close();
            wg.done();
        });
    }
    let mut primes = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = ch.recv().expect("the generator runs until quit");
        primes.push(prime);
        let next = Chan::<u64>::new(BUF);
        let (input, out) = (ch, next.clone());
        wg.add(1);
        kernel::go(move || {
            for i in input.iter() {
                // Relaxed: a statistic, read after wg.wait() (which orders it).
                FILTERED_BY_CPU[kernel::cpu_id()].fetch_add(1, Ordering::Relaxed);
                if i % prime != 0 {
                    out.send(i);
                }
            }
            out.close();
            wg.done();
        });
        ch = next;
    }
    quit.send(());
    let drained = ch.iter().count();
    wg.wait();
    let dt = kernel::nanotime() - t0;
    println!("demo: prime sieve with {} goroutines: the first {n} primes are", n + 1);
    for row in primes.chunks(20) {
        let mut line = alloc::string::String::new();
        for p in row {
            line += &alloc::format!(" {p}");
        }
        println!("demo:{line}");
    }
    println!("demo: sieve done in {} us; all {} goroutines exited after the close cascade ({drained} numbers drained)", dt / 1000, n + 1);
    // Relaxed: see the increment.
    per_cpu("ran", "filter steps", |cpu| FILTERED_BY_CPU[cpu].load(Ordering::Relaxed));
}

// ---- Channels: a worker pool ----------------------------------------------------

/// One worker per P takes ranges from a jobs channel and sends back how many
/// primes each holds; a closer goroutine closes the results when every
/// worker is done; main collects, with a timeout as a select case.
fn worker_pool(limit: u64, chunk: u64) {
    let t0 = kernel::nanotime();
    let workers = kernel::current_gomaxprocs() as usize;
    let jobs = Chan::<(u64, u64)>::new(workers * 2);
    let results = Chan::<(u64, usize)>::new(workers * 2);
    let wg: &'static WaitGroup = alloc::boxed::Box::leak(alloc::boxed::Box::new(WaitGroup::new()));
    for _ in 0..workers {
        let (jobs, results) = (jobs.clone(), results.clone());
        wg.add(1);
        kernel::go(move || {
            for (lo, hi) in jobs.iter() {
                let count = (lo..hi).filter(|&k| is_prime(k)).count() as u64;
                results.send((count, kernel::cpu_id()));
            }
            wg.done();
        });
    }
    {
        let jobs = jobs.clone();
        kernel::go(move || {
            let mut lo = 0;
            while lo < limit {
                jobs.send((lo, (lo + chunk).min(limit)));
                lo += chunk;
            }
            jobs.close();
        });
    }
    {
        let results = results.clone();
        kernel::go(move || {
            wg.wait();
            results.close();
        });
    }
    let timeout = after(30_000_000_000);
    let (mut total, mut chunks) = (0, 0);
    let mut by_cpu = [0u32; PER_CPU_SLOTS];
    loop {
        select! {
            recv(results) -> r => match r {
                Some((count, cpu)) => {
                    total += count;
                    chunks += 1;
                    by_cpu[cpu] += 1;
                }
                None => break,
            },
            recv(timeout) -> _ => panic!("demo: worker pool stalled"),
        }
    }
    let want = (0..limit).filter(|&k| is_prime(k)).count() as u64;
    assert_eq!(total, want, "the worker pool miscounted");
    println!(
        "demo: worker pool: {workers} workers counted {total} primes below {limit} (correct) in {chunks} chunks, {} us",
        (kernel::nanotime() - t0) / 1000
    );
    per_cpu("did", "chunks", |cpu| by_cpu[cpu] as u64);
}

/// Who did how much: a line per core on a small machine, a summary on a big
/// one (128 lines per section would bury the rest).
fn per_cpu(verb: &str, unit: &str, count: impl Fn(usize) -> u64) {
    let n = kernel::num_cpu() as usize;
    if n <= 16 {
        for cpu in 0..n {
            println!("demo: cpu{cpu} {verb} {} {unit}", count(cpu));
        }
        return;
    }
    let busy = (0..n).filter(|&c| count(c) > 0).count();
    let top = (0..n).max_by_key(|&c| count(c)).unwrap_or(0);
    let total: u64 = (0..n).map(&count).sum();
    println!(
        "demo: {busy} of {n} cores {verb} some of the {total} {unit}; cpu{top} the most ({})",
        count(top)
    );
}

fn is_prime(k: u64) -> bool {
    k >= 2 && (2..).take_while(|d| d * d <= k).all(|d| k % d != 0)
}

/// The demo's own tests (`cargo run -- test demo::`): it runs, uses every core, and prints
/// Go's scheduler trace when asked.
mod demo {
    use kernel::ktest::ktest;

    #[ktest(smp = [4], output = ["(correct)"])]
    fn uses_every_core() {
        super::main();
    }

    #[ktest(
        smp = [4],
        params = "schedtrace=5",
        output = [
            "/^SCHED [0-9]+ms: gomaxprocs=4 idleprocs=[0-9]+ threads=4 spinningthreads=[0-9]+ needspinning=[0-9]+ idlethreads=[0-9]+ runqueue=[0-9]+ \\[/",
            "sched summary: goroutines created="
        ]
    )]
    fn schedtrace() {
        super::main();
    }

    #[ktest(smp = [2], params = "schedtrace=20 scheddetail=1", output = ["P0: status=", "M1: p=", "G1: status="])]
    fn scheddetail() {
        super::main();
    }
}
