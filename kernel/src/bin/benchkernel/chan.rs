//! Channel benchmarks: ports of Go's chan_test.go (BenchmarkChanSync,
//! BenchmarkChanProdCons0/10/100) and proc_test.go (BenchmarkPingPongHog,
//! BenchmarkMatmult) benchmarks, plus a plain unbuffered ping-pong.
//!
//! Go's benchmarks scale their loop to `b.N`; here each has a fixed size,
//! a run of about 100 ms, and the figure is the best of three runs, as on
//! the Go side (see `main.rs`). Values are emulated time
//! per operation: compare them with each other within one run (the `_ratio`
//! lines), not across machines. The Relaxed atomic counters hand out
//! batches of work: nothing is published through them.
use crate::report;
use crate::sched::best_of_3;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, Ordering};
use kernel::{select, Chan};

pub const BENCHES: &[crate::Bench] = &[
    ("chan_sync", chan_sync),
    ("chan_prod_cons_0", chan_prod_cons_0),
    ("chan_prod_cons_10", chan_prod_cons_10),
    ("chan_prod_cons_100", chan_prod_cons_100),
    ("chan_pingpong", chan_pingpong),
    ("ping_pong_hog", ping_pong_hog),
    ("matmult", matmult_bench),
    ("sema_pingpong", sema_pingpong),
];

/// Go's CallsPerSched: work is handed out in batches of this many ops.
const CALLS_PER_SCHED: i32 = 1000;

/// BenchmarkChanSync: two goroutines alternate on one unbuffered channel,
/// one receiving then sending, the other sending then receiving, so every
/// operation is a rendezvous that parks one side.
fn chan_sync() {
    const OPS: i32 = 120_000;
    const PROCS: i32 = 2;
    // One counter for the three runs (the goroutines need a 'static one),
    // refilled at the start of each.
    let batches: &'static AtomicI32 = alloc::boxed::Box::leak(alloc::boxed::Box::new(AtomicI32::new(0)));
    let v = best_of_3(|| {
        batches.store(OPS / CALLS_PER_SCHED / PROCS * PROCS, Ordering::Relaxed);
        let c = Chan::<bool>::new(PROCS as usize);
        let myc = Chan::<i32>::new(0);
        let t0 = kernel::nanotime();
        for _ in 0..PROCS {
            let (c, myc) = (c.clone(), myc.clone());
            kernel::go(move || {
                loop {
                    let i = batches.fetch_sub(1, Ordering::Relaxed) - 1;
                    if i < 0 {
                        break;
                    }
                    for _ in 0..CALLS_PER_SCHED {
                        if i % 2 == 0 {
                            myc.recv();
                            myc.send(0);
                        } else {
                            myc.send(0);
                            myc.recv();
                        }
                    }
                }
                c.send(true);
            });
        }
        for _ in 0..PROCS {
            c.recv();
        }
        let dt = kernel::nanotime() - t0;
        dt as f64 / OPS as f64
    });
    report("ChanSync", v, "ns/op");
}

/// Go's benchmarkChanProdCons(chanSize, localWork = 0): gomaxprocs
/// producers and as many consumers share one channel.
fn prod_cons(chan_size: usize, name: &str) {
    const OPS: i32 = 200_000;
    let procs = kernel::current_gomaxprocs() as usize;
    // One counter for the three runs, refilled at the start of each (as in chan_sync).
    let n: &'static AtomicI32 = alloc::boxed::Box::leak(alloc::boxed::Box::new(AtomicI32::new(0)));
    let v = best_of_3(|| {
        n.store(OPS / CALLS_PER_SCHED, Ordering::Relaxed);
        let c = Chan::<bool>::new(2 * procs);
        let myc = Chan::<i32>::new(chan_size);
        let t0 = kernel::nanotime();
        for _ in 0..procs {
            let (c1, myc1) = (c.clone(), myc.clone());
            kernel::go(move || {
                while n.fetch_sub(1, Ordering::Relaxed) > 0 {
                    for _ in 0..CALLS_PER_SCHED {
                        myc1.send(1);
                    }
                }
                myc1.send(0);
                c1.send(true);
            });
            let (c2, myc2) = (c.clone(), myc.clone());
            kernel::go(move || {
                while myc2.recv() != Some(0) {}
                c2.send(true);
            });
        }
        for _ in 0..2 * procs {
            c.recv();
        }
        let dt = kernel::nanotime() - t0;
        dt as f64 / OPS as f64
    });
    report(name, v, "ns/op");
}

