//! Loom models of the run queue (ring of 4 slots under `--cfg loom`).
//!
//! Run from /work/main with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p gmp-core --release --lib loom
//! ```
//!
//! The preemption bound defaults to 3 here (set `LOOM_MAX_PREEMPTIONS` to
//! override). Every model ends by draining all queues and checking that each
//! G was seen exactly once: nothing lost, nothing duplicated, whatever the
//! interleaving and whatever stale values the weak loads returned.

use super::*;
use loom::sync::Arc;
use loom::thread;

/// The Gs: bytes of a static array, identified by their offset.
static GS: [u8; 8] = [0; 8];

fn g(i: usize) -> NonNull<u8> {
    NonNull::from(&GS[i])
}

fn idx(p: NonNull<u8>) -> usize {
    p.as_ptr() as usize - GS.as_ptr() as usize
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    check(b, f);
}

/// Runs the model and prints how many interleavings loom explored (so a
/// model that silently explores nothing would show).
fn check(b: loom::model::Builder, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    b.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f()
    });
    let runs = runs.load(StdOrdering::Relaxed);
    println!("loom explored {runs} interleavings");
    assert!(runs > 1, "loom explored a single interleaving: is --cfg loom set?");
}

fn yield_wait() {
    thread::yield_now();
}

/// Counts every G in `seen` plus whatever is left in `queues`, and checks
/// that G `0..n` each appear exactly once.
fn check_exactly_once(n: usize, seen: &[usize], queues: &[&RunQueue<u8>]) {
    let mut count = [0u32; 8];
    for &i in seen {
        count[i] += 1;
    }
    for q in queues {
        // SAFETY: all other threads have been joined; we are the only user.
        unsafe { q.local() }.drain(|p| count[idx(p)] += 1);
    }
    for (i, &c) in count.iter().enumerate() {
        let want = u32::from(i < n);
        assert_eq!(c, want, "G{i} seen {c} times (all counts: {count:?})");
    }
}

/// A thief that steals `times` times (runnext allowed) and runs everything
/// it got.
fn steal_all(victim: &RunQueue<u8>, times: usize) -> Vec<usize> {
    let mine: RunQueue<u8> = RunQueue::new();
    // SAFETY: `mine` is local to this thread.
    let dst = unsafe { mine.local() };
    let mut got = Vec::new();
    for _ in 0..times {
        if let Some(p) = victim.stealer().steal_into(&dst, true, yield_wait) {
            got.push(idx(p));
        }
        while let Some((p, _)) = dst.get() {
            got.push(idx(p));
        }
    }
    got
}

/// Owner puts (plain and runnext, which kicks the old runnext to the ring)
/// and gets, while a thief steals.
#[test]
fn loom_put_get_vs_steal() {
    model(|| {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            assert!(local.put(g(0), false, false, 0).is_none());
            assert!(local.put(g(1), false, false, 0).is_none());
        }
        let thief = {
            let q = q.clone();
            thread::spawn(move || steal_all(&q, 2))
        };
        // SAFETY: this thread is the owner; the thief only uses `stealer`.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        let mut get = |local: &Local<'_, u8>| {
            if let Some((p, _)) = local.get() {
                seen.push(idx(p));
            }
        };
        assert!(local.put(g(2), true, false, 0).is_none());
        assert!(local.put(g(3), true, false, 0).is_none());
        get(&local);
        get(&local);
        assert!(local.put(g(4), false, false, 0).is_none());
        get(&local);
        seen.extend(thief.join().unwrap());
        check_exactly_once(5, &seen, &[&q]);
    });
}

/// The ring is full; the owner's put overflows (runqputslow) while a thief
/// steals half. Either the overflow CAS wins, or it fails and the fast path
/// is retried.
#[test]
fn loom_overflow_vs_steal() {
    model(|| {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            for i in 0..RUNQ_SIZE as usize {
                assert!(local.put(g(i), false, false, 0).is_none());
            }
        }
        let thief = {
            let q = q.clone();
            thread::spawn(move || steal_all(&q, 2))
        };
        // SAFETY: this thread is the owner.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        let n = RUNQ_SIZE as usize;
        for i in n..n + 2 {
            if let Some(batch) = local.put(g(i), false, false, 0) {
                assert_eq!(batch.len(), OVERFLOW_CAP);
                seen.extend(batch.iter().map(idx));
            }
        }
        if let Some((p, _)) = local.get() {
            seen.push(idx(p));
        }
        seen.extend(thief.join().unwrap());
        check_exactly_once(n + 2, &seen, &[&q]);
    });
}

