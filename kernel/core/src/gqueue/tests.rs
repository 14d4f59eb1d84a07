//! Tests of the intrusive lists and of `globrunqget`'s batch rule and the 1-in-61 check.
use super::*;

struct G {
    id: u32,
    schedlink: Cell<Option<NonNull<G>>>,
}

// SAFETY: `link` always returns the `schedlink` field, which only the
// lists touch.
unsafe impl Linked for G {
    fn link(&self) -> &Cell<Option<NonNull<G>>> {
        &self.schedlink
    }
}

fn gs(n: u32) -> Vec<G> {
    (0..n).map(|id| G { id, schedlink: Cell::new(None) }).collect()
}

fn ids<'a>(it: impl Iterator<Item = NonNull<G>> + 'a) -> Vec<u32> {
    // SAFETY: the Gs live in a Vec that outlives the test body.
    it.map(|g| unsafe { g.as_ref() }.id).collect()
}

#[test]
fn queue_is_fifo() {
    let v = gs(5);
    let mut q = GQueue::new();
    assert!(q.is_empty());
    assert_eq!(q.pop_front(), None);
    for g in &v {
        // SAFETY: `v` outlives `q`; each G is pushed once.
        unsafe { q.push_back(NonNull::from(g)) };
    }
    assert_eq!(q.len(), 5);
    assert_eq!(ids(q.iter()), [0, 1, 2, 3, 4]);
    assert_eq!(ids(core::iter::from_fn(|| q.pop_front())), [0, 1, 2, 3, 4]);
    assert!(q.is_empty());
    assert_eq!(q.len(), 0);
    assert!(q.front().is_none());
    // The queue is reusable after it emptied (tail was reset).
    // SAFETY: as above.
    unsafe { q.push_back(NonNull::from(&v[3])) };
    assert_eq!(ids(q.iter()), [3]);
}

#[test]
fn push_front_and_back_mix() {
    let v = gs(4);
    let mut q = GQueue::new();
    // SAFETY: `v` outlives `q`; each G is pushed once.
    unsafe {
        q.push_front(NonNull::from(&v[1]));
        q.push_back(NonNull::from(&v[2]));
        q.push_front(NonNull::from(&v[0]));
        q.push_back(NonNull::from(&v[3]));
    }
    assert_eq!(q.len(), 4);
    assert_eq!(ids(core::iter::from_fn(|| q.pop_front())), [0, 1, 2, 3]);
    // push_front on an empty queue sets the tail too.
    // SAFETY: as above; the Gs were popped.
    unsafe {
        q.push_front(NonNull::from(&v[0]));
        q.push_back(NonNull::from(&v[1]));
    }
    assert_eq!(ids(core::iter::from_fn(|| q.pop_front())), [0, 1]);
}

#[test]
fn push_back_all_concatenates() {
    let v = gs(6);
    let (mut a, mut b) = (GQueue::new(), GQueue::new());
    // SAFETY: `v` outlives both queues; each G is pushed once.
    unsafe {
        for g in &v[..2] {
            a.push_back(NonNull::from(g));
        }
        for g in &v[2..] {
            b.push_back(NonNull::from(g));
        }
    }
    a.push_back_all(&mut b);
    assert!(b.is_empty());
    assert_eq!(b.len(), 0);
    assert_eq!(a.len(), 6);
    assert_eq!(ids(a.iter()), [0, 1, 2, 3, 4, 5]);
    // Into an empty queue, and from an empty queue.
    let mut c = GQueue::new();
    c.push_back_all(&mut a);
    c.push_back_all(&mut b);
    assert_eq!(c.len(), 6);
    assert_eq!(ids(core::iter::from_fn(|| c.pop_front())), [0, 1, 2, 3, 4, 5]);
    // After the move the tail is right: appending works.
    // SAFETY: all Gs were popped.
    unsafe { c.push_back(NonNull::from(&v[5])) };
    assert_eq!(ids(c.iter()), [5]);
}

#[test]
fn list_is_lifo_and_push_all() {
    let v = gs(5);
    let mut l = GList::new();
    assert!(l.pop().is_none());
    // SAFETY: `v` outlives the lists; each G is pushed once.
    unsafe {
        l.push(NonNull::from(&v[0]));
        l.push(NonNull::from(&v[1]));
    }
    let mut q = GQueue::new();
    // SAFETY: as above.
    unsafe {
        for g in &v[2..] {
            q.push_back(NonNull::from(g));
        }
    }
    l.push_all(&mut q);
    assert!(q.is_empty());
    assert_eq!(l.len(), 5);
    assert_eq!(ids(l.iter()), [2, 3, 4, 1, 0]);
    assert_eq!(ids(core::iter::from_fn(|| l.pop())), [2, 3, 4, 1, 0]);
    assert!(l.is_empty());
    let mut empty = GQueue::new();
    l.push_all(&mut empty);
    assert!(l.is_empty());
}

