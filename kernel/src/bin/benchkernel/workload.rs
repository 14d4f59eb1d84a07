//! Workload benchmarks: the shapes users run that the Go-ported
//! micro-benchmarks do not cover. Each has the same shape in `bench/go`
//! (same name, same unit), so `bench/compare.sh` puts them side by side.
//!
//! - `mutex_contended`: 4 goroutines per P take turns on one `Mutex`
//!   (Go's BenchmarkMutex shape, contended): ns per lock/unlock.
//! - `worker_pool`: one feeder, 4 workers per P, jobs and results through
//!   buffered channels: ns per job.
//! - `spawn_tree`: a binary tree of goroutines, each joining its two
//!   children with a `WaitGroup`: ns per goroutine.
//! - `token_ring`: 503 goroutines in a ring of unbuffered channels pass a
//!   counter around (the shoot-out's thread-ring): ns per hop.
//!
//! Sizes are fixed, a run of about 100 ms; each figure is the best of three
//! runs, as in the Go baseline (see `main.rs`).
use crate::report;
use crate::sched::best_of_3;
use alloc::sync::Arc;
use alloc::vec::Vec;
use kernel::{Chan, Mutex, WaitGroup};

pub const BENCHES: &[crate::Bench] = &[
    ("mutex_contended", mutex_contended),
    ("worker_pool", worker_pool),
    ("spawn_tree", spawn_tree),
    ("token_ring", token_ring),
    ("heap_alloc", heap_alloc),
];

/// Goroutines per P in the contended benchmarks.
const PER_P: usize = 4;

fn procs() -> usize {
    kernel::current_gomaxprocs() as usize
}

/// `PER_P * gomaxprocs` goroutines each lock, bump a shared counter and
/// unlock, `OPS` times in all. The final count checks that no increment
/// was lost (a broken mutex shows here, not as a fast figure).
fn mutex_contended() {
    const OPS: usize = 2_000_000;
    let v = best_of_3(|| {
        let g = PER_P * procs();
        let m = Arc::new(Mutex::new(0u64));
        let wg = Arc::new(WaitGroup::new());
        wg.add(g as i32);
        let t0 = kernel::nanotime();
        for i in 0..g {
            let (m, wg) = (m.clone(), wg.clone());
            let mine = OPS / g + usize::from(i < OPS % g);
            kernel::go(move || {
                for _ in 0..mine {
                    *m.lock() += 1;
                }
                wg.done();
            });
        }
        wg.wait();
        let dt = kernel::nanotime() - t0;
        assert_eq!(*m.lock(), OPS as u64, "mutex_contended lost increments");
        dt as f64 / OPS as f64
    });
    report("mutex_contended", v, "ns/op");
}

/// A little work per job, the same loop as the Go side's `work`: enough
/// that the workers are not pure channel traffic, small next to a hand-off.
#[inline(never)]
fn work(x: u64) -> u64 {
    let mut h = x | 1;
    for _ in 0..32 {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
    }
    h
}

/// One feeder sends `JOBS` numbers into a buffered channel; `PER_P *
/// gomaxprocs` workers take them, do `work` and send the result into a
/// second buffered channel, which the benchmark goroutine drains. The sum
/// of the results is checked against a serial computation.
fn worker_pool() {
    const JOBS: u64 = 200_000;
    const CAP: usize = 128;
    let want = (0..JOBS).fold(0u64, |s, j| s.wrapping_add(work(j)));
    let v = best_of_3(|| {
        let workers = PER_P * procs();
        let jobs = Chan::<u64>::new(CAP);
        let results = Chan::<u64>::new(CAP);
        let t0 = kernel::nanotime();
        let feed = jobs.clone();
        kernel::go(move || {
            for j in 0..JOBS {
                feed.send(j);
            }
            feed.close();
        });
        for _ in 0..workers {
            let (jobs, results) = (jobs.clone(), results.clone());
            kernel::go(move || {
                while let Some(j) = jobs.recv() {
                    results.send(work(j));
                }
            });
        }
        let mut sum = 0u64;
        for _ in 0..JOBS {
            sum = sum.wrapping_add(results.recv().unwrap());
        }
        let dt = kernel::nanotime() - t0;
        assert_eq!(sum, want, "worker_pool lost or changed a result");
        dt as f64 / JOBS as f64
    });
    report("worker_pool", v, "ns/op");
}

