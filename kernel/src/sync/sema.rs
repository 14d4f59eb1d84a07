//! Semaphores: Go's `runtime/sema.go`, the sleeping half of `sync.Mutex`,
//! `sync.WaitGroup` (and of [`Semaphore`]).
//!
//! A semaphore is just a `u32` counter somewhere in memory (`addr`); the
//! goroutines waiting for it are kept elsewhere, in a fixed table of
//! [`SEMTABSZ`] roots hashed by the counter's address, so a mutex costs no
//! more than two words.
//!
//! ## The semaphore protocol
//!
//! - `cansemacquire`: take a unit with a CAS loop `v -> v - 1` while `v > 0`.
//! - `semacquire1`: if `cansemacquire` fails, lock the root, *count
//!   ourselves as a waiter* (`nwait += 1`), try `cansemacquire` once more,
//!   and only if that fails too enqueue a sudog and park (the commit
//!   function releases the root lock).
//! - `semrelease1`: add the unit (`*addr += 1`), then read `nwait`: if it is
//!   zero, nobody can be asleep, return at once without any lock; otherwise
//!   lock the root, dequeue one waiter for this address and ready it.
//!
//! The two halves form a Dekker pair: the acquirer writes `nwait` then
//! reads `*addr`; the releaser writes `*addr` then reads `nwait` (all
//! SeqCst, i.e. a full fence between each write and read on x86). At least
//! one of them sees the other's write: either the acquirer sees the unit and
//! takes it, or the releaser sees the waiter and goes to wake it (it then
//! takes the root lock, which the acquirer holds until it is parked, so the
//! sudog is on the list by the time the releaser looks).
//!
//! A woken waiter tries `cansemacquire` again and may lose to a goroutine
//! that never slept (barging), then waits again. With `handoff` (the
//! mutex's starvation mode), the releaser instead takes the unit itself and
//! passes it to the waiter (`ticket = 1`), then yields (`goyield`: to the
//! tail of this P's local queue) so that the waiter, now in this P's
//! `runnext`, runs at once.
//!
//! Many addresses may hash to one root, so, as Go does with a treap, each
//! root keeps a balanced tree keyed by address whose nodes hold that
//! address's waiters in FIFO order ([`gmp_core::semtree::SemaTree`]):
//! finding an address's first waiter is O(log n) in the distinct addresses
//! waited on in the root, however many goroutines wait on the others.
//! `lifo` puts the waiter at the front of its address's list (the mutex
//! requeues a waiter that was already woken at the front).
use super::sudog::{acquire_sudog, release_sudog, Sudog};
use gmp_core::semtree::SemaTree;
use crate::runtime::lock::RuntimeLock;
use crate::runtime::runtime2::OwnerCell;
use crate::WaitReason;
use core::sync::atomic::{AtomicU32, Ordering};

/// Number of roots (Go's `semTabSize`, a prime).
pub const SEMTABSZ: usize = 251;

/// One bucket of waiters (Go's `semaRoot`), padded to its own cache line.
#[repr(align(64))]
struct SemaRoot {
    lock: RuntimeLock<()>,
    /// (lock) The waiters of every address hashing here: a balanced tree
    /// keyed by address, each node a FIFO of that address's sudogs (Go's
    /// treap). Its sudogs are owned by the lock holder.
    tree: OwnerCell<SemaTree<*mut Sudog>>,
    /// Waiters, readable without the lock (the Dekker half, see above).
    nwait: AtomicU32,
}

static SEMTABLE: [SemaRoot; SEMTABSZ] =
    [const { SemaRoot { lock: RuntimeLock::new(()), tree: OwnerCell::new(SemaTree::new()), nwait: AtomicU32::new(0) } };
        SEMTABSZ];

fn semroot(addr: &AtomicU32) -> &'static SemaRoot {
    &SEMTABLE[(addr as *const AtomicU32 as usize >> 3) % SEMTABSZ]
}

/// The root an address hashes to (tests and benchmarks build collisions
/// with it: addresses `SEMTABSZ * 8` bytes apart share a root).
pub fn semroot_index(addr: &AtomicU32) -> usize {
    (addr as *const AtomicU32 as usize >> 3) % SEMTABSZ
}

impl SemaRoot {
    /// Add `s` (key set) as a waiter on its address. Lock held.
    unsafe fn queue(&self, s: *mut Sudog, lifo: bool) {
        // SAFETY: the lock holder owns the tree; s is owned by the caller
        // and on no list, and stays allocated while queued.
        unsafe { self.tree.get_mut().queue((*s).key, s, lifo) }
    }

    /// Remove and return the first waiter for `key`. Lock held.
    unsafe fn dequeue(&self, key: usize) -> Option<*mut Sudog> {
        // SAFETY: as in queue.
        unsafe { self.tree.get_mut().dequeue(key) }
    }
}

