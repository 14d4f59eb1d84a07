//! Host tests of `runnext` (lab 3, `labs/lab3/`): the kick-out order of
//! `runqput(next=true)`, `inheritTime` from `runqget`, and a proptest of both
//! against a model. The grader protects this file.

use super::*;
use proptest::prelude::*;
use std::collections::VecDeque;

/// A stand-in G: the queue only moves pointers; a G is named by its id.
#[derive(Debug)]
struct G {
    id: usize,
}

/// `n` leaked Gs, `G { id: i }` at index i.
fn make_gs(n: usize) -> &'static [G] {
    Box::leak((0..n).map(|id| G { id }).collect::<Vec<_>>().into_boxed_slice())
}

fn gp(g: &G) -> NonNull<G> {
    NonNull::from(g)
}

fn id(g: NonNull<G>) -> usize {
    // SAFETY: every G in these tests is leaked ('static).
    unsafe { g.as_ref() }.id
}

/// Everything `get` returns until the queue is empty, as (id, inheritTime).
fn get_all(local: &Local<'_, G>) -> Vec<(usize, bool)> {
    std::iter::from_fn(|| local.get()).map(|(g, inherit)| (id(g), inherit)).collect()
}

/// Go's rule: `runqput(pp, gp, true)` puts gp in `runnext`; the G that was
/// there is kicked out to the *tail* of the ring (behind the Gs already
/// queued), not dropped and not put at the head. `put` reports no overflow.
#[test]
fn runnext_kick_out_order() {
    let gs = make_gs(6);
    let q = RunQueue::new();
    // SAFETY: this test is the only user of `q`.
    let local = unsafe { q.local() };
    assert!(local.put(gp(&gs[0]), true, false, 0).is_none(), "empty runnext: no overflow");
    assert_eq!(local.len(), 0, "a G put with next=true must not be on the ring");
    assert!(!local.is_empty(), "a G in runnext counts for runqempty");
    assert!(local.put(gp(&gs[1]), false, false, 0).is_none()); // ring: 1, runnext: 0
    assert!(local.put(gp(&gs[2]), false, false, 0).is_none()); // ring: 1 2
    assert!(local.put(gp(&gs[3]), true, false, 0).is_none()); // runnext: 3, ring: 1 2 0
    assert_eq!(local.len(), 3, "the old runnext must go to the ring");
    assert!(local.put(gp(&gs[4]), true, false, 0).is_none()); // runnext: 4, ring: 1 2 0 3
    assert!(local.put(gp(&gs[5]), false, false, 0).is_none()); // ring: 1 2 0 3 5
    assert_eq!(local.len(), 5);
    assert_eq!(
        get_all(&local),
        [(4, true), (1, false), (2, false), (0, false), (3, false), (5, false)],
        "runnext first; each kicked-out runnext at the tail, in the order it was kicked"
    );
    assert!(local.is_empty());
}

/// `runqget` returns `inheritTime = true` for the G it took from `runnext`
/// and only for it: a G from the ring starts a new time slice (`execute`
/// increments `schedtick`). Also: runnext is taken before an older ring, and
/// once taken it is empty (the next `get` comes from the ring).
#[test]
fn inherit_time_only_for_runnext() {
    let gs = make_gs(4);
    let q = RunQueue::new();
    // SAFETY: this test is the only user of `q`.
    let local = unsafe { q.local() };
    assert!(local.get().is_none());
    // Only runnext.
    assert!(local.put(gp(&gs[0]), true, false, 0).is_none());
    assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((0, true)));
    assert!(local.get().is_none(), "runnext must be empty after it was taken");
    assert!(local.is_empty());
    // Only the ring.
    assert!(local.put(gp(&gs[1]), false, false, 0).is_none());
    assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((1, false)));
    // Both: runnext first even though the ring's G is older.
    assert!(local.put(gp(&gs[2]), false, false, 0).is_none());
    assert!(local.put(gp(&gs[3]), true, false, 0).is_none());
    assert_eq!(get_all(&local), [(3, true), (2, false)]);
    // A ping-pong: each wake puts the partner in runnext; every hand-off
    // inherits, and nothing ever reaches the ring.
    for round in 0..1000 {
        let g = &gs[round % 2];
        assert!(local.put(gp(g), true, false, 0).is_none());
        assert_eq!(local.len(), 0);
        assert_eq!(local.get().map(|(g, i)| (id(g), i)), Some((round % 2, true)));
    }
    assert!(local.is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Put { next: bool },
    Get,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|next| Op::Put { next }),
        2 => Just(Op::Get),
    ]
}

/// The rules in their plainest form: runnext is an `Option`, the ring a
/// `VecDeque`; a full ring sends its older half plus the G to the "global
/// queue" (the returned batch).
#[derive(Default)]
struct Model {
    ring: VecDeque<usize>,
    runnext: Option<usize>,
}

impl Model {
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

    fn get(&mut self) -> Option<(usize, bool)> {
        match self.runnext.take() {
            Some(g) => Some((g, true)),
            None => self.ring.pop_front().map(|g| (g, false)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random puts (with and without next) and gets, overflow included,
    /// against the model: the same G and the same inheritTime every time.
    #[test]
    fn runnext_matches_model(ops in proptest::collection::vec(op(), 0..900)) {
        let gs = make_gs(900);
        let q = RunQueue::new();
        // SAFETY: this test is the only user of `q`.
        let local = unsafe { q.local() };
        let mut m = Model::default();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Put { next } => {
                    let got = local.put(gp(&gs[i]), next, false, 0);
                    prop_assert_eq!(got.map(|b| b.iter().map(id).collect::<Vec<_>>()), m.put(i, next));
                }
                Op::Get => {
                    prop_assert_eq!(local.get().map(|(g, inh)| (id(g), inh)), m.get());
                }
            }
            prop_assert_eq!(local.len() as usize, m.ring.len());
            prop_assert_eq!(local.is_empty(), m.ring.is_empty() && m.runnext.is_none());
        }
        prop_assert_eq!(get_all(&local), std::iter::from_fn(|| m.get()).collect::<Vec<_>>());
    }
}
