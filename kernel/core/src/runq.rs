//! A P's local run queue: Go's `p.runq` ring, `runqhead`, `runqtail` and
//! `runnext`, with `runqput`, `runqputslow`, `runqget`, `runqdrain`,
//! `runqputbatch`, `runqgrab`, `runqsteal` and `runqempty`.
//!
//! # The protocol
//!
//! Each P has a ring of [`RUNQ_SIZE`] slots and two free-running 32-bit
//! counters. The Gs waiting to run are in slots `head .. tail` (indices taken
//! modulo the ring size); `tail - head` (wrapping) is the length, between 0
//! and `RUNQ_SIZE`.
//!
//! * **One producer.** Only the P that owns the queue adds Gs, at the tail.
//!   It writes the slot first, then publishes it with a *store-release* of
//!   `tail`. Nobody else ever writes `tail`, so the owner reads its own
//!   `tail` with a relaxed load.
//! * **Many consumers.** The owner (taking work to run) and thieves (other
//!   Ps stealing half) all consume at the head. A consumer *load-acquires*
//!   `head` and `tail`, reads the slots it wants, and then claims them by a
//!   *CAS-release* of `head` from the value it read to the value past its
//!   last slot. If the CAS fails someone else consumed first: the slots it
//!   read may be stale, so it throws them away and starts over. Reading a slot
//!   *before* owning it is what makes stealing cheap (no lock), and it is safe
//!   because a slot is only overwritten by the owner after `head` has moved
//!   past it, and then the stale reader's CAS must fail.
//! * **Why those orderings.** The release of `tail` pairs with the acquire of
//!   `tail` in consumers: a consumer that sees the new tail sees the slot
//!   (and the G's contents written before `runqput`). The release of the
//!   `head` CAS pairs with the owner's acquire of `head` in `put`: when the
//!   owner sees that a slot was consumed, the consumer's read of that slot
//!   happened before, so the owner may overwrite it.
//! * **`runnext`.** One extra slot holding the G that should run next (the
//!   one just readied by the running G: a channel receiver, a newly spawned
//!   G). `runqput(next=true)` swaps the new G in and kicks the old one to the
//!   tail. The owner's `runqget` looks at `runnext` first, and a G taken from
//!   there *inherits the time slice* (`inheritTime`: schedtick is not
//!   incremented, so a chain of hand-offs cannot starve everyone else: sysmon
//!   still preempts it after 10ms). Only the owner stores a non-null value in
//!   `runnext`; consumers only CAS it back to null. So the owner's `get`
//!   never needs to retry: if its CAS fails, a thief took the G.
//! * **Stealing `runnext`** is the last resort of a thief (only on the last
//!   pass of `stealWork`, and only when the victim's ring is empty). Go first
//!   sleeps ~3us when the victim is running, because the victim is probably
//!   just about to run that G itself (it was readied moments ago), and
//!   stealing it would bounce it between cores. Here the caller supplies that
//!   wait as `on_runnext_wait`.
//! * **Overflow.** When the ring is full, `runqputslow` moves half of it plus
//!   the new G to the global queue in one batch, so that the global lock is
//!   taken once per 129 Gs, not once per G. It claims the half with the same
//!   CAS on `head` as a consumer; if a thief got there first the ring is no
//!   longer full and the fast path is retried.
//! * **Counters wrap.** `head` and `tail` are `u32` and all arithmetic on
//!   them is wrapping. A CAS could in theory succeed after `head` went round
//!   all 2^32 values between a thief's load and its CAS (ABA); like Go we
//!   accept that, it needs four billion dequeues during one steal.
//!
//! # Ownership in types
//!
//! Go writes "executed only by the owner P" in comments. Here the queue
//! ([`RunQueue`], `Sync`, lives inside the P) hands out two views:
//! [`Local`] (obtained through the `unsafe` [`RunQueue::local`]: the caller
//! promises to be the owner and to hold one `Local` at a time) can put, get
//! and drain; [`Steal`] (safe, anyone) can only steal and look at the length.
//! A thief cannot call `put` because it cannot get a `Local`.
//!
//! # Slots are atomics
//!
//! Go's slots are plain words, read racily by thieves that then fail their
//! CAS. In Rust a racy plain read is undefined behaviour, so each slot is an
//! `AtomicPtr` accessed with `Relaxed`: the ordering comes from `head` and
//! `tail`, the slot atomics only make the benign race defined. On x86 a
//! relaxed load or store is an ordinary `mov`.
//!
//! # Model checking
//!
//! Under `--cfg loom` the ring has [`RUNQ_SIZE`] = 4 slots and the atomics
//! are loom's; see the `loom_tests` module at the end and the crate README
//! for the command.
//!
//! # Lab regions
//!
//! Lines starting with `//~ labN` mark the code that lab N of the course
//! (`labs/labN/`) takes out of a student's tree; they change nothing here.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::rand::{mix64, FastRand};
use crate::sync::{spin_hint, AtomicPtr, AtomicU32, Ordering};