/// Stealing half against the owner (lab 2): a ring of 3; the owner takes one,
/// puts two more (the second into the slot of the first: the ring has only 4)
/// and takes one again, while a thief steals once. A thief that read a slot
/// the owner has since reused must lose its CAS on `head`. The thief's batch
/// is the older half of what it saw, rounded up, in queue order: consecutive
/// Gs, at most 2 of them, the one it runs being the newest.
#[test]
fn loom_owner_vs_steal_half() {
    model(|| {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            for i in 0..3 {
                assert!(local.put(g(i), false, false, 0).is_none());
            }
        }
        let thief = {
            let q = q.clone();
            thread::spawn(move || {
                let mine: RunQueue<u8> = RunQueue::new();
                // SAFETY: `mine` is local to this thread.
                let dst = unsafe { mine.local() };
                let Some(run) = q.stealer().steal_into(&dst, false, yield_wait) else {
                    return vec![];
                };
                let mut batch: Vec<usize> = std::iter::from_fn(|| dst.get()).map(|(p, _)| idx(p)).collect();
                batch.push(idx(run));
                assert!(batch.len() <= 2, "the thief took {batch:?}: more than half of a ring of at most 4");
                assert!(
                    batch.windows(2).all(|w| w[1] == w[0] + 1),
                    "the thief's batch {batch:?} is not in queue order"
                );
                batch
            })
        };
        // SAFETY: this thread is the owner; the thief only uses `stealer`.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        if let Some((p, _)) = local.get() {
            seen.push(idx(p));
        }
        assert!(local.put(g(3), false, false, 0).is_none());
        assert!(local.put(g(4), false, false, 0).is_none());
        if let Some((p, _)) = local.get() {
            seen.push(idx(p));
        }
        seen.extend(thief.join().unwrap());
        check_exactly_once(5, &seen, &[&q]);
    });
}

/// runnext contention: the owner replaces runnext (kicking the old G to the
/// ring) and takes it, while a thief goes for the ring and then runnext.
#[test]
fn loom_runnext_vs_steal() {
    model(|| {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            assert!(local.put(g(0), true, false, 0).is_none());
        }
        let thief = {
            let q = q.clone();
            thread::spawn(move || steal_all(&q, 1))
        };
        // SAFETY: this thread is the owner.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        assert!(local.put(g(1), true, false, 0).is_none());
        if let Some((p, _)) = local.get() {
            seen.push(idx(p));
        }
        seen.extend(thief.join().unwrap());
        check_exactly_once(2, &seen, &[&q]);
    });
}

/// Two thieves and the owner's get on a queue of three: consumers racing on
/// `head` never take the same G twice.
#[test]
fn loom_two_thieves() {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        // Three threads: keep the bound at 2 so the model stays small.
        b.preemption_bound = Some(2);
    }
    check(b, || {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            for i in 0..3 {
                assert!(local.put(g(i), false, false, 0).is_none());
            }
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || steal_all(&q, 1))
            })
            .collect();
        // SAFETY: this thread is the owner.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        if let Some((p, _)) = local.get() {
            seen.push(idx(p));
        }
        for t in thieves {
            seen.extend(t.join().unwrap());
        }
        check_exactly_once(3, &seen, &[&q]);
    });
}

/// `put_batch` (globrunqget's refill) and `drain` (procresize) by the owner
/// while a thief steals twice.
#[test]
fn loom_put_batch_and_drain_vs_steal() {
    model(|| {
        let q = Arc::new(RunQueue::<u8>::new());
        {
            // SAFETY: no other thread exists yet.
            let local = unsafe { q.local() };
            assert!(local.put(g(0), false, false, 0).is_none());
        }
        let thief = {
            let q = q.clone();
            thread::spawn(move || steal_all(&q, 2))
        };
        // SAFETY: this thread is the owner.
        let local = unsafe { q.local() };
        let mut seen = Vec::new();
        // Offer 4 Gs; at most RUNQ_SIZE - len fit, the rest stay in `it`.
        let mut it = (1..5).map(g);
        local.put_batch(&mut it, None);
        seen.extend(it.map(idx));
        assert!(local.put(g(5), true, false, 0).is_none());
        local.drain(|p| seen.push(idx(p)));
        seen.extend(thief.join().unwrap());
        check_exactly_once(6, &seen, &[&q]);
    });
}

/// Go's TestSchedLocalQueueEmpty as a model: while the owner puts a second G
/// and takes one, the queue always holds at least one G, so `is_empty` must
/// never return true. All four (next0, next1) combinations.
#[test]
fn loom_runqempty_never_lies() {
    for (next0, next1) in [(false, false), (false, true), (true, false), (true, true)] {
        model(move || {
            let q = Arc::new(RunQueue::<u8>::new());
            {
                // SAFETY: no other thread exists yet.
                let local = unsafe { q.local() };
                assert!(local.put(g(0), next0, false, 0).is_none());
            }
            let observer = {
                let q = q.clone();
                thread::spawn(move || {
                    assert!(
                        !q.stealer().is_empty(),
                        "runqempty lied (next0={next0}, next1={next1})"
                    );
                })
            };
            // SAFETY: this thread is the owner.
            let local = unsafe { q.local() };
            assert!(local.put(g(1), next1, false, 0).is_none());
            let (p, _) = local.get().expect("two Gs were put");
            observer.join().unwrap();
            check_exactly_once(2, &[idx(p)], &[&q]);
        });
    }
}
