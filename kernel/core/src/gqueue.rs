//! Intrusive G lists (Go's `gQueue` and `gList`), the batch rule of
//! `globrunqget` and the 1-in-61 fairness check of `findRunnable`.
//!
//! Lines starting with `//~ lab3` mark the code that lab 3 of the course
//! (`labs/lab3/`) takes out of a student's tree; they change nothing here.
//!
//! # Intrusive lists
//!
//! The global run queue, the global free list and a P's free list must never
//! allocate: a G is put on them from the scheduler, with a spin lock held,
//! possibly from an interrupt. So, as in Go, the "next" pointer lives inside
//! the G itself (`g.schedlink`), and a list is just a head (and a tail for the
//! FIFO). A G can therefore be on at most one such list at a time, which is
//! exactly the scheduler's rule anyway (a G is either running, or on one
//! queue, or parked somewhere else).
//!
//! These types are not thread-safe: the kernel keeps them under a lock
//! (`sched.lock` for the global queue) or in per-P state.
//!
//! # Safety contract
//!
//! The lists hold `NonNull<T>` and follow the links inside the Ts, so pushing
//! is `unsafe`: the caller promises that the G is alive, is on no other list,
//! and stays alive until it is popped. Popping, length and iteration are safe
//! because they only touch Gs that were pushed under that promise.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::runq::RUNQ_SIZE;

/// A type that can be linked into a [`GQueue`] or [`GList`] (Go: a G with its
/// `schedlink` field).
///
/// # Safety
/// `link` must always return the same field of `self`, and nothing but the
/// lists in this module may write that field while the value is on a list.
pub unsafe trait Linked {
    /// The link field (Go: `schedlink`).
    fn link(&self) -> &Cell<Option<NonNull<Self>>>;
}

/// Reads the link of `g`.
///
/// # Safety
/// `g` must point to a live `T` (guaranteed for every element of a list by the
/// push contract).
unsafe fn next_of<T: Linked>(g: NonNull<T>) -> Option<NonNull<T>> {
    // SAFETY: the caller guarantees `g` is live; `link()` only hands out a
    // shared reference to a `Cell`, which is fine to read through.
    unsafe { g.as_ref() }.link().get()
}

/// Writes the link of `g`.
///
/// # Safety
/// As for [`next_of`].
unsafe fn set_next<T: Linked>(g: NonNull<T>, next: Option<NonNull<T>>) {
    // SAFETY: as in `next_of`; `Cell::set` through a shared reference is
    // allowed, and by the `Linked` contract no one else writes the field
    // while the G is (being put) on a list.
    unsafe { g.as_ref() }.link().set(next);
}

/// A FIFO of Gs linked through their `schedlink` (Go: `gQueue`). Used for the
/// global run queue (`sched.runq`).
pub struct GQueue<T: Linked> {
    head: Option<NonNull<T>>,
    tail: Option<NonNull<T>>,
    len: u32,
}

// SAFETY: a GQueue only holds pointers, and by the push contract it is the
// only thing that touches the link fields of its elements. Moving the queue to
// another core (for instance inside a lock) moves that exclusive right with
// it; dereferencing a popped pointer is the caller's business.
unsafe impl<T: Linked> Send for GQueue<T> {}

impl<T: Linked> Default for GQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Linked> GQueue<T> {
    /// An empty queue.
    pub const fn new() -> Self {
        GQueue { head: None, tail: None, len: 0 }
    }

    /// Number of Gs on the queue (Go tracks it beside: `sched.runqsize`).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The first G, without removing it.
    pub fn front(&self) -> Option<NonNull<T>> {
        self.head
    }

    /// Appends `g` (Go: `gQueue.pushBack`).
    ///
    /// # Safety
    /// `g` points to a live `T` that is on no other list and stays alive
    /// until it is popped.
    pub unsafe fn push_back(&mut self, g: NonNull<T>) {
        // SAFETY: `g` is live by our caller's promise.
        unsafe { set_next(g, None) };
        match self.tail {
            // SAFETY: `tail` is an element of this queue, so it is live.
            Some(t) => unsafe { set_next(t, Some(g)) },
            None => self.head = Some(g),
        }
        self.tail = Some(g);
        self.len += 1;
    }

    /// Prepends `g` (Go: `gQueue.push`).
    ///
    /// # Safety
    /// As for [`Self::push_back`].
    pub unsafe fn push_front(&mut self, g: NonNull<T>) {
        // SAFETY: `g` is live by our caller's promise.
        unsafe { set_next(g, self.head) };
        self.head = Some(g);
        if self.tail.is_none() {
            self.tail = Some(g);
        }
        self.len += 1;
    }

    /// Moves all of `other` to the back of `self`, leaving `other` empty
    /// (Go: `gQueue.pushBackAll`). O(1).
    pub fn push_back_all(&mut self, other: &mut GQueue<T>) {
        let Some(other_head) = other.head else { return };
        match self.tail {
            // SAFETY: `tail` is an element of this queue, so it is live.
            Some(t) => unsafe { set_next(t, Some(other_head)) },
            None => self.head = Some(other_head),
        }
        self.tail = other.tail;
        self.len += other.len;
        *other = GQueue::new();
    }