/// Slots in a local run queue (Go: `len(p.runq)`).
#[cfg(not(loom))]
pub const RUNQ_SIZE: u32 = 256;
/// Slots in a local run queue; tiny under loom so the model stays tractable.
#[cfg(loom)]
pub const RUNQ_SIZE: u32 = 4;

const _: () = assert!(RUNQ_SIZE.is_power_of_two() && RUNQ_SIZE >= 4);

/// The most Gs one `runqputslow` hands to the global queue: half a ring plus
/// the G being put.
pub const OVERFLOW_CAP: usize = RUNQ_SIZE as usize / 2 + 1;

#[inline]
fn slot_index(i: u32) -> usize {
    (i % RUNQ_SIZE) as usize
}

/// A P's local run queue (Go: the `runqhead`, `runqtail`, `runq` and
/// `runnext` fields of `p`). It stores pointers only and never dereferences
/// them: what a `T` is and how long it lives is the kernel's business.
///
/// ```
/// use core::ptr::NonNull;
/// use gmp_core::runq::RunQueue;
///
/// let gs = [10u32, 20, 30];
/// let (victim, thief) = (RunQueue::new(), RunQueue::new());
/// // SAFETY: this thread owns both queues and makes one Local for each.
/// let (p0, p1) = unsafe { (victim.local(), thief.local()) };
/// p0.put(NonNull::from(&gs[0]), false, false, 0); // ring: 10
/// p0.put(NonNull::from(&gs[1]), false, false, 0); // ring: 10 20
/// p0.put(NonNull::from(&gs[2]), true, false, 0); //  runnext: 30
/// // A thief takes half of the ring (1 of 2) and runs it at once.
/// let g = victim.stealer().steal_into(&p1, false, || {}).unwrap();
/// assert_eq!(unsafe { *g.as_ref() }, 10);
/// // The owner runs runnext first, inheriting the time slice.
/// let (g, inherit_time) = p0.get().unwrap();
/// assert_eq!((unsafe { *g.as_ref() }, inherit_time), (30, true));
/// ```
///
/// Only the owner's [`Local`] can put; a [`Steal`] cannot:
///
/// ```compile_fail
/// # use core::ptr::NonNull;
/// let q = gmp_core::runq::RunQueue::<u8>::new();
/// q.stealer().put(NonNull::dangling(), false, false, 0);
/// ```
///
/// and a `Local` cannot be shared between cores (it is not `Sync`):
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// let q = gmp_core::runq::RunQueue::<u8>::new();
/// shared(&unsafe { q.local() });
/// ```
pub struct RunQueue<T> {
    /// Index of the first queued G. Advanced by CAS by every consumer.
    head: AtomicU32,
    /// Index one past the last queued G. Stored only by the owner.
    tail: AtomicU32,
    /// The G to run next, or null.
    runnext: AtomicPtr<T>,
    /// The ring; slot `i % RUNQ_SIZE` holds G number `i`.
    ring: [AtomicPtr<T>; RUNQ_SIZE as usize],
}