#[test]
fn globrunqget_batch_rule() {
    // Empty queue: nothing.
    assert_eq!(globrunqget_count(0, 4, 0), 0);
    // Fair share plus one.
    assert_eq!(globrunqget_count(100, 4, 0), 26);
    assert_eq!(globrunqget_count(7, 2, 0), 4);
    // Never more than the queue holds.
    assert_eq!(globrunqget_count(1, 1, 0), 1);
    assert_eq!(globrunqget_count(3, 1, 0), 3);
    // The caller's max, when set (findRunnable's fairness tick passes 1).
    assert_eq!(globrunqget_count(100, 4, 1), 1);
    assert_eq!(globrunqget_count(100, 4, 10), 10);
    assert_eq!(globrunqget_count(100, 4, 1000), 26);
    // Never more than half a local ring.
    assert_eq!(globrunqget_count(10_000, 1, 0), RUNQ_SIZE / 2);
    assert_eq!(globrunqget_count(u32::MAX, 1, 0), RUNQ_SIZE / 2);
    // gomaxprocs 0 is treated as 1.
    assert_eq!(globrunqget_count(5, 0, 0), 5);
    // Exhaustive check against the rule written as a min().
    for len in 0..600 {
        for procs in 1..=9 {
            for max in [0, 1, 2, 5, 200] {
                let mut want = (len / procs + 1).min(len).min(RUNQ_SIZE / 2);
                if max > 0 {
                    want = want.min(max);
                }
                assert_eq!(globrunqget_count(len, procs, max), want);
            }
        }
    }
}

/// Go's `globrunqget` (proc.go, Go 1.19-1.21) as Go writes it, in `int32`
/// arithmetic: the fair share plus one, then the three caps in Go's order.
fn go_globrunqget_n(runqsize: i32, gomaxprocs: i32, max: i32, runq_len: i32) -> i32 {
    if runqsize == 0 {
        return 0;
    }
    let mut n = runqsize / gomaxprocs + 1;
    if n > runqsize {
        n = runqsize;
    }
    if max > 0 && n > max {
        n = max;
    }
    if n > runq_len / 2 {
        n = runq_len / 2;
    }
    n
}

mod batch_model {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// `globrunqget_count` against Go's formula, over queue lengths up to
        /// a million, 1..=1024 Ps, and `max` 0 (no cap), 1 (the fairness
        /// tick) or anything.
        #[test]
        fn globrunqget_count_matches_go(
            len in prop_oneof![0u32..300, 0u32..1_000_000],
            procs in prop_oneof![1u32..9, 1u32..1025],
            max in prop_oneof![Just(0u32), Just(1u32), 0u32..300],
        ) {
            let want = go_globrunqget_n(len as i32, procs as i32, max as i32, RUNQ_SIZE as i32);
            let got = globrunqget_count(len, procs, max);
            prop_assert_eq!(got as i32, want, "len {} gomaxprocs {} max {}", len, procs, max);
            // What the caller relies on: never more than it may take, at
            // least one G from a non-empty queue, and it always fits beside
            // a half-full local ring.
            prop_assert!(got <= len && got <= RUNQ_SIZE / 2);
            prop_assert!(len == 0 || got >= 1);
        }
    }
}

/// The 1-in-61 rule: the global queue is looked at first exactly on the
/// schedticks that are multiples of 61, and only when it holds a G; so a P
/// whose local queue never empties still takes a G from the global queue at
/// least once every 61 schedticks, whatever tick it starts at (also across
/// the u32 wrap of schedtick).
#[test]
fn check_global_first_every_61st_tick() {
    for tick in (0..10_000u32).chain(u32::MAX - 200..=u32::MAX) {
        assert!(!check_global_first(tick, 0), "empty global queue at tick {tick}");
        assert_eq!(check_global_first(tick, 1), tick % 61 == 0, "tick {tick}, 1 G on the global queue");
        assert_eq!(check_global_first(tick, 1000), tick % 61 == 0, "tick {tick}, 1000 Gs");
    }
    // The starvation bound: from any tick, within 61 schedules (each one
    // advancing schedtick) the global queue gets its turn.
    for start in (0..200u32).chain(u32::MAX - 70..=u32::MAX) {
        let waited = (0..61u32).position(|k| check_global_first(start.wrapping_add(k), 1));
        assert!(waited.is_some(), "from schedtick {start} the global queue waits more than 61 ticks");
    }
    // And not more often: in 61 * 100 consecutive ticks, exactly 100 turns.
    assert_eq!((7..7 + 61 * 100).filter(|&t| check_global_first(t, 5)).count(), 100);
}