fn chan_prod_cons_0() {
    prod_cons(0, "ChanProdCons0");
}
fn chan_prod_cons_10() {
    prod_cons(10, "ChanProdCons10");
}
fn chan_prod_cons_100() {
    prod_cons(100, "ChanProdCons100");
}

/// Round trips of one value between two goroutines over two unbuffered
/// channels. Each hand-off readies the partner into `runnext`, so on one P
/// the pair runs back to back without touching any other queue.
fn pingpong_ns(rounds: u64) -> u64 {
    let ping = Chan::<u64>::new(0);
    let pong = Chan::<u64>::new(0);
    let (ping2, pong2) = (ping.clone(), pong.clone());
    kernel::go(move || {
        while let Some(v) = ping2.recv() {
            pong2.send(v + 1);
        }
    });
    let t0 = kernel::nanotime();
    let mut v = 0;
    for _ in 0..rounds {
        ping.send(v);
        v = pong.recv().unwrap();
    }
    let dt = kernel::nanotime() - t0;
    assert_eq!(v, rounds);
    ping.close();
    dt
}

fn chan_pingpong() {
    const ROUNDS: u64 = 50_000;
    let procs = kernel::current_gomaxprocs();
    let all = best_of_3(|| pingpong_ns(ROUNDS) as f64 / ROUNDS as f64);
    report("ChanPingPong", all, "ns/roundtrip");
    let prev = kernel::gomaxprocs(1).unwrap();
    let one = best_of_3(|| pingpong_ns(ROUNDS) as f64 / ROUNDS as f64);
    kernel::gomaxprocs(prev).unwrap();
    report("ChanPingPong_p1", one, "ns/roundtrip");
    // > 1: a round trip across Ps costs more than on one P (wake-ups).
    report("ChanPingPong_ratio", all / one, &alloc::format!("p{procs}/p1"));
}

/// BenchmarkPingPongHog: on one P, a ping-pong pair shares the P with a
/// goroutine that spins on a non-blocking receive. The pair hands the P
/// back and forth through `runnext`, inheriting one time slice, so the hog
/// only runs when sysmon preempts the chain; the ratio to the plain
/// ping-pong on one P shows what the hog costs.
fn ping_pong_hog() {
    const N: u64 = 20_000;
    let prev = kernel::gomaxprocs(1).unwrap();
    let base = pingpong_ns(N);
    let stop = Chan::<bool>::new(0);
    let done = Chan::<bool>::new(0);
    {
        let (stop, done) = (stop.clone(), done.clone());
        kernel::go(move || loop {
            select! {
                recv(stop) -> _ => {
                    done.send(true);
                    return;
                },
                default => {}
            }
        });
    }
    let ping = Chan::<bool>::new(0);
    let pong = Chan::<bool>::new(0);
    {
        let (ping, pong, stop, done) = (ping.clone(), pong.clone(), stop.clone(), done.clone());
        kernel::go(move || {
            for _ in 0..N {
                pong.send(ping.recv().unwrap());
            }
            stop.close();
            done.send(true);
        });
    }
    {
        let (ping, pong, done) = (ping.clone(), pong.clone(), done.clone());
        kernel::go(move || {
            for _ in 0..N {
                ping.send(pong.recv().unwrap());
            }
            done.send(true);
        });
    }
    let t0 = kernel::nanotime();
    ping.send(true); // start the ping-pong
    // Wait for the end (Go: `<-stop`), then let the last ponger exit.
    let _ = stop.recv();
    let dt = kernel::nanotime() - t0;
    let _ = ping.recv();
    for _ in 0..3 {
        done.recv();
    }
    kernel::gomaxprocs(prev).unwrap();
    report("PingPongHog", dt as f64 / N as f64, "ns/op");
    report("PingPongHog_ratio", dt as f64 / base as f64, "hog/no-hog");
}

// ---- BenchmarkMatmult ----------------------------------------------------------