// Note: `RunQueue<T>` is `Send + Sync` for every `T`, because `AtomicPtr<T>`
// is: the queue moves pointers between cores but never dereferences them.

impl<T> RunQueue<T> {
    /// An empty queue.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            runnext: AtomicPtr::new(ptr::null_mut()),
            ring: [const { AtomicPtr::new(ptr::null_mut()) }; RUNQ_SIZE as usize],
        }
    }

    /// An empty queue (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            runnext: AtomicPtr::new(ptr::null_mut()),
            ring: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// The owner's view of the queue.
    ///
    /// # Safety
    /// 1. The caller is the owning P (in the kernel: the core that currently
    ///    holds this P), and
    /// 2. no other `Local` for this queue exists while the returned one is
    ///    alive (not on this core, not in an interrupt handler on it).
    ///
    /// Breaking either lets two producers write `tail` and the same slot,
    /// which loses or duplicates Gs.
    pub unsafe fn local(&self) -> Local<'_, T> {
        Local { q: self, _not_sync: PhantomData }
    }

    /// A thief's view: steal and inspect only. Anyone may hold one.
    pub fn stealer(&self) -> Steal<'_, T> {
        Steal { q: self }
    }
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for RunQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunQueue")
            .field("len", &self.stealer().len())
            .field("runnext", &self.runnext.load(Ordering::Relaxed))
            .finish()
    }
}

/// The owner P's handle on its run queue: the only way to put.
///
/// `Send` (the owner may be handed to another core together with the P) but
/// not `Sync`: two cores sharing one `&Local` would be two producers.
pub struct Local<'a, T> {
    q: &'a RunQueue<T>,
    _not_sync: PhantomData<Cell<()>>,
}

/// Anyone's handle on a run queue: steal, length, emptiness.
pub struct Steal<'a, T> {
    q: &'a RunQueue<T>,
}

impl<T> Clone for Steal<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Steal<'_, T> {}

/// The Gs that `runqputslow` took off a full ring (half of it, oldest
/// first) plus the G that did not fit, last. The caller pushes all of them
/// onto the global queue in one batch under the scheduler lock
/// (`globrunqputbatch`).
pub struct Overflow<T> {
    items: [Option<NonNull<T>>; OVERFLOW_CAP],
    len: usize,
}

impl<T> Overflow<T> {
    /// Number of Gs (always `RUNQ_SIZE / 2 + 1` when returned by `put`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there is no G (never the case for an `Overflow` from `put`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The Gs in queue order.
    pub fn iter(&self) -> impl Iterator<Item = NonNull<T>> + '_ {
        self.items[..self.len].iter().map(|g| g.expect("Overflow: hole below len"))
    }
}

impl<T> fmt::Debug for Overflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// By-value iterator over an [`Overflow`].
pub struct OverflowIter<T> {
    batch: Overflow<T>,
    next: usize,
}

impl<T> Iterator for OverflowIter<T> {
    type Item = NonNull<T>;

