//! Host tests of the run queue: ports of Go's TestSchedLocalQueue,
//! TestSchedLocalQueueSteal and TestSchedLocalQueueEmpty, the overflow and
//! runnext rules, stealing half in order, a two-thread stress test, and a
//! proptest against a model.

use super::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as StdOrdering};
use std::sync::Arc;
use std::thread;

/// A stand-in G: the queue only moves pointers, so a G is an index into a
/// leaked array and is identified by its address.
#[derive(Debug)]
struct G {
    id: usize,
}

/// The first `n` of one shared, leaked array of Gs (`G { id: i }` at index i).
fn make_gs(n: usize) -> &'static [G] {
    static ALL: std::sync::OnceLock<&'static [G]> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        Box::leak((0..MAX_GS).map(|id| G { id }).collect::<Vec<_>>().into_boxed_slice())
    });
    &all[..n]
}

const MAX_GS: usize = 200_000;

fn gp(g: &G) -> NonNull<G> {
    NonNull::from(g)
}

fn id(g: NonNull<G>) -> usize {
    // SAFETY: every G in these tests lives in a leaked ('static) array.
    unsafe { g.as_ref() }.id
}

fn no_wait() {}

/// Spins until `cond` holds, yielding now and then so that a busy host (the
/// tests run in parallel on two cores) does not starve the other thread.
fn spin_until(mut cond: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !cond() {
        spins += 1;
        if spins % 64 == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Go: TestSchedLocalQueue. For every length `i`, put the same G `i`
/// times, get it back `i` times, and the queue is empty before and after.
#[test]
fn sched_local_queue() {
    let gs = make_gs(RUNQ_SIZE as usize);
    let q = RunQueue::new();
    // SAFETY: this test is the only user of `q`.
    let local = unsafe { q.local() };
    for i in 0..RUNQ_SIZE as usize {
        assert!(local.get().is_none(), "runq is not empty initially");
        for _ in 0..i {
            assert!(local.put(gp(&gs[i]), false, false, 0).is_none());
        }
        assert_eq!(local.len(), i as u32);
        for j in 0..i {
            let (g, inherit) = local.get().unwrap_or_else(|| panic!("missing element {i}/{j}"));
            assert_eq!(id(g), i, "bad element at iter {i}/{j}");
            assert!(!inherit);
        }
        assert!(local.get().is_none(), "runq is not empty afterwards");
        assert!(local.is_empty());
    }
}

/// Go: TestSchedLocalQueueSteal (single-threaded, as in Go). With `i` Gs on
/// the victim, a steal returns one and leaves the rest of its half on the
/// thief: the thief ends up with `i/2` or `i/2 + 1`, and every G is seen
/// exactly once.
#[test]
fn sched_local_queue_steal() {
    let gs = make_gs(RUNQ_SIZE as usize);
    let (q1, q2) = (RunQueue::new(), RunQueue::new());
    // SAFETY: this test is the only user of both queues.
    let (p1, p2) = unsafe { (q1.local(), q2.local()) };
    for i in 0..RUNQ_SIZE as usize {
        let mut seen = vec![0u32; i];
        for g in &gs[..i] {
            assert!(p1.put(gp(g), false, false, 0).is_none());
        }
        let mut stolen = 0;
        if let Some(g) = q1.stealer().steal_into(&p2, true, no_wait) {
            stolen += 1;
            seen[id(g)] += 1;
        }
        while let Some((g, _)) = p2.get() {
            stolen += 1;
            seen[id(g)] += 1;
        }
        while let Some((g, _)) = p1.get() {
            seen[id(g)] += 1;
        }
        for (j, &count) in seen.iter().enumerate() {
            assert_eq!(count, 1, "bad element {j} ({count}) at iteration {i}");
        }
        assert!(
            stolen == i / 2 || stolen == i / 2 + 1,
            "bad steal {stolen}, want {} or {}, iteration {i}",
            i / 2,
            i / 2 + 1
        );
    }
}

/// Go: TestSchedLocalQueueEmpty. `is_empty` must never report a queue with
/// a G in it as empty, in particular while `get` takes `runnext` right
/// after `put` added a G to the ring (or kicked the old runnext there).
///
/// Go starts a goroutine per iteration; we keep one observer thread and
/// line both threads up with a spin handshake at every iteration.
#[test]
fn sched_local_queue_empty() {
    const ITERS: usize = 10_000;
    let gs = make_gs(2);
    let q: Arc<RunQueue<G>> = Arc::new(RunQueue::new());
    // `ready` counts arrivals (2 per iteration); `done` counts observations.
    let ready = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let observer = {
        let (q, ready, done) = (q.clone(), ready.clone(), done.clone());
        thread::spawn(move || {
            for i in 0..ITERS {
                ready.fetch_add(1, StdOrdering::SeqCst);
                spin_until(|| ready.load(StdOrdering::SeqCst) >= 2 * (i + 1));
                assert!(!q.stealer().is_empty(), "queue is empty (iteration {i})");
                done.store(i + 1, StdOrdering::SeqCst);
            }
        })
    };
    // SAFETY: this thread is the only owner; the observer only uses `stealer`.
    let local = unsafe { q.local() };
    for i in 0..ITERS {
        let next0 = i & 1 == 0;
        let next1 = i & 2 == 0;
        assert!(local.put(gp(&gs[0]), next0, false, 0).is_none());
        ready.fetch_add(1, StdOrdering::SeqCst);
        spin_until(|| ready.load(StdOrdering::SeqCst) >= 2 * (i + 1));
        assert!(local.put(gp(&gs[1]), next1, false, 0).is_none());
        assert!(local.get().is_some());
        // Stop waiting if the observer died (it panicked; join reports it).
        spin_until(|| done.load(StdOrdering::SeqCst) > i || observer.is_finished());
        assert!(local.get().is_some());
        assert!(local.is_empty());
    }
    observer.join().expect("observer saw a falsely empty queue");
}

/// A full ring plus one put: `runqputslow` returns the 128 oldest Gs plus the
/// new one, 129 in all, and the ring keeps the 128 newest. Nothing is lost.
#[test]
fn put_overflow_moves_half_plus_one() {
    let n = RUNQ_SIZE as usize;
    let gs = make_gs(n + 2);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    for g in &gs[..n] {
        assert!(local.put(gp(g), false, false, 0).is_none());
    }
    assert_eq!(local.len(), RUNQ_SIZE);
    let batch = local.put(gp(&gs[n]), false, false, 0).expect("full ring must overflow");
    assert_eq!(batch.len(), n / 2 + 1);
    assert_eq!(batch.len(), OVERFLOW_CAP);
    let ids: Vec<usize> = batch.into_iter().map(id).collect();
    let want: Vec<usize> = (0..n / 2).chain([n]).collect();
    assert_eq!(ids, want);
    assert_eq!(local.len(), RUNQ_SIZE / 2);
    let rest: Vec<usize> = std::iter::from_fn(|| local.get()).map(|(g, _)| id(g)).collect();
    assert_eq!(rest, (n / 2..n).collect::<Vec<_>>());

    // With next=true on a full ring the new G takes runnext and the old
    // runnext is the one that overflows (last in the batch).
    for g in &gs[..n] {
        assert!(local.put(gp(g), false, false, 0).is_none());
    }
    assert!(local.put(gp(&gs[n]), true, false, 0).is_none(), "empty runnext: no overflow");
    let batch = local.put(gp(&gs[n + 1]), true, false, 0).expect("overflow");
    assert_eq!(batch.iter().last().map(id), Some(n));
    assert_eq!(batch.len(), OVERFLOW_CAP);
    assert_eq!(local.get().map(|(g, inh)| (id(g), inh)), Some((n + 1, true)));
    let mut count = 0;
    local.drain(|_| count += 1);
    assert_eq!(count, n / 2);
}

/// In `schedrandom` mode the overflow batch is shuffled, but it is still the
/// same 129 Gs.
#[test]
fn put_overflow_randomized_keeps_the_set() {
    let n = RUNQ_SIZE as usize;
    let gs = make_gs(n + 1);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    for g in &gs[..n] {
        assert!(local.put(gp(g), false, true, 1).is_none());
    }
    let batch = local.put(gp(&gs[n]), false, true, 12345).expect("overflow");
    let mut ids: Vec<usize> = batch.iter().map(id).collect();
    assert_ne!(ids, (0..n / 2).chain([n]).collect::<Vec<_>>(), "not shuffled");
    ids.sort_unstable();
    assert_eq!(ids, (0..n / 2).chain([n]).collect::<Vec<_>>());
}

/// `put(next=true)` replaces runnext and kicks the old one to the tail; a G
/// from runnext inherits the time slice.
#[test]
fn runnext_replacement() {
    let gs = make_gs(4);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    assert!(local.put(gp(&gs[0]), false, false, 0).is_none()); // ring: 0
    assert!(local.put(gp(&gs[1]), true, false, 0).is_none()); // runnext: 1
    assert_eq!(local.len(), 1);
    assert!(!local.is_empty());
    assert!(local.put(gp(&gs[2]), true, false, 0).is_none()); // runnext: 2, ring: 0 1
    assert_eq!(local.len(), 2);
    assert!(local.put(gp(&gs[3]), false, false, 0).is_none()); // ring: 0 1 3
    let got: Vec<(usize, bool)> =
        std::iter::from_fn(|| local.get()).map(|(g, inh)| (id(g), inh)).collect();
    assert_eq!(got, [(2, true), (0, false), (1, false), (3, false)]);
    assert!(local.is_empty());
}

/// `randomize_next`: an even `rand` turns next into a plain put, an odd one
/// keeps it.
#[test]
fn randomize_next_flips_a_coin() {
    let gs = make_gs(2);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    assert!(local.put(gp(&gs[0]), true, true, 2).is_none());
    assert_eq!(local.len(), 1, "even rand: went to the ring");
    assert!(local.put(gp(&gs[1]), true, true, 3).is_none());
    assert_eq!(local.len(), 1, "odd rand: went to runnext");
    assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((1, true)));
    assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((0, false)));
    // Without randomize_next the rand value is ignored.
    assert!(local.put(gp(&gs[0]), true, false, 2).is_none());
    assert_eq!(local.len(), 0);
    assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((0, true)));
}