/// A node at `depth` > 0 spawns two children at `depth - 1` and waits for
/// both with a WaitGroup; it returns how many goroutines its subtree ran.
fn tree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let wg = Arc::new(WaitGroup::new());
    let counts = Arc::new([core::sync::atomic::AtomicU64::new(0), core::sync::atomic::AtomicU64::new(0)]);
    wg.add(2);
    for side in 0..2 {
        let (wg, counts) = (wg.clone(), counts.clone());
        kernel::go(move || {
            counts[side].store(tree(depth - 1), core::sync::atomic::Ordering::Relaxed);
            wg.done();
        });
    }
    wg.wait();
    // Relaxed: wg.wait() acquires what each child's done() released.
    1 + counts[0].load(core::sync::atomic::Ordering::Relaxed) + counts[1].load(core::sync::atomic::Ordering::Relaxed)
}

/// Spawn trees of depth 11 (4095 goroutines each; up to 2048 leaves alive
/// at once) from one goroutine.
fn spawn_tree() {
    const DEPTH: u32 = 11;
    const TREES: u64 = 16;
    let nodes = (1u64 << (DEPTH + 1)) - 1;
    let v = best_of_3(|| {
        let t0 = kernel::nanotime();
        for _ in 0..TREES {
            let done = Chan::<u64>::new(1);
            let d = done.clone();
            kernel::go(move || d.send(tree(DEPTH)));
            assert_eq!(done.recv(), Some(nodes), "spawn_tree lost a goroutine");
        }
        let dt = kernel::nanotime() - t0;
        dt as f64 / (TREES * nodes) as f64
    });
    report("spawn_tree", v, "ns/op");
}

/// 503 goroutines, each receiving from its own unbuffered channel and
/// sending to the next one's. The benchmark goroutine injects a counter of
/// `HOPS`; each hop decrements it, and whoever sees it reach zero reports.
fn token_ring() {
    const RING: usize = 503;
    const HOPS: u64 = 120_000;
    let v = best_of_3(|| {
        let chans: Vec<Chan<u64>> = (0..RING).map(|_| Chan::new(0)).collect();
        let done = Chan::<usize>::new(1);
        let t0 = kernel::nanotime();
        for i in 0..RING {
            let (inbox, next, done) = (chans[i].clone(), chans[(i + 1) % RING].clone(), done.clone());
            kernel::go(move || {
                while let Some(t) = inbox.recv() {
                    if t == 0 {
                        done.send(i);
                        break;
                    }
                    next.send(t - 1);
                }
            });
        }
        chans[0].send(HOPS);
        let last = done.recv().unwrap();
        let dt = kernel::nanotime() - t0;
        // The counter starts at goroutine 0 and moves one goroutine per hop.
        assert_eq!(last, (HOPS as usize) % RING, "token_ring: the token took a wrong path");
        for c in &chans {
            c.close();
        }
        dt as f64 / HOPS as f64
    });
    report("token_ring", v, "ns/op");
}

/// The kernel heap on its own: a `Box` of 32 bytes allocated and the
/// oldest of `LIVE` live ones freed, on every P at once (`heap_alloc`, ns
/// per allocation and free). Kernel-only: Go's allocator is not comparable
/// in one figure.
pub fn heap_alloc() {
    use alloc::boxed::Box;
    use alloc::collections::VecDeque;
    const OPS: usize = 40_000;
    const LIVE: usize = 1000;
    let v = best_of_3(|| {
        let g = procs();
        let wg = Arc::new(WaitGroup::new());
        wg.add(g as i32);
        let t0 = kernel::nanotime();
        for _ in 0..g {
            let wg = wg.clone();
            kernel::go(move || {
                let mut q: VecDeque<Box<[u64; 4]>> = VecDeque::with_capacity(LIVE + 1);
                for i in 0..OPS / g {
                    q.push_back(Box::new([i as u64; 4]));
                    if q.len() > LIVE {
                        core::hint::black_box(q.pop_front());
                    }
                }
                wg.done();
            });
        }
        wg.wait();
        (kernel::nanotime() - t0) as f64 / (OPS / g * g) as f64
    });
    report("heap_alloc", v, "ns/op");
}