/// An n x n matrix of integers (the kernel's hot paths stay integer; Go's
/// benchmark uses float64). Atomics with relaxed loads and stores compile
/// to plain moves and let goroutines write disjoint blocks of C.
struct Matrix {
    n: usize,
    a: Vec<AtomicI64>,
}

impl Matrix {
    fn new(n: usize, f: impl Fn(usize, usize) -> i64) -> Self {
        let mut a = Vec::with_capacity(n * n);
        for i in 0..n {
            for j in 0..n {
                a.push(AtomicI64::new(f(i, j)));
            }
        }
        Matrix { n, a }
    }
    fn get(&self, i: usize, j: usize) -> i64 {
        // Relaxed: each goroutine writes a disjoint block; the done channel
        // orders its writes before the parent's reads.
        self.a[i * self.n + j].load(Ordering::Relaxed)
    }
    fn add(&self, i: usize, j: usize, v: i64) {
        // Relaxed: as in get (a load and a store, not an atomic RMW: only
        // one goroutine writes this element at a time).
        let e = &self.a[i * self.n + j];
        e.store(e.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
struct Mats {
    a: &'static Matrix,
    b: &'static Matrix,
    c: &'static Matrix,
}

/// Go's recursive matmult: split the largest of the i and j dimensions in
/// two, run one half in a new goroutine (waiting for it on a channel), and
/// split k sequentially (its halves write the same C elements).
#[allow(clippy::too_many_arguments)]
fn matmult(done: Option<Chan<()>>, m: Mats, i0: usize, i1: usize, j0: usize, j1: usize, k0: usize, k1: usize, threshold: usize) {
    let (di, dj, dk) = (i1 - i0, j1 - j0, k1 - k0);
    if di >= dj && di >= dk && di >= threshold {
        let mi = i0 + di / 2;
        let done1 = Chan::<()>::new(1);
        let d = done1.clone();
        kernel::go(move || matmult(Some(d), m, i0, mi, j0, j1, k0, k1, threshold));
        matmult(None, m, mi, i1, j0, j1, k0, k1, threshold);
        done1.recv();
    } else if dj >= dk && dj >= threshold {
        let mj = j0 + dj / 2;
        let done1 = Chan::<()>::new(1);
        let d = done1.clone();
        kernel::go(move || matmult(Some(d), m, i0, i1, j0, mj, k0, k1, threshold));
        matmult(None, m, i0, i1, mj, j1, k0, k1, threshold);
        done1.recv();
    } else if dk >= threshold {
        let mk = k0 + dk / 2;
        matmult(None, m, i0, i1, j0, j1, k0, mk, threshold);
        matmult(None, m, i0, i1, j0, j1, mk, k1, threshold);
    } else {
        for i in i0..i1 {
            for j in j0..j1 {
                let mut s = 0i64;
                for k in k0..k1 {
                    s = s.wrapping_add(m.a.get(i, k).wrapping_mul(m.b.get(k, j)));
                }
                m.c.add(i, j, s);
            }
        }
    }
    if let Some(d) = done {
        d.send(());
    }
}

/// One product into `m.c` (zeroed first); its time, checked.
fn matmult_run(m: Mats, n: usize) -> u64 {
    for e in m.c.a.iter() {
        e.store(0, Ordering::Relaxed);
    }
    let t0 = kernel::nanotime();
    matmult(None, m, 0, n, 0, n, 0, n, 8);
    let dt = kernel::nanotime() - t0;
    // Check one element against the naive product.
    let (i, j) = (n / 3, n - 1);
    let want: i64 = (0..n).map(|k| m.a.get(i, k) * m.b.get(k, j)).sum();
    assert_eq!(m.c.get(i, j), want, "matmult gave a wrong product");
    dt
}

/// The product on all Ps and on one, each the best of three runs, the two
/// interleaved (all, one, all, ..), as `forkjoin` measures its speed-up: a
/// single run of each read the 2-core speed-up from 1.56x to 1.93x over
/// 8 rounds of `compare.sh`.
fn matmult_bench() {
    const N: usize = 128;
    let leak = |m: Matrix| -> &'static Matrix { alloc::boxed::Box::leak(alloc::boxed::Box::new(m)) };
    let m = Mats {
        a: leak(Matrix::new(N, |i, j| (i * 3 + j) as i64 % 7 - 3)),
        b: leak(Matrix::new(N, |i, j| (i + 5 * j) as i64 % 5 - 2)),
        c: leak(Matrix::new(N, |_, _| 0)),
    };
    let procs = kernel::current_gomaxprocs();
    // Warm up: the heap pages and goroutine stacks get mapped here, not in
    // the measured runs.
    matmult_run(m, N);
    let (mut all, mut one) = (u64::MAX, u64::MAX);
    for _ in 0..3 {
        all = all.min(matmult_run(m, N));
        let prev = kernel::gomaxprocs(1).unwrap();
        one = one.min(matmult_run(m, N));
        kernel::gomaxprocs(prev).unwrap();
    }
    report("Matmult", all as f64 / (N * N * N) as f64, "ns/op");
    report("Matmult_p1", one as f64 / (N * N * N) as f64, "ns/op");
    // The speed-up of the fork-join on all Ps over one P.
    report("Matmult_speedup", one as f64 / all as f64, &alloc::format!("p1/p{procs}"));
}

/// Round trips between two goroutines through two semaphores (each
/// round: release one, sleep on the other), with gomaxprocs=1 so that
/// every round parks and readies. `a` and `b` hash to the same semaphore
/// root as `crowd`.
fn sema_pingpong_ns(a: &'static AtomicU32, b: &'static AtomicU32, rounds: u64) -> u64 {
    use kernel::sync::sema::{semacquire, semrelease};
    let done = Chan::<()>::new(0);
    let done2 = done.clone();
    kernel::go(move || {
        for _ in 0..rounds {
            semacquire(a);
            semrelease(b);
        }
        done2.send(());
    });
    let t0 = kernel::nanotime();
    for _ in 0..rounds {
        semrelease(a);
        semacquire(b);
    }
    let dt = kernel::nanotime() - t0;
    done.recv();
    dt
}

/// Issue 16: a semaphore ping-pong alone, then with 20 000 goroutines
/// asleep on another address of the same root. Go keeps a tree keyed by
/// address per root, so the crowd costs a few tree levels, not a walk past
/// 20 000 waiters with interrupts off.
fn sema_pingpong() {
    use kernel::sync::sema::{semacquire, semrelease, SEMTABSZ};
    const ROUNDS: u64 = 5_000;
    const CROWD: u32 = 20_000;
    // Addresses SEMTABSZ * 8 bytes apart share a root.
    let stride = SEMTABSZ * 8 / core::mem::size_of::<AtomicU32>();
    let words: &'static [AtomicU32] =
        alloc::boxed::Box::leak((0..3 * stride + 1).map(|_| AtomicU32::new(0)).collect::<Vec<_>>().into_boxed_slice());
    let (crowd, a, b) = (&words[0], &words[stride], &words[2 * stride]);
    let root = kernel::sync::sema::semroot_index;
    assert!(root(crowd) == root(a) && root(a) == root(b), "the three semaphores must share a root");
    let prev = kernel::gomaxprocs(1).unwrap();
    sema_pingpong_ns(a, b, 500); // warm up (sudog caches, tree nodes)
    let alone = sema_pingpong_ns(a, b, ROUNDS);
    let gone = Chan::<()>::new(CROWD as usize);
    for _ in 0..CROWD {
        let gone = gone.clone();
        kernel::go(move || {
            semacquire(crowd);
            gone.send(());
        });
    }
    // Let every one of them reach its sleep.
    while kernel::num_goroutine() > 1 + CROWD as usize && gone.is_empty() {
        kernel::gosched();
    }
    kernel::sleep(10_000_000);
    let crowded = sema_pingpong_ns(a, b, ROUNDS);
    for _ in 0..CROWD {
        semrelease(crowd);
    }
    for _ in 0..CROWD {
        gone.recv();
    }
    kernel::gomaxprocs(prev).unwrap();
    report("SemaPingPong", alone as f64 / ROUNDS as f64, "ns/roundtrip");
    report("SemaPingPong_crowded", crowded as f64 / ROUNDS as f64, "ns/roundtrip");
    // Near 1 with a tree per root; it was ~100 with one list per root.
    report("SemaPingPong_crowded_ratio", crowded as f64 / alone as f64, "crowded/alone (20000 waiters on another address)");
}