    /// Removes and returns the first G (Go: `gQueue.pop`).
    pub fn pop_front(&mut self) -> Option<NonNull<T>> {
        let g = self.head?;
        // SAFETY: `g` is an element of this queue, so it is live.
        self.head = unsafe { next_of(g) };
        if self.head.is_none() {
            self.tail = None;
        }
        // Leave no stale link behind (helps debugging, as Go does).
        // SAFETY: `g` is live (see above) and no longer on the queue.
        unsafe { set_next(g, None) };
        self.len -= 1;
        Some(g)
    }

    /// Iterates over the Gs from front to back without removing them (for
    /// schedtrace's `scheddetail`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { cur: self.head, _list: PhantomData }
    }
}

/// A LIFO stack of Gs linked through their `schedlink` (Go: `gList`). Used for
/// the free lists (`p.gFree`, `sched.gFree`).
pub struct GList<T: Linked> {
    head: Option<NonNull<T>>,
    len: u32,
}

// SAFETY: as for `GQueue`.
unsafe impl<T: Linked> Send for GList<T> {}

impl<T: Linked> Default for GList<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Linked> GList<T> {
    /// An empty list.
    pub const fn new() -> Self {
        GList { head: None, len: 0 }
    }

    /// Number of Gs on the list (Go keeps it beside: `p.gFree.n`).
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Pushes `g` on top (Go: `gList.push`).
    ///
    /// # Safety
    /// `g` points to a live `T` that is on no other list and stays alive
    /// until it is popped.
    pub unsafe fn push(&mut self, g: NonNull<T>) {
        // SAFETY: `g` is live by our caller's promise.
        unsafe { set_next(g, self.head) };
        self.head = Some(g);
        self.len += 1;
    }

    /// Moves every G of `q` onto this list, leaving `q` empty (Go:
    /// `gList.pushAll`). O(1): `q`'s tail is linked to our old head.
    pub fn push_all(&mut self, q: &mut GQueue<T>) {
        let (Some(h), Some(t)) = (q.head, q.tail) else { return };
        // SAFETY: `t` is an element of `q`, so it is live.
        unsafe { set_next(t, self.head) };
        self.head = Some(h);
        self.len += q.len;
        *q = GQueue::new();
    }

    /// Removes and returns the top G (Go: `gList.pop`).
    pub fn pop(&mut self) -> Option<NonNull<T>> {
        let g = self.head?;
        // SAFETY: `g` is an element of this list, so it is live.
        self.head = unsafe { next_of(g) };
        // SAFETY: `g` is live and no longer on the list.
        unsafe { set_next(g, None) };
        self.len -= 1;
        Some(g)
    }

    /// Iterates from top to bottom without removing anything.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { cur: self.head, _list: PhantomData }
    }
}

/// Iterator over the Gs of a [`GQueue`] or [`GList`].
pub struct Iter<'a, T: Linked> {
    cur: Option<NonNull<T>>,
    _list: PhantomData<&'a ()>,
}

impl<T: Linked> Iterator for Iter<'_, T> {
    type Item = NonNull<T>;

    fn next(&mut self) -> Option<NonNull<T>> {
        let g = self.cur?;
        // SAFETY: `g` is an element of the borrowed list, which cannot change
        // while we borrow it, so `g` is live.
        self.cur = unsafe { next_of(g) };
        Some(g)
    }
}

/// How many Gs `globrunqget` moves from the global queue to a P in one go.
///
/// Go's rule: a P takes its fair share of the global queue plus one,
/// `sched_len / gomaxprocs + 1`, but never more than the queue holds, never
/// more than `max` when `max > 0`, and never more than half a local ring
/// (`RUNQ_SIZE / 2` = 128) so that the batch always fits beside what the P
/// already has. One of the returned Gs is run at once, the rest go to the
/// P's local queue.
///
/// `gomaxprocs == 0` is treated as 1.
pub fn globrunqget_count(sched_len: u32, gomaxprocs: u32, max: u32) -> u32 {
    //~ lab3 begin globrunqget_count: the fair share plus one (sched_len / gomaxprocs + 1), capped by
    //~ the queue's length, by max when max > 0, and by half a local ring (RUNQ_SIZE / 2).
    if sched_len == 0 {
        return 0;
    }
    let mut n = (sched_len / gomaxprocs.max(1)).saturating_add(1);
    if n > sched_len {
        n = sched_len;
    }
    if max > 0 && n > max {
        n = max;
    }
    n.min(RUNQ_SIZE / 2)
    //~ lab3 end
}

/// The fairness check at the top of `findRunnable`: true when this schedule
/// must look at the global queue before the local one.
///
/// Go does it on every 61st schedule of a P (`pp.schedtick % 61 == 0`) when
/// the global queue is not empty, and then takes one G (`globrunqget(pp, 1)`).
/// Without it, Gs that keep readying each other on one P (so its local queue
/// is never empty) would starve the global queue for ever. 61 is a prime, so
/// that the check does not fall into step with some periodic pattern of the
/// program. `schedtick` counts the schedules that did not inherit a time
/// slice (see `execute`), so a chain of `runnext` hand-offs counts as one.
pub fn check_global_first(schedtick: u32, sched_len: u32) -> bool {
    //~ lab3 begin check_global_first: every 61st schedtick, and only if the global queue has a G.
    schedtick % 61 == 0 && sched_len > 0
    //~ lab3 end
}

#[cfg(test)]
mod tests;