    fn next(&mut self) -> Option<NonNull<T>> {
        if self.next == self.batch.len {
            return None;
        }
        self.next += 1;
        self.batch.items[self.next - 1]
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.len - self.next;
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for OverflowIter<T> {}

impl<T> IntoIterator for Overflow<T> {
    type Item = NonNull<T>;
    type IntoIter = OverflowIter<T>;

    fn into_iter(self) -> OverflowIter<T> {
        OverflowIter { batch: self, next: 0 }
    }
}

/// Turns a slot value into a G. A slot in `head .. tail` read with the
/// protocol's ordering always holds a G; null would mean a broken invariant.
#[inline]
fn must_be_g<T>(p: *mut T, what: &str) -> NonNull<T> {
    match NonNull::new(p) {
        Some(g) => g,
        None => panic!("runq: null G in {what}"),
    }
}

impl<'a, T> Local<'a, T> {
    /// A [`Steal`] view of the same queue (for `len`/`is_empty`).
    pub fn stealer(&self) -> Steal<'a, T> {
        Steal { q: self.q }
    }

    /// Number of Gs in the ring (not counting `runnext`).
    pub fn len(&self) -> u32 {
        self.stealer().len()
    }

    /// True when the ring and `runnext` are both empty (Go: `runqempty`).
    pub fn is_empty(&self) -> bool {
        self.stealer().is_empty()
    }

    /// Go's `runqput`: make `g` runnable on this P.
    ///
    /// With `next`, `g` goes into `runnext` and whatever was there is put at
    /// the tail instead; otherwise `g` goes to the tail. With
    /// `randomize_next` (`schedrandom=1`, Go's race-detector mode) `next` is
    /// ignored when `rand` is even, and an overflow batch is shuffled.
    ///
    /// Returns `None` when the G stayed on this P, or the [`Overflow`] batch
    /// (`RUNQ_SIZE / 2 + 1` Gs) that the caller must put on the global queue
    /// (`runqputslow`).
    ///
    /// `#[inline]`: the kernel calls it on every hand-off (`goready`), and
    /// under TCG a call and its return cost two jump-cache look-ups; the
    /// rare overflow (`put_slow`) stays out of line.
    #[inline]
    pub fn put(
        &self,
        g: NonNull<T>,
        next: bool,
        randomize_next: bool,
        rand: u32,
    ) -> Option<Overflow<T>> {
        let q = self.q;
        let next = next && !(randomize_next && rand % 2 == 0);
        let mut g = g;
        if next {
            //~ lab3 begin runqput_runnext: swap g into runnext (one AcqRel RMW). Was it empty? Done,
            //~ return None. Otherwise the old runnext is kicked out: set g to it, the ring code below
            //~ puts it at the tail.
            // Go loops on a CAS here; a swap is the same thing in one step.
            // Release: pairs with the acquire load of `runnext` in
            // `runqgrab` (a thief that takes this G sees what was written to
            // it before `put`). Acquire: we may get back a G that we stored
            // earlier; nothing else to see, but AcqRel keeps every `runnext`
            // RMW alike, which makes `is_empty` easy to argue (see there).
            let old = q.runnext.swap(g.as_ptr(), Ordering::AcqRel);
            match NonNull::new(old) {
                None => return None,
                // Kick the old runnext to the tail of the ring.
                Some(old) => g = old,
            }
            //~ lab3 end
        }
        //~ lab1 begin runqput: room (tail - head < RUNQ_SIZE)? write the slot, then publish tail + 1.
        //~ Full? put_slow moves half to the global queue; if it lost a race, try again.
        loop {
            // Acquire: pairs with the CAS-release of `head` in every consumer
            // (`get`, `runqgrab`, `put_slow`, `drain`), so their reads of the
            // slots we are about to reuse are finished.
            let h = q.head.load(Ordering::Acquire);
            // Relaxed: we are the only writer of `tail`.
            let t = q.tail.load(Ordering::Relaxed);
            if t.wrapping_sub(h) < RUNQ_SIZE {
                // Relaxed: published by the store-release of `tail` below.
                q.ring[slot_index(t)].store(g.as_ptr(), Ordering::Relaxed);
                // Release: pairs with the load-acquire of `tail` in
                // consumers (`runqgrab`, `is_empty`, `len`): makes the slot
                // and the G's contents visible before the G is.
                // SeqCst (an XCHG on x86, as Go's `StoreRel` is on amd64):
                // the submitter's half of the spinning protocol is "store
                // the G, then load `nmspinning`" (wakep). A plain release
                // store may sit in the store buffer while that load runs
                // ahead of it, and a spinner that decrements `nmspinning`
                // and re-checks the queues would miss this G while we see
                // it still spinning: a lost wake-up. The `runnext` swap is
                // a locked instruction already; this path (runnext taken,
                // or `schedrandom=1`) needs the same barrier.
                q.tail.store(t.wrapping_add(1), Ordering::SeqCst);
                return None;
            }
            if let Some(batch) = self.put_slow(g, h, t, randomize_next, rand) {
                return Some(batch);
            }
            // A thief consumed some Gs between our load of `head` and our
            // CAS: there is room again, retry the fast path.
        }
        //~ lab1 end
    }

    /// Go's `runqputslow`: the ring (`h .. t`) is full; claim its older half
    /// and return it with `g` appended. `None` if a consumer moved `head`
    /// first.
    #[inline(never)]
    fn put_slow(
        &self,
        g: NonNull<T>,
        h: u32,
        t: u32,
        shuffle: bool,
        rand: u32,
    ) -> Option<Overflow<T>> {
        //~ lab1 begin runqputslow: copy the older half (h .. h + n) out of the ring, claim it with a
        //~ CAS of head, and return it with g appended; None if the CAS lost.
        let q = self.q;
        let n = t.wrapping_sub(h) / 2;
        assert_eq!(n, RUNQ_SIZE / 2, "runqputslow: queue is not full");
        let mut batch = Overflow { items: [None; OVERFLOW_CAP], len: 0 };
        for i in 0..n {
            // Relaxed: these slots were written by us (program order); the
            // values only count if the CAS below succeeds.
            let p = q.ring[slot_index(h.wrapping_add(i))].load(Ordering::Relaxed);
            batch.items[i as usize] = NonNull::new(p);
        }
        // Release: like every consumer's CAS on `head` (pairs with the
        // acquire load of `head` in `put`). Here the only party that reuses
        // the slots is ourselves, so it is for uniformity, as in Go.
        // Failure is Relaxed: we return and `put` reloads `head` with Acquire.
        if q
            .head
            .compare_exchange(h, h.wrapping_add(n), Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        assert!(
            batch.items[..n as usize].iter().all(Option::is_some),
            "runq: null G in runqputslow batch"
        );
        batch.items[n as usize] = Some(g);
        batch.len = n as usize + 1;
        if shuffle {
            FastRand::new(mix64(rand as u64)).shuffle(&mut batch.items[..batch.len]);
        }
        Some(batch)
        //~ lab1 end
    }

    /// Go's `runqget`: the next G for this P to run, and whether it inherits
    /// the current time slice (true when it came from `runnext`).
    pub fn get(&self) -> Option<(NonNull<T>, bool)> {
        let q = self.q;
        // Relaxed: only we store non-null values in `runnext`, so what we see
        // is our own store or a thief's null.
        let next = q.runnext.load(Ordering::Relaxed);
        if !next.is_null() {
            //~ lab3 begin runqget_runnext: claim next with a CAS of runnext to null and return it with
            //~ inheritTime = true (it shares the current time slice). A failed CAS means a thief took it:
            //~ no retry, fall through to the ring.
            // No retry if the CAS fails: the only other writers set null, so a
            // failure means a thief took the G.
            // Release: pairs with the acquire load of `runnext` in `is_empty`;
            // anything we did before taking runnext (such as publishing a G on
            // the ring) is visible to an observer that sees runnext empty.
            // Acquire: symmetric with the other RMWs on runnext (see `put`).
            if q
                .runnext
                .compare_exchange(next, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some((must_be_g(next, "runnext"), true));
            }
            //~ lab3 end
        }
        //~ lab1 begin runqget: take the G at head: read its slot, then claim it with a CAS of
        //~ head; a thief may win the race, so retry. Empty ring: None.
        loop {
            // Acquire: pairs with the CAS-release of `head` by other
            // consumers. Strictly the owner needs nothing from them here
            // (it wrote every slot it reads), but every consumer
            // load-acquires `head`, as in Go.
            let h = q.head.load(Ordering::Acquire);
            // Relaxed: we are the only writer of `tail`.
            let t = q.tail.load(Ordering::Relaxed);
            if t == h {
                return None;
            }
            // Relaxed: we wrote this slot ourselves.
            let g = q.ring[slot_index(h)].load(Ordering::Relaxed);
            // Release: pairs with the acquire load of `head` in `put`, which
            // may then overwrite this slot (our read of it comes first).
            // Failure is Relaxed: we loop and reload `head` with Acquire.
            if q
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return Some((must_be_g(g, "runq slot"), false));
            }
        }
        //~ lab1 end
    }

    /// Go's `runqdrain`: removes every G, `runnext` first, then the ring in
    /// order, and passes each to `f`. Used by `procresize` when a P is
    /// destroyed (its Gs go to the global queue).
    pub fn drain(&self, mut f: impl FnMut(NonNull<T>)) {
        let q = self.q;
        // Relaxed load and AcqRel CAS: as in `get`.
        let next = q.runnext.load(Ordering::Relaxed);
        if !next.is_null()
            && q
                .runnext
                .compare_exchange(next, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            f(must_be_g(next, "runnext"));
        }
        loop {
            // Acquire: pairs with other consumers' CAS-release of `head`.
            let h = q.head.load(Ordering::Acquire);
            // Relaxed: we are the only writer of `tail`.
            let t = q.tail.load(Ordering::Relaxed);
            let n = t.wrapping_sub(h);
            if n == 0 {
                return;
            }
            if n > RUNQ_SIZE {
                // Cannot happen for the owner (its `tail` is exact and `head`
                // never passes it), but Go re-reads rather than trusting it.
                spin_hint();
                continue;
            }
            // Claim everything first, then read the slots. Reading after the
            // CAS is safe because only the owner (we) writes slots, and we
            // are busy here; thieves now see an empty ring.
            // Release: pairs with the acquire load of `head` in `put`.
            if q.head
                .compare_exchange(h, t, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                for i in 0..n {
                    // Relaxed: written by us.
                    let g = q.ring[slot_index(h.wrapping_add(i))].load(Ordering::Relaxed);
                    f(must_be_g(g, "runq slot"));
                }
                return;
            }
        }
    }

    /// Go's `runqputbatch`: appends Gs from `items` while the ring has room,
    /// publishing them all with one store of `tail`. `items.next()` is only
    /// called when a slot is free, so a G is never taken from the iterator and
    /// then dropped: whatever did not fit is still in `items` (Go puts it
    /// back on the global queue). Returns how many Gs were put.
    ///
    /// With `shuffle` (`schedrandom=1`) the new Gs are shuffled before they
    /// are published. `runnext` is not touched.
    ///
    /// `#[inline(always)]`: its one caller (`globrunqget`) moves a single G
    /// on every other `Gosched` of two yielding goroutines; out of line, the
    /// call cost more than the move (with `#[inline]`, LLVM kept it out of
    /// line once `globrunqget` was also inlined into `gosched_fast`).
    #[inline(always)]
    pub fn put_batch<I>(&self, items: &mut I, shuffle: Option<&mut FastRand>) -> u32
    where
        I: Iterator<Item = NonNull<T>>,
    {
        let q = self.q;
        // Acquire: pairs with consumers' CAS-release of `head` (see `put`).
        let h = q.head.load(Ordering::Acquire);
        // Relaxed: we are the only writer of `tail`.
        let t0 = q.tail.load(Ordering::Relaxed);
        let mut t = t0;
        while t.wrapping_sub(h) < RUNQ_SIZE {
            let Some(g) = items.next() else { break };
            // Relaxed: published by the store-release of `tail` below.
            q.ring[slot_index(t)].store(g.as_ptr(), Ordering::Relaxed);
            t = t.wrapping_add(1);
        }
        let n = t.wrapping_sub(t0);
        if let Some(rng) = shuffle {
            // Fisher-Yates over the unpublished slots t0 .. t0+n; no consumer
            // reads them before the `tail` store below.
            for i in (1..n).rev() {
                let j = rng.cheaprandn(i + 1);
                let (si, sj) = (slot_index(t0.wrapping_add(i)), slot_index(t0.wrapping_add(j)));
                // Relaxed: unpublished slots, only we touch them.
                let a = q.ring[si].load(Ordering::Relaxed);
                let b = q.ring[sj].load(Ordering::Relaxed);
                q.ring[si].store(b, Ordering::Relaxed);
                q.ring[sj].store(a, Ordering::Relaxed);
            }
        }
        if n > 0 {
            // Release: pairs with the load-acquire of `tail` in consumers.
            q.tail.store(t, Ordering::Release);
        }
        n
    }
}

impl<T> Steal<'_, T> {
    /// Number of Gs in the ring, not counting `runnext` (what Go's
    /// schedtrace prints as `runqsize`). A snapshot: it may be stale by the
    /// time it is returned.
    pub fn len(&self) -> u32 {
        let q = self.q;
        loop {
            // Acquire on both: pairs with the CAS-release of `head` in
            // consumers and the store-release of `tail` in `put`, so the
            // pair we read is ordered (`tail` read after `head` is at least
            // the tail that consumer saw).
            let h = q.head.load(Ordering::Acquire);
            let t = q.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h);
            if n <= RUNQ_SIZE {
                return n;
            }
            // `head` was stale and the owner wrapped past it: re-read.
            spin_hint();
        }
    }

    /// Go's `runqempty`: true only if the ring and `runnext` are both empty.
    ///
    /// It must not report "empty" while a G merely moves from `runnext` to
    /// the ring: `put(g1, next=false)` followed by `get()` taking the old
    /// runnext `g0` leaves `g1` on the ring, but a naive reader could see the
    /// old `tail` (ring empty) and then the new `runnext` (null). So we read
    /// `head`, `tail`, `runnext`, and re-read `tail`; if `tail` moved we
    /// start over. This is enough because `get` empties `runnext` with a
    /// release RMW *after* the store-release of the new `tail`: if our
    /// acquire load of `runnext` sees null, the re-read of `tail` sees the
    /// new tail and we retry.
    pub fn is_empty(&self) -> bool {
        let q = self.q;
        loop {
            // Acquire: pairs with consumers' CAS-release of `head`.
            let h = q.head.load(Ordering::Acquire);
            // Acquire: pairs with the store-release of `tail` in `put`.
            let t = q.tail.load(Ordering::Acquire);
            // Acquire: pairs with the AcqRel CAS/swap of `runnext` in `get`,
            // `drain`, `put` and `runqgrab` (see above).
            let next = q.runnext.load(Ordering::Acquire);
            // Acquire: as the first load of `tail`.
            if t == q.tail.load(Ordering::Acquire) {
                return h == t && next.is_null();
            }
            spin_hint();
        }
    }

    /// Go's `runqsteal`: steals half of this (the victim's) ring into `dst`
    /// (the thief's own queue) and returns one G for the thief to run now.
    ///
    /// If the victim's ring is empty and `steal_runnext` is set (the last
    /// pass of `stealWork`), takes the victim's `runnext` instead, after
    /// calling `on_runnext_wait()` (Go sleeps ~3us there when the victim is
    /// running, giving it the chance to run that G itself).
    ///
    /// # Panics
    /// If `dst` has fewer than `RUNQ_SIZE / 2` free slots (the kernel steals
    /// only when its own queue is empty; Go throws "runqsteal: runq
    /// overflow").
    pub fn steal_into(
        &self,
        dst: &Local<'_, T>,
        steal_runnext: bool,
        on_runnext_wait: impl Fn(),
    ) -> Option<NonNull<T>> {
        let dq = dst.q;
        debug_assert!(!ptr::eq(self.q, dq), "runqsteal: stealing from oneself");
        // Relaxed: `dst` is ours, we are the only writer of its `tail`.
        let t = dq.tail.load(Ordering::Relaxed);
        // Acquire: pairs with the CAS-release of `head` by consumers of
        // `dst`: their reads of the slots we are about to fill are done.
        let dh = dq.head.load(Ordering::Acquire);
        // `dst`'s head only moves forward, so room can only grow after this
        // check; checking before the grab means we never overwrite a live G.
        assert!(
            t.wrapping_sub(dh) <= RUNQ_SIZE - RUNQ_SIZE / 2,
            "runqsteal: runq overflow (thief's own queue must have room for half a ring)"
        );
        let n = self.runqgrab(dq, t, steal_runnext, on_runnext_wait);
        if n == 0 {
            return None;
        }
        // The last grabbed G is run at once; the others stay on `dst`.
        let n = n - 1;
        // Relaxed: we wrote this slot in `runqgrab`.
        let g = dq.ring[slot_index(t.wrapping_add(n))].load(Ordering::Relaxed);
        if n > 0 {
            // Release: pairs with the load-acquire of `tail` in consumers of
            // `dst`; publishes the slots `runqgrab` filled.
            dq.tail.store(t.wrapping_add(n), Ordering::Release);
        }
        Some(must_be_g(g, "stolen batch"))
    }

    /// Go's `runqgrab`: copies `n - n/2` Gs of the victim's ring into `dst`'s
    /// slots starting at `dst_tail` (not published: the caller stores `tail`)
    /// and claims them with a CAS on the victim's `head`. Returns how many.
    fn runqgrab(
        &self,
        dq: &RunQueue<T>,
        dst_tail: u32,
        steal_runnext: bool,
        on_runnext_wait: impl Fn(),
    ) -> u32 {
        //~ lab2 begin runqgrab: loop: load-acquire head, then tail; n = len - len/2 (the older half,
        //~ rounded up). n == 0: with steal_runnext, take the victim's runnext instead (call
        //~ on_runnext_wait first, CAS it to null, put it in dst's slot dst_tail, 1), else 0.
        //~ n > RUNQ_SIZE/2: a stale head, read again. Copy slots h .. h+n to dst's slots from
        //~ dst_tail (unpublished), then claim them with a CAS-release of head; lost: start over.
        let q = self.q;
        loop {
            // Acquire: pairs with other consumers' CAS-release of `head`.
            let h = q.head.load(Ordering::Acquire);
            // Acquire: pairs with the owner's store-release of `tail` in
            // `put`/`put_batch`/`steal_into`: the slots below it are filled.
            let t = q.tail.load(Ordering::Acquire);
            let len = t.wrapping_sub(h);
            let n = len - len / 2;
            if n == 0 {
                if steal_runnext {
                    // Acquire: pairs with the swap-release in `put`: we see
                    // the G's contents written before it was put.
                    let next = q.runnext.load(Ordering::Acquire);
                    if !next.is_null() {
                        on_runnext_wait();
                        // AcqRel: as every RMW of runnext (see `get` and
                        // `is_empty`); failure means the owner ran it or
                        // replaced it: start over.
                        if q
                            .runnext
                            .compare_exchange(
                                next,
                                ptr::null_mut(),
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            )
                            .is_err()
                        {
                            continue;
                        }
                        // Relaxed: published by the caller's store-release
                        // of `dst.tail` (or handed straight to the thief).
                        dq.ring[slot_index(dst_tail)].store(next, Ordering::Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > RUNQ_SIZE / 2 {
                // Inconsistent snapshot: `head` was stale and the owner has
                // since added more than a ring's worth. Read again.
                spin_hint();
                continue;
            }
            for i in 0..n {
                // Relaxed: ordered after the acquire of `tail`; may be stale
                // only if someone consumed it, and then the CAS below fails.
                let g = q.ring[slot_index(h.wrapping_add(i))].load(Ordering::Relaxed);
                // Relaxed: `dst` slots past its tail, unpublished.
                dq.ring[slot_index(dst_tail.wrapping_add(i))].store(g, Ordering::Relaxed);
            }
            // Release: pairs with the victim owner's acquire load of `head`
            // in `put`, so our slot reads happen before it reuses the slots.
            // Failure is Relaxed: we loop and reload with Acquire.
            if q
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return n;
            }
        }
        //~ lab2 end
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, not(loom)))]
mod runnext_tests;

#[cfg(all(test, loom))]
mod loom_tests;