#[test]
fn drain_takes_runnext_then_ring() {
    let gs = make_gs(5);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    let mut out = vec![];
    local.drain(|g| out.push(id(g)));
    assert!(out.is_empty());
    for g in &gs[..4] {
        assert!(local.put(gp(g), false, false, 0).is_none());
    }
    assert!(local.put(gp(&gs[4]), true, false, 0).is_none());
    assert_eq!(local.get().map(|(g, _)| id(g)), Some(4));
    assert_eq!(local.get().map(|(g, _)| id(g)), Some(0));
    assert!(local.put(gp(&gs[0]), true, false, 0).is_none());
    local.drain(|g| out.push(id(g)));
    assert_eq!(out, [0, 1, 2, 3]);
    assert!(local.is_empty());
    assert!(local.get().is_none());
}

#[test]
fn put_batch_fills_up_and_leaves_the_rest() {
    let n = RUNQ_SIZE as usize;
    let gs = make_gs(n + 10);
    let q = RunQueue::new();
    // SAFETY: sole user.
    let local = unsafe { q.local() };
    for g in &gs[..10] {
        assert!(local.put(gp(g), false, false, 0).is_none());
    }
    let mut it = gs[10..].iter().map(gp);
    let put = local.put_batch(&mut it, None);
    assert_eq!(put, RUNQ_SIZE - 10);
    assert_eq!(local.len(), RUNQ_SIZE);
    let left: Vec<usize> = it.map(id).collect();
    assert_eq!(left, (n..n + 10).collect::<Vec<_>>(), "no G may be taken and dropped");
    let all: Vec<usize> = std::iter::from_fn(|| local.get()).map(|(g, _)| id(g)).collect();
    assert_eq!(all, (0..n).collect::<Vec<_>>());
    // An empty iterator publishes nothing.
    assert_eq!(local.put_batch(&mut std::iter::empty(), None), 0);
    // Shuffled: same set.
    let mut rng = FastRand::new(9);
    let mut it = gs[..100].iter().map(gp);
    assert_eq!(local.put_batch(&mut it, Some(&mut rng)), 100);
    let mut got: Vec<usize> = std::iter::from_fn(|| local.get()).map(|(g, _)| id(g)).collect();
    assert_ne!(got, (0..100).collect::<Vec<_>>(), "not shuffled");
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn steal_runnext_only_when_asked() {
    let gs = make_gs(1);
    let (q1, q2) = (RunQueue::new(), RunQueue::new());
    // SAFETY: sole user of both.
    let (p1, p2) = unsafe { (q1.local(), q2.local()) };
    assert!(p1.put(gp(&gs[0]), true, false, 0).is_none());
    let waited = std::cell::Cell::new(0);
    let wait = || waited.set(waited.get() + 1);
    assert!(q1.stealer().steal_into(&p2, false, wait).is_none());
    assert_eq!(waited.get(), 0);
    assert!(!q1.stealer().is_empty());
    let g = q1.stealer().steal_into(&p2, true, wait).expect("runnext stolen");
    assert_eq!(id(g), 0);
    assert_eq!(waited.get(), 1);
    assert!(q1.stealer().is_empty());
    assert!(p2.is_empty(), "the stolen G is returned, not queued");
    assert!(p1.get().is_none());
}

/// Only the ring is stolen while it is non-empty; runnext stays.
#[test]
fn steal_prefers_the_ring() {
    let gs = make_gs(4);
    let (q1, q2) = (RunQueue::new(), RunQueue::new());
    // SAFETY: sole user of both.
    let (p1, p2) = unsafe { (q1.local(), q2.local()) };
    for g in &gs[..3] {
        assert!(p1.put(gp(g), false, false, 0).is_none());
    }
    assert!(p1.put(gp(&gs[3]), true, false, 0).is_none());
    // 3 in the ring: steal 3 - 1 = 2, return the second, queue the first.
    let g = q1.stealer().steal_into(&p2, true, || panic!("must not wait")).unwrap();
    assert_eq!(id(g), 1);
    assert_eq!(p2.get().map(|(g, i)| (id(g), i)), Some((0, false)));
    assert_eq!(p1.get().map(|(g, i)| (id(g), i)), Some((3, true)));
    assert_eq!(p1.get().map(|(g, i)| (id(g), i)), Some((2, false)));
}

#[test]
#[should_panic(expected = "runqsteal: runq overflow")]
fn steal_into_a_busy_queue_panics() {
    let gs = make_gs(RUNQ_SIZE as usize);
    let (q1, q2) = (RunQueue::new(), RunQueue::new());
    // SAFETY: sole user of both.
    let (p1, p2) = unsafe { (q1.local(), q2.local()) };
    for g in gs {
        p1.put(gp(g), false, false, 0);
    }
    for g in &gs[..RUNQ_SIZE as usize / 2 + 1] {
        p2.put(gp(g), false, false, 0);
    }
    q1.stealer().steal_into(&p2, false, no_wait);
}

/// Go's runqgrab takes `n - n/2` of `n` Gs: the older half, rounded up, in
/// queue order. For every length 0..=RUNQ_SIZE, with the victim's and the
/// thief's counters at several places (the ring's physical end, across the
/// u32 wrap): the G the thief gets back is the last of its half, its own ring
/// holds the others oldest first, the victim keeps the newer half in order,
/// and the victim's `runnext` is not touched while its ring has Gs.
#[test]
fn steal_takes_half_in_order() {
    let n_max = RUNQ_SIZE as usize;
    let gs = make_gs(n_max + 1);
    let starts = [0, 1, RUNQ_SIZE / 2 + 3, RUNQ_SIZE - 1, u32::MAX - RUNQ_SIZE / 2, u32::MAX - 2, u32::MAX];
    for (k, &vstart) in starts.iter().enumerate() {
        let tstart = starts[(3 * k + 1) % starts.len()];
        for n in 0..=n_max {
            let (q1, q2) = (RunQueue::new(), RunQueue::new());
            for (q, at) in [(&q1, vstart), (&q2, tstart)] {
                q.head.store(at, Ordering::Relaxed);
                q.tail.store(at, Ordering::Relaxed);
            }
            // SAFETY: this test is the only user of both queues.
            let (p1, p2) = unsafe { (q1.local(), q2.local()) };
            for g in &gs[..n] {
                assert!(p1.put(gp(g), false, false, 0).is_none());
            }
            // A G in runnext, which must stay there (the ring is stolen first).
            assert!(p1.put(gp(&gs[n_max]), true, false, 0).is_none());
            let steal_runnext = n % 2 == 1;
            let got = q1.stealer().steal_into(&p2, steal_runnext, || panic!("n={n}: waited for runnext"));
            let want = n - n / 2;
            let at = format!("n={n}, victim from {vstart}, thief from {tstart}");
            assert_eq!(got.map(id), want.checked_sub(1), "{at}: the G returned");
            assert_eq!(p2.len() as usize, want.saturating_sub(1), "{at}: Gs left on the thief");
            assert_eq!(p1.len() as usize, n - want, "{at}: Gs left on the victim");
            let thief: Vec<usize> = std::iter::from_fn(|| p2.get()).map(|(g, _)| id(g)).collect();
            assert_eq!(thief, (0..want.saturating_sub(1)).collect::<Vec<_>>(), "{at}: the thief's ring");
            let mut victim = vec![];
            p1.drain(|g| victim.push(id(g)));
            let want_victim: Vec<usize> = [n_max].into_iter().chain(want..n).collect();
            assert_eq!(victim, want_victim, "{at}: the victim's runnext and ring");
        }
    }
}

/// The counters are free-running u32s: start near the wrap point and run
/// the whole API across it.
#[test]
fn counters_wrap_around() {
    let n = RUNQ_SIZE as usize;
    let gs = make_gs(n + 1);
    let (q1, q2) = (RunQueue::new(), RunQueue::new());
    let start = u32::MAX - 3;
    for q in [&q1, &q2] {
        q.head.store(start, Ordering::Relaxed);
        q.tail.store(start, Ordering::Relaxed);
    }
    // SAFETY: sole user of both.
    let (p1, p2) = unsafe { (q1.local(), q2.local()) };
    assert!(p1.is_empty());
    for g in &gs[..n] {
        assert!(p1.put(gp(g), false, false, 0).is_none());
    }
    assert_eq!(p1.len(), RUNQ_SIZE);
    let batch = p1.put(gp(&gs[n]), false, false, 0).unwrap();
    assert_eq!(batch.len(), OVERFLOW_CAP);
    let g = q1.stealer().steal_into(&p2, false, no_wait).unwrap();
    assert_eq!(id(g), n / 2 + n / 4 - 1);
    assert_eq!(p2.len(), RUNQ_SIZE / 4 - 1);
    let mut seen: Vec<usize> = batch.iter().map(id).collect();
    seen.push(id(g));
    p1.drain(|g| seen.push(id(g)));
    p2.drain(|g| seen.push(id(g)));
    seen.sort_unstable();
    assert_eq!(seen, (0..=n).collect::<Vec<_>>());
}

/// Two threads: the owner puts in bursts (sometimes with next, overflowing to
/// a "global queue") and gets; a thief steals (with and without runnext) and
/// runs from its own queue. Every G is seen exactly once.
#[test]
fn owner_and_thief_stress() {
    const N: usize = MAX_GS;
    let gs = make_gs(N);
    let q: Arc<RunQueue<G>> = Arc::new(RunQueue::new());
    let finished = Arc::new(AtomicBool::new(false));
    let thief = {
        let (q, finished) = (q.clone(), finished.clone());
        thread::spawn(move || {
            let mine: RunQueue<G> = RunQueue::new();
            // SAFETY: `mine` belongs to this thread alone.
            let dst = unsafe { mine.local() };
            let mut seen = Vec::new();
            let mut k = 0u32;
            loop {
                let last = finished.load(StdOrdering::Acquire);
                k = k.wrapping_add(1);
                if let Some(g) = q.stealer().steal_into(&dst, k % 3 == 0 || last, no_wait) {
                    seen.push(id(g));
                    while let Some((g, _)) = dst.get() {
                        seen.push(id(g));
                    }
                } else if last {
                    return seen;
                }
            }
        })
    };
    // SAFETY: this thread is the only owner of `q`.
    let local = unsafe { q.local() };
    let mut seen = Vec::new();
    let mut rng = FastRand::new(5);
    let mut i = 0;
    while i < N {
        let burst = 1 + rng.cheaprandn(300) as usize;
        for g in &gs[i..(i + burst).min(N)] {
            if let Some(batch) = local.put(gp(g), rng.cheaprandn(4) == 0, false, 0) {
                seen.extend(batch.iter().map(id));
            }
        }
        i += burst;
        for _ in 0..rng.cheaprandn(200) {
            match local.get() {
                Some((g, _)) => seen.push(id(g)),
                None => break,
            }
        }
    }
    finished.store(true, StdOrdering::Release);
    let stolen = thief.join().unwrap();
    local.drain(|g| seen.push(id(g)));
    assert!(!stolen.is_empty(), "the thief never stole anything");
    let mut count = vec![0u8; N];
    for x in seen.into_iter().chain(stolen) {
        count[x] += 1;
    }
    for (g, &c) in count.iter().enumerate() {
        assert_eq!(c, 1, "G {g} seen {c} times");
    }
}

mod model {
    //! Sequential proptest: a random sequence of operations on the real
    //! queue and on an obvious model (a VecDeque for the ring, an Option for
    //! runnext) must give the same results.
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Put { next: bool },
        Get,
        PutBatch(usize),
        Steal { runnext: bool },
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            10 => any::<bool>().prop_map(|next| Op::Put { next }),
            6 => Just(Op::Get),
            2 => (0usize..300).prop_map(Op::PutBatch),
            2 => any::<bool>().prop_map(|runnext| Op::Steal { runnext }),
            1 => Just(Op::Drain),
        ]
    }

    #[derive(Default)]
    struct Model {
        ring: VecDeque<usize>,
        runnext: Option<usize>,
    }

    impl Model {
        /// Go's rules in their plainest form. Returns the overflow batch.
        fn put(&mut self, mut g: usize, next: bool) -> Option<Vec<usize>> {
            if next {
                match self.runnext.replace(g) {
                    None => return None,
                    Some(old) => g = old,
                }
            }
            if self.ring.len() < RUNQ_SIZE as usize {
                self.ring.push_back(g);
                return None;
            }
            let mut batch: Vec<usize> = self.ring.drain(..RUNQ_SIZE as usize / 2).collect();
            batch.push(g);
            Some(batch)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..600)) {
            let gs = make_gs(MAX_GS);
            let (q, thief_q) = (RunQueue::new(), RunQueue::new());
            // SAFETY: this test is the only user of both queues.
            let (local, thief) = unsafe { (q.local(), thief_q.local()) };
            let mut m = Model::default();
            let mut next_g = 0;
            for op in ops {
                match op {
                    Op::Put { next } => {
                        let got = local.put(gp(&gs[next_g]), next, false, 0);
                        let want = m.put(next_g, next);
                        prop_assert_eq!(got.map(|b| b.iter().map(id).collect::<Vec<_>>()), want);
                        next_g += 1;
                    }
                    Op::Get => {
                        let want = match m.runnext.take() {
                            Some(g) => Some((g, true)),
                            None => m.ring.pop_front().map(|g| (g, false)),
                        };
                        prop_assert_eq!(local.get().map(|(g, i)| (id(g), i)), want);
                    }
                    Op::PutBatch(k) => {
                        let mut it = (next_g..next_g + k).map(|i| gp(&gs[i]));
                        let put = local.put_batch(&mut it, None) as usize;
                        let room = RUNQ_SIZE as usize - m.ring.len();
                        prop_assert_eq!(put, k.min(room));
                        m.ring.extend(next_g..next_g + put);
                        let left: Vec<usize> = it.map(id).collect();
                        prop_assert_eq!(left, (next_g + put..next_g + k).collect::<Vec<_>>());
                        next_g += k;
                    }
                    Op::Steal { runnext } => {
                        let len = m.ring.len();
                        let n = len - len / 2;
                        let (want, want_rest): (Option<usize>, Vec<usize>) = if n > 0 {
                            let mut taken: Vec<usize> = m.ring.drain(..n).collect();
                            (taken.pop(), taken)
                        } else if runnext {
                            (m.runnext.take(), vec![])
                        } else {
                            (None, vec![])
                        };
                        let got = q.stealer().steal_into(&thief, runnext, no_wait);
                        prop_assert_eq!(got.map(id), want);
                        let rest: Vec<usize> =
                            std::iter::from_fn(|| thief.get()).map(|(g, _)| id(g)).collect();
                        prop_assert_eq!(rest, want_rest);
                    }
                    Op::Drain => {
                        let mut got = vec![];
                        local.drain(|g| got.push(id(g)));
                        let want: Vec<usize> = m.runnext.take().into_iter().chain(m.ring.drain(..)).collect();
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(local.len() as usize, m.ring.len());
                prop_assert_eq!(local.is_empty(), m.ring.is_empty() && m.runnext.is_none());
            }
        }

        /// FIFO order and the overflow batches across the wrap of the u32
        /// counters: the queue starts `back` slots before `u32::MAX`, and a
        /// random mix of puts (which overflow) and gets must match the model.
        #[test]
        fn ring_across_u32_wrap_matches_model(
            back in 0u32..1024,
            ops in proptest::collection::vec(prop_oneof![3 => Just(true), 2 => Just(false)], 0..1200),
        ) {
            let gs = make_gs(1200);
            let q = RunQueue::new();
            let start = u32::MAX - back;
            q.head.store(start, Ordering::Relaxed);
            q.tail.store(start, Ordering::Relaxed);
            // SAFETY: this test is the only user of `q`.
            let local = unsafe { q.local() };
            let mut m = Model::default();
            for (i, put) in ops.into_iter().enumerate() {
                if put {
                    let got = local.put(gp(&gs[i]), false, false, 0);
                    prop_assert_eq!(got.map(|b| b.iter().map(id).collect::<Vec<_>>()), m.put(i, false));
                } else {
                    prop_assert_eq!(local.get().map(|(g, i)| (id(g), i)), m.ring.pop_front().map(|g| (g, false)));
                }
                prop_assert_eq!(local.len() as usize, m.ring.len());
            }
        }
    }
}