/// Go's `cansemacquire`.
fn cansemacquire(addr: &AtomicU32) -> bool {
    // SeqCst: the acquirer's read of the Dekker pair (module comment);
    // pairs with the fetch_add in semrelease1.
    let mut v = addr.load(Ordering::SeqCst);
    loop {
        if v == 0 {
            return false;
        }
        // SeqCst: as above; success also acquires what the releaser wrote
        // before its release.
        match addr.compare_exchange_weak(v, v - 1, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return true,
            Err(cur) => v = cur,
        }
    }
}

/// Go's `semacquire1`: wait until `*addr > 0`, then decrement it.
pub(crate) fn semacquire1(addr: &AtomicU32, lifo: bool, reason: WaitReason) {
    if cansemacquire(addr) {
        return;
    }
    let root = semroot(addr);
    let s = acquire_sudog();
    // SAFETY: s is ours until queued.
    unsafe {
        (*s).g = crate::current();
        (*s).key = addr as *const AtomicU32 as usize;
        (*s).ticket = 0;
    }
    loop {
        let guard = root.lock.lock();
        // SeqCst: the acquirer's write of the Dekker pair; pairs with the
        // load in semrelease1.
        root.nwait.fetch_add(1, Ordering::SeqCst);
        if cansemacquire(addr) {
            // SeqCst: undoes the announcement above (same pair).
            root.nwait.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            break;
        }
        // SAFETY: root lock held; s is ours and on no list.
        unsafe { root.queue(s, lifo) };
        core::mem::forget(guard);
        crate::runtime::proc::goparkunlock(&root.lock, reason);
        // Woken by semrelease1, which dequeued s (and decremented nwait).
        // SAFETY: dequeued, so ours again; `ticket` was written before the
        // ready that woke us.
        if unsafe { (*s).ticket } != 0 || cansemacquire(addr) {
            break;
        }
    }
    // SAFETY: ours, on no list.
    unsafe {
        (*s).key = 0;
        (*s).ticket = 0;
        release_sudog(s);
    }
}

/// Go's `semrelease1`: `*addr += 1` and wake one waiter, if any. With
/// `handoff`, pass the unit directly to the waiter and yield to it.
pub(crate) fn semrelease1(addr: &AtomicU32, handoff: bool) {
    let root = semroot(addr);
    // SeqCst: the releaser's write of the Dekker pair; pairs with the loads
    // in cansemacquire.
    addr.fetch_add(1, Ordering::SeqCst);
    // SeqCst: the releaser's read; pairs with the fetch_add in semacquire1.
    if root.nwait.load(Ordering::SeqCst) == 0 {
        return;
    }
    let guard = root.lock.lock();
    // Relaxed: under the root lock, which orders all changes of nwait made
    // while a waiter is queued.
    if root.nwait.load(Ordering::Relaxed) == 0 {
        // Counted, but took the unit itself and left.
        drop(guard);
        return;
    }
    // SAFETY: root lock held.
    let s = unsafe { root.dequeue(addr as *const AtomicU32 as usize) };
    if s.is_some() {
        // SeqCst: same pair as above.
        root.nwait.fetch_sub(1, Ordering::SeqCst);
    }
    drop(guard);
    let Some(s) = s else { return };
    let mut handed = false;
    if handoff && cansemacquire(addr) {
        // SAFETY: dequeued and not yet readied: ours.
        unsafe { (*s).ticket = 1 };
        handed = true;
    }
    // SAFETY: as above; read before `ready`, after which it is not ours.
    let g = unsafe { (*s).g };
    crate::ready(g);
    if handed && !crate::runtime::lock::preempt_disabled() {
        // Direct hand-off: the waiter is in our runnext; let it run now,
        // and queue ourselves at the tail of this P's local queue (Go's
        // goyield), not at the back of the global queue as gosched would.
        crate::runtime::proc::goyield();
    }
}

/// `runtime_Semacquire`: wait for a unit of the semaphore at `addr`.
pub fn semacquire(addr: &AtomicU32) {
    semacquire1(addr, false, WaitReason::Semacquire);
}

/// `runtime_Semrelease`: add a unit to the semaphore at `addr`, waking one
/// waiter.
pub fn semrelease(addr: &AtomicU32) {
    semrelease1(addr, false);
}

/// A counting semaphore (`semacquire`/`semrelease` on its own counter).
pub struct Semaphore {
    value: AtomicU32,
}

impl Semaphore {
    pub const fn new(units: u32) -> Self {
        Semaphore { value: AtomicU32::new(units) }
    }

    /// Take a unit, sleeping until one is available.
    pub fn acquire(&self) {
        semacquire(&self.value);
    }

    /// Take a unit if one is available now.
    pub fn try_acquire(&self) -> bool {
        cansemacquire(&self.value)
    }

    /// Give a unit back, waking one waiter.
    pub fn release(&self) {
        semrelease(&self.value);
    }

    /// Units available right now.
    pub fn available(&self) -> u32 {
        // Relaxed: a snapshot for statistics.
        self.value.load(Ordering::Relaxed)
    }
}
