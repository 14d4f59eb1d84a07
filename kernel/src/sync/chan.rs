//! Channels: Go's `runtime/chan.go`.
//!
//! [`Chan<T>`] is a cheap handle (an `Arc`) to an [`HChan`], the untyped
//! channel that every operation works on: it knows only the element size,
//! and moves elements with a byte copy, as Go's `typedmemmove` does. That is
//! what lets one `select` wait on channels of different element types.
//!
//! ## The channel protocol
//!
//! An `HChan` has a ring buffer of `dataqsiz` slots (none for an unbuffered
//! channel), a queue of blocked receivers (`recvq`) and one of blocked
//! senders (`sendq`), and a `closed` flag. Everything is read and written
//! under `lock`, except where the lock-free fast paths below say otherwise.
//! Invariants, with the lock held:
//!
//! - if `recvq` is not empty, the buffer is empty (a receiver only waits
//!   when there is nothing to take);
//! - if `sendq` is not empty, the buffer is full (a sender only waits when
//!   there is no room), which for an unbuffered channel is always;
//! - so at most one of the two queues is non-empty (apart from `select`
//!   sudogs that lost their race and are about to be removed, which both
//!   dequeue paths skip).
//!
//! **Send** (`chansend`), with the lock held:
//! 1. closed: panic `send on closed channel`;
//! 2. a receiver waits: copy the value *straight into its stack slot*
//!    (`sudog.elem`), set `success`, `param = sudog`, and `ready` it: it
//!    goes to this P's `runnext`, so it usually runs next, right here;
//! 3. room in the buffer: copy to slot `sendx`;
//! 4. otherwise, for a non-blocking send, fail; for a blocking one, enqueue
//!    a sudog pointing at our value on `sendq` and park. The lock is
//!    released by the park's commit (`goparkunlock`; Go's `chanparkcommit`) once we are
//!    marked waiting: a receiver that takes our sudog a nanosecond later
//!    finds us parked, and its `ready` cannot be lost. The receiver copies
//!    the value out of our stack, then readies us.
//!
//! **Receive** (`chanrecv`), with the lock held:
//! 1. closed and empty: return "closed" (`None`, or `(zero, false)`);
//! 2. a sender waits: for an unbuffered channel, copy its value straight
//!    from its stack; for a (necessarily full) buffered one, take the oldest
//!    buffered value and put the sender's value in the slot just freed, so
//!    FIFO order holds. Then ready the sender;
//! 3. a value is buffered: take slot `recvx`;
//! 4. otherwise fail (non-blocking) or enqueue on `recvq` and park as above.
//!
//! **Close** (`closechan`): set `closed`, then take *every* waiter off both
//! queues, mark them `success = false` and ready them all (after releasing
//! the lock). A woken receiver returns "closed"; a woken sender panics, as
//! in Go. Close of a closed (or nil) channel panics.
//!
//! **Fast paths without the lock** (Go's `full`/`empty` checks): a
//! non-blocking operation that would obviously fail returns without taking
//! the lock. `qcount`, `closed` and each queue's `first` are atomics, stored
//! with release ordering under the lock and loaded with acquire ordering
//! here. A non-blocking receive first sees "empty", then "not closed": since
//! a channel never reopens, it was open and empty at the moment of the first
//! load, so failing is a correct answer for that moment. If it sees
//! "closed", it re-checks "empty": everything sent before the close is
//! visible then (the close's store is ordered after it), so "closed and
//! empty" is only reported when it is true. (Go's TestNonblockRecvRace.)
//!
//! **Nil channels** (`Chan::nil()`): send and receive block forever (the
//! goroutine parks with `chan send (nil chan)` / `chan receive (nil chan)`,
//! which the deadlock detector reports); non-blocking ones fail; in a
//! `select` the case is never chosen.
use super::sudog::{acquire_sudog, clear_param, release_sudog, set_param, take_param, Sudog};
use crate::runtime::lock::RuntimeLock;
use crate::runtime::runtime2::OwnerCell;
use crate::{GoroutineHandle, WaitReason};
use alloc::alloc::Layout;
use alloc::sync::Arc;
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ptr::{self, null_mut};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// A queue of waiting goroutines (Go's `waitq`): a doubly linked list of
/// sudogs through `next`/`prev`. Changed only under the channel's lock;
/// `first` is also read without it by the fast paths.
pub(crate) struct WaitQ {
    first: AtomicPtr<Sudog>,
    last: OwnerCell<*mut Sudog>,
}

impl WaitQ {
    const fn new() -> Self {
        WaitQ { first: AtomicPtr::new(null_mut()), last: OwnerCell::new(null_mut()) }
    }

    /// Is anyone (possibly a stale select sudog) waiting? Lock-free peek.
    fn is_empty_racy(&self) -> bool {
        // Acquire: pairs with the release stores of `first` in enqueue /
        // dequeue (made under the channel lock).
        self.first.load(Ordering::Acquire).is_null()
    }

    fn set_first(&self, sg: *mut Sudog) {
        // Release: pairs with the acquire load in `is_empty_racy`.
        self.first.store(sg, Ordering::Release);
    }

    /// Append `sg` (Go's `enqueue`).
    ///
    /// # Safety
    /// The channel lock is held; `sg` is owned by the caller and on no queue.
    pub(crate) unsafe fn enqueue(&self, sg: *mut Sudog) {
        // SAFETY: the lock holder owns the queue and its sudogs' links.
        unsafe {
            (*sg).next = null_mut();
            let x = self.last.get();
            if x.is_null() {
                (*sg).prev = null_mut();
                self.set_first(sg);
            } else {
                (*sg).prev = x;
                (*x).next = sg;
            }
            self.last.set(sg);
        }
    }

    /// Take the first waiter that can still be woken (Go's `dequeue`). A
    /// `select` sudog whose goroutine was already won by another channel
    /// (its `select_done` is set) is dropped from the queue and skipped.
    ///
    /// # Safety
    /// The channel lock is held.
    pub(crate) unsafe fn dequeue(&self) -> Option<*mut Sudog> {
        loop {
            // Relaxed: we hold the lock, which orders all writes of `first`.
            let sg = self.first.load(Ordering::Relaxed);
            if sg.is_null() {
                return None;
            }
            // SAFETY: sg is on our queue, owned by us as the lock holder.
            unsafe {
                let y = (*sg).next;
                if y.is_null() {
                    self.set_first(null_mut());
                    self.last.set(null_mut());
                } else {
                    (*y).prev = null_mut();
                    self.set_first(y);
                    (*sg).next = null_mut();
                }
                // A select goroutine waits on several channels; only the
                // first waker to flip its flag 0 -> 1 may complete it. The
                // loser drops the sudog from this queue; the selecting
                // goroutine itself removes the rest when it wakes.
                if (*sg).is_select {
                    // AcqRel: pairs with the same CAS made by wakers on the
                    // select's other channels (whose locks we do not hold).
                    let done = &*(*sg).select_done;
                    if done.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                        continue;
                    }
                }
            }
            return Some(sg);
        }
    }

    /// Remove a given sudog, if it is still queued (Go's `dequeueSudoG`):
    /// a select takes its losing sudogs back.
    ///
    /// # Safety
    /// The channel lock is held; `sg` was enqueued on this queue (it may
    /// have been dequeued since).
    pub(crate) unsafe fn dequeue_sudog(&self, sg: *mut Sudog) {
        // SAFETY: the lock holder owns the queue's links.
        unsafe {
            let x = (*sg).prev;
            let y = (*sg).next;
            if !x.is_null() {
                if !y.is_null() {
                    (*x).next = y;
                    (*y).prev = x;
                    (*sg).next = null_mut();
                    (*sg).prev = null_mut();
                } else {
                    (*x).next = null_mut();
                    self.last.set(x);
                    (*sg).prev = null_mut();
                }
                return;
            }
            if !y.is_null() {
                (*y).prev = null_mut();
                self.set_first(y);
                (*sg).next = null_mut();
                return;
            }
            // No neighbours: either the only element, or already removed.
            // Relaxed: under the lock.
            if self.first.load(Ordering::Relaxed) == sg {
                self.set_first(null_mut());
                self.last.set(null_mut());
            }
        }
    }
}

/// An untyped channel (Go's `hchan`). Fields marked (L) are guarded by
/// `lock`; the atomics among them are also read without it (see the module
/// comment's fast paths).
pub struct HChan {
    pub(crate) lock: RuntimeLock<()>,
    /// (L) Number of buffered elements.
    qcount: AtomicUsize,
    /// (L) Set once by close.
    closed: AtomicBool,
    /// (L) Ring indexes: next slot to fill, next slot to drain.
    sendx: OwnerCell<usize>,
    recvx: OwnerCell<usize>,
    /// (L) Blocked receivers and senders.
    pub(crate) recvq: WaitQ,
    pub(crate) sendq: WaitQ,
    /// The ring: `dataqsiz` slots of `elemsize` bytes; slot contents (L).
    buf: *mut u8,
    dataqsiz: usize,
    elemsize: usize,
    buf_layout: Layout,
    /// Drops one element in place (for elements still buffered when the
    /// last handle goes away).
    drop_elem: unsafe fn(*mut u8),
}

// SAFETY: the buffer and the sudog links are only touched under `lock`;
// the rest is atomics or immutable. `Chan<T>` only exists for `T: Send`
// where it is shared, so moving elements between goroutines is allowed.
unsafe impl Send for HChan {}
unsafe impl Sync for HChan {}

unsafe fn drop_elem<T>(p: *mut u8) {
    // SAFETY: the caller passes a slot holding a live T.
    unsafe { ptr::drop_in_place(p as *mut T) }
}

impl HChan {
    /// Go's `makechan`.
    fn new<T>(size: usize) -> HChan {
        let buf_layout = Layout::array::<T>(size).unwrap_or_else(|_| panic!("makechan: size out of range"));
        let buf = if buf_layout.size() == 0 {
            // Unbuffered, or zero-sized elements: no memory needed, but the
            // pointer must be aligned and non-null.
            ptr::NonNull::<T>::dangling().as_ptr() as *mut u8
        } else {
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc::alloc::alloc(buf_layout) };
            if p.is_null() {
                alloc::alloc::handle_alloc_error(buf_layout);
            }
            p
        };
        HChan {
            lock: RuntimeLock::new(()),
            qcount: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            sendx: OwnerCell::new(0),
            recvx: OwnerCell::new(0),
            recvq: WaitQ::new(),
            sendq: WaitQ::new(),
            buf,
            dataqsiz: size,
            elemsize: core::mem::size_of::<T>(),
            buf_layout,
            drop_elem: drop_elem::<T>,
        }
    }

    /// Address of ring slot `i` (Go's `chanbuf`).
    fn chanbuf(&self, i: usize) -> *mut u8 {
        // SAFETY: i < dataqsiz, so the offset stays inside the allocation
        // (or is 0 for zero-sized elements).
        unsafe { self.buf.add(i * self.elemsize) }
    }

    /// Go's `typedmemmove`: move one element's bytes.
    ///
    /// # Safety
    /// Both point to `elemsize` valid bytes; they do not overlap.
    #[inline]
    unsafe fn copy_elem(&self, dst: *mut u8, src: *const u8) {
        // Word sizes with one load and one store, as Go's `memmove` does
        // for small sizes, rather than a call into `memcpy` with a length
        // known only at run time (two per hand-off).
        // SAFETY: forwarded from the caller; unaligned accesses, since the
        // pointers are only known to point to `elemsize` bytes.
        unsafe {
            match self.elemsize {
                0 => {}
                1 => dst.write(src.read()),
                2 => (dst as *mut u16).write_unaligned((src as *const u16).read_unaligned()),
                4 => (dst as *mut u32).write_unaligned((src as *const u32).read_unaligned()),
                8 => (dst as *mut u64).write_unaligned((src as *const u64).read_unaligned()),
                16 => (dst as *mut u128).write_unaligned((src as *const u128).read_unaligned()),
                n => ptr::copy_nonoverlapping(src, dst, n),
            }
        }
    }

    fn qcount_locked(&self) -> usize {
        // Relaxed: we hold the lock, which orders all stores.
        self.qcount.load(Ordering::Relaxed)
    }

    fn set_qcount(&self, n: usize) {
        // Release: pairs with the acquire loads in `full`/`empty`/`len`.
        self.qcount.store(n, Ordering::Release);
    }

    pub(crate) fn is_closed_locked(&self) -> bool {
        // Relaxed: under the lock.
        self.closed.load(Ordering::Relaxed)
    }

    /// Would a send block? (Go's `full`; lock-free, may be stale.)
    fn full(&self) -> bool {
        if self.dataqsiz == 0 {
            return self.recvq.is_empty_racy();
        }
        // Acquire: pairs with set_qcount.
        self.qcount.load(Ordering::Acquire) == self.dataqsiz
    }

    /// Would a receive block? (Go's `empty`; lock-free, may be stale.)
    fn empty(&self) -> bool {
        if self.dataqsiz == 0 {
            return self.sendq.is_empty_racy();
        }
        // Acquire: pairs with set_qcount.
        self.qcount.load(Ordering::Acquire) == 0
    }

    fn closed_racy(&self) -> bool {
        // Acquire: pairs with the release store in closechan, so buffered
        // values sent before the close are visible to the re-check.
        self.closed.load(Ordering::Acquire)
    }

    // -- the buffer, lock held ------------------------------------------

    /// Put the value at `ep` in slot `sendx`. Lock held, buffer not full.
    pub(crate) unsafe fn buf_send(&self, ep: *const u8) {
        // SAFETY: we hold the lock (caller), so the ring indexes and the
        // free slot are ours; ep holds an element.
        unsafe {
            let x = self.sendx.get();
            self.copy_elem(self.chanbuf(x), ep);
            self.sendx.set(if x + 1 == self.dataqsiz { 0 } else { x + 1 });
        }
        self.set_qcount(self.qcount_locked() + 1);
    }

    /// Move slot `recvx` to `ep`. Lock held, buffer not empty.
    pub(crate) unsafe fn buf_recv(&self, ep: *mut u8) {
        // SAFETY: as in buf_send; the slot holds an element, moved out.
        unsafe {
            let x = self.recvx.get();
            self.copy_elem(ep, self.chanbuf(x));
            self.recvx.set(if x + 1 == self.dataqsiz { 0 } else { x + 1 });
        }
        self.set_qcount(self.qcount_locked() - 1);
    }

    pub(crate) fn can_buf_send(&self) -> bool {
        self.qcount_locked() < self.dataqsiz
    }

    pub(crate) fn can_buf_recv(&self) -> bool {
        self.qcount_locked() > 0
    }

    /// Go's `send` (the part under the lock): hand the value at `ep` to the
    /// waiting receiver `sg`. Returns the goroutine to `ready` once the
    /// caller has released the lock(s).
    ///
    /// # Safety
    /// Lock held; `sg` was just dequeued from `recvq`; `ep` holds a value,
    /// whose ownership moves to the receiver.
    pub(crate) unsafe fn send_to(&self, sg: *mut Sudog, ep: *const u8) -> GoroutineHandle {
        // SAFETY: sg is dequeued and we hold the lock: we are its owner until
        // we ready its goroutine; its elem is the receiver's slot, on the
        // stack of a goroutine that is parked.
        unsafe {
            self.copy_elem((*sg).elem, ep);
            (*sg).elem = null_mut();
            (*sg).success = true;
            set_param((*sg).g, sg);
            (*sg).g
        }
    }

    /// Go's `recv` (the part under the lock): take a value for `ep` from
    /// the waiting sender `sg`. Returns the goroutine to `ready`.
    ///
    /// # Safety
    /// Lock held; `sg` was just dequeued from `sendq`; `ep` is a slot to
    /// fill.
    pub(crate) unsafe fn recv_from(&self, sg: *mut Sudog, ep: *mut u8) -> GoroutineHandle {
        // SAFETY: as in send_to; the sender's elem holds its value.
        unsafe {
            if self.dataqsiz == 0 {
                self.copy_elem(ep, (*sg).elem);
            } else {
                // A sender waits, so the ring is full: the receiver takes
                // the head, and the sender's value goes to the tail, which
                // is the slot just freed (recvx == sendx when full).
                let x = self.recvx.get();
                let qp = self.chanbuf(x);
                self.copy_elem(ep, qp);
                self.copy_elem(qp, (*sg).elem);
                let x = if x + 1 == self.dataqsiz { 0 } else { x + 1 };
                self.recvx.set(x);
                self.sendx.set(x);
            }
            (*sg).elem = null_mut();
            (*sg).success = true;
            set_param((*sg).g, sg);
            (*sg).g
        }
    }
}

impl Drop for HChan {
    fn drop(&mut self) {
        // Last handle gone: nobody waits (a waiter holds a handle), so only
        // buffered elements remain; drop them, then the ring.
        let n = *self.qcount.get_mut();
        // SAFETY: we are the only user left.
        let mut x = unsafe { self.recvx.get() };
        for _ in 0..n {
            // SAFETY: slots recvx.. hold the n live elements.
            unsafe { (self.drop_elem)(self.chanbuf(x)) };
            x = if x + 1 == self.dataqsiz { 0 } else { x + 1 };
        }
        if self.buf_layout.size() != 0 {
            // SAFETY: allocated in `new` with this layout.
            unsafe { alloc::alloc::dealloc(self.buf, self.buf_layout) };
        }
    }
}

/// Block forever (a nil channel operation; Go's `gopark(nil, nil, ...)`).
pub(crate) fn block_forever(reason: WaitReason) -> ! {
    loop {
        crate::park(None, null_mut(), reason);
    }
}

/// Go's `chansend`: send the element at `ep`. Returns true if it was sent
/// (its bytes now belong to the channel or a receiver: the caller must not
/// drop it); false only for a non-blocking send that would block.
#[track_caller]
pub(crate) fn chansend(c: Option<&HChan>, ep: *const u8, block: bool) -> bool {
    let Some(c) = c else {
        if !block {
            return false;
        }
        block_forever(WaitReason::ChanSendNilChan);
    };
    // A preemption safe point, like Go's function prologue. (Not
    // morestack_check: a real stack overflow hits the guard page anyway.)
    crate::runtime::preempt::check_preempt_at_safe_point();

    // Fast path: a non-blocking send on an open, full channel fails without
    // the lock. Reading `closed` first and `full` second matters only for
    // the answer's meaning: open at the first read, full at the second,
    // so it was full while open at that second moment.
    if !block && !c.closed_racy() && c.full() {
        return false;
    }

    let guard = c.lock.lock();
    if c.is_closed_locked() {
        drop(guard);
        panic!("send on closed channel");
    }
    //~ lab6 begin chansend: the lock is held and the channel is open. Go's three cases, in order:
    //~ 1. a receiver waits (c.recvq.dequeue()): hand the value straight to it (c.send_to), unlock,
    //~    crate::ready its goroutine; 2. room in the buffer (c.can_buf_send): c.buf_send, unlock;
    //~ 3. otherwise fail if !block, else acquire_sudog (elem = ep, g = current, c, not a select),
    //~    clear_param, enqueue on sendq, forget the guard and park with crate::runtime::proc::goparkunlock(&c.lock, ..) (it unlocks).
    //~    Woken: take_param() must be our sudog; release it; success false means close: panic.
    // SAFETY: we hold the lock.
    if let Some(sg) = unsafe { c.recvq.dequeue() } {
        // A receiver is waiting: hand the value over directly.
        // SAFETY: lock held, sg just dequeued from recvq, ep holds a value.
        let gp = unsafe { c.send_to(sg, ep) };
        drop(guard);
        crate::ready(gp);
        return true;
    }
    if c.can_buf_send() {
        // SAFETY: lock held, there is room.
        unsafe { c.buf_send(ep) };
        drop(guard);
        return true;
    }
    if !block {
        drop(guard);
        return false;
    }

    // Block: wait on sendq with a sudog pointing at our value.
    let mysg = acquire_sudog();
    // SAFETY: mysg is ours until enqueued.
    unsafe {
        (*mysg).elem = ep as *mut u8;
        (*mysg).g = crate::current();
        (*mysg).c = c;
        (*mysg).is_select = false;
        (*mysg).success = false;
    }
    clear_param();
    // SAFETY: lock held; mysg is ours and on no queue.
    unsafe { c.sendq.enqueue(mysg) };
    core::mem::forget(guard);
    crate::runtime::proc::goparkunlock(&c.lock, WaitReason::ChanSend);

    // Woken by a receiver (value taken) or by close (success = false).
    if take_param() != mysg {
        crate::runtime::fatal::throw("chansend: woken by the wrong sudog");
    }
    // SAFETY: the waker dequeued mysg before readying us: ours again.
    let success = unsafe { (*mysg).success };
    // SAFETY: ours, on no queue, not used afterwards.
    unsafe {
        (*mysg).c = ptr::null();
        release_sudog(mysg);
    }
    if !success {
        panic!("send on closed channel");
    }
    true
    //~ lab6 end
}

/// Go's `chanrecv`: receive into `ep`. Returns `(selected, received)`:
/// `(false, _)` only for a non-blocking receive that would block;
/// `(true, false)` for a closed channel (nothing written to `ep`);
/// `(true, true)` when a value was written to `ep`.
pub(crate) fn chanrecv(c: Option<&HChan>, ep: *mut u8, block: bool) -> (bool, bool) {
    let Some(c) = c else {
        if !block {
            return (false, false);
        }
        block_forever(WaitReason::ChanReceiveNilChan);
    };
    crate::runtime::preempt::check_preempt_at_safe_point();

    // Fast path for a non-blocking receive that must fail or see "closed"
    // (the order of the three loads is explained in the module comment).
    if !block && c.empty() {
        if !c.closed_racy() {
            return (false, false);
        }
        if c.empty() {
            return (true, false);
        }
    }

    let guard = c.lock.lock();
    //~ lab6 begin chanrecv: the lock is held. 1. closed and nothing buffered: unlock, (true, false);
    //~ 2. open and a sender waits (c.sendq.dequeue()): c.recv_from (it keeps a full buffer FIFO),
    //~    unlock, ready the sender, (true, true); 3. a value is buffered (closed or not): c.buf_recv;
    //~ 4. otherwise (false, false) if !block, else park on recvq as chansend does on sendq.
    //~    Woken: (true, success) (success false: woken by close, nothing written to ep).
    if c.is_closed_locked() {
        if !c.can_buf_recv() {
            drop(guard);
            return (true, false);
        }
        // Closed but not drained: take the next buffered value below.
    } else if let Some(sg) = {
        // SAFETY: lock held.
        unsafe { c.sendq.dequeue() }
    } {
        // SAFETY: lock held, sg just dequeued.
        let gp = unsafe { c.recv_from(sg, ep) };
        drop(guard);
        crate::ready(gp);
        return (true, true);
    }
    if c.can_buf_recv() {
        // SAFETY: lock held, a value is buffered.
        unsafe { c.buf_recv(ep) };
        drop(guard);
        return (true, true);
    }
    if !block {
        drop(guard);
        return (false, false);
    }

    let mysg = acquire_sudog();
    // SAFETY: mysg is ours until enqueued.
    unsafe {
        (*mysg).elem = ep;
        (*mysg).g = crate::current();
        (*mysg).c = c;
        (*mysg).is_select = false;
        (*mysg).success = false;
    }
    clear_param();
    // SAFETY: lock held.
    unsafe { c.recvq.enqueue(mysg) };
    core::mem::forget(guard);
    crate::runtime::proc::goparkunlock(&c.lock, WaitReason::ChanReceive);

    if take_param() != mysg {
        crate::runtime::fatal::throw("chanrecv: woken by the wrong sudog");
    }
    // SAFETY: dequeued by the waker: ours again.
    let success = unsafe { (*mysg).success };
    // SAFETY: ours, on no queue, not used afterwards.
    unsafe {
        (*mysg).c = ptr::null();
        release_sudog(mysg);
    }
    (true, success)
    //~ lab6 end
}

/// Go's `closechan`.
#[track_caller]
pub(crate) fn closechan(c: Option<&HChan>) {
    let Some(c) = c else {
        panic!("close of nil channel");
    };
    let guard = c.lock.lock();
    if c.is_closed_locked() {
        drop(guard);
        panic!("close of closed channel");
    }
    // Release: pairs with the acquire load in `closed_racy` (fast paths).
    c.closed.store(true, Ordering::Release);
    //~ lab6 begin closechan: `closed` is set (lock held). Take *every* waiter off recvq and sendq
    //~ (dequeue until None), each with elem = null, success = false and set_param(its g, it), and
    //~ chain them (through `next`, free once dequeued). Unlock, then ready every one: a receiver
    //~ returns "closed", a sender panics. Read a sudog's fields before readying its goroutine.

    // Take every waiter off both queues; chain them through `next` (free
    // once dequeued) and ready them after unlocking, as Go's gList does.
    let mut list: *mut Sudog = null_mut();
    for q in [&c.recvq, &c.sendq] {
        // SAFETY: lock held; each dequeued sudog is ours until readied.
        while let Some(sg) = unsafe { q.dequeue() } {
            // SAFETY: sg was just dequeued under the lock: ours until readied.
            unsafe {
                (*sg).elem = null_mut();
                (*sg).success = false;
                set_param((*sg).g, sg);
                (*sg).next = list;
            }
            list = sg;
        }
    }
    drop(guard);
    while !list.is_null() {
        // SAFETY: still ours: its goroutine runs only after `ready`, so read
        // the link and the handle first.
        let (next, g) = unsafe { ((*list).next, (*list).g) };
        // SAFETY: as above.
        unsafe { (*list).next = null_mut() };
        crate::ready(g);
        list = next;
    }
    //~ lab6 end
}

// ---------------------------------------------------------------------------
// The typed handle

/// A Go channel carrying `T` (`chan T`). Clone it to share it; all clones
/// are the same channel. `Chan::nil()` is Go's nil channel.
///
/// ```ignore
/// let c = Chan::new(0);          // make(chan u64)
/// let c2 = c.clone();
/// kernel::go(move || c2.send(42));
/// assert_eq!(c.recv(), Some(42)); // v, ok := <-c
/// ```
pub struct Chan<T> {
    c: Option<Arc<HChan>>,
    _t: PhantomData<T>,
}

// SAFETY: a channel moves Ts between goroutines, so T: Send is needed (and
// enough): no &T is ever shared through it.
unsafe impl<T: Send> Send for Chan<T> {}
unsafe impl<T: Send> Sync for Chan<T> {}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Self {
        Chan { c: self.c.clone(), _t: PhantomData }
    }
}

/// Why [`Chan::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive now (or a nil channel).
    Empty,
    /// Closed and drained.
    Closed,
}

impl<T> Chan<T> {
    /// `make(chan T, cap)`: unbuffered for 0, else a ring of `cap` slots.
    pub fn new(cap: usize) -> Self {
        Chan { c: Some(Arc::new(HChan::new::<T>(cap))), _t: PhantomData }
    }

    /// A nil channel: every operation on it blocks forever.
    pub const fn nil() -> Self {
        Chan { c: None, _t: PhantomData }
    }

    pub fn is_nil(&self) -> bool {
        self.c.is_none()
    }

    pub(crate) fn hchan(&self) -> Option<&HChan> {
        self.c.as_deref()
    }

    /// The untyped channel's address (null for nil), for select.
    pub(crate) fn raw(&self) -> *const HChan {
        self.c.as_deref().map_or(ptr::null(), |c| c as *const HChan)
    }

    /// `c <- v`: blocks until a receiver takes it or there is room.
    /// Panics with `send on closed channel` if the channel is closed.
    #[track_caller]
    pub fn send(&self, v: T) {
        let v = ManuallyDrop::new(v);
        // Blocking: returns only once the value has been moved (true), or
        // panics.
        chansend(self.hchan(), &*v as *const T as *const u8, true);
    }

    /// `select { case c <- v: default: }`: `Err(v)` back if it would block.
    /// Like Go, panics if the channel is closed.
    #[track_caller]
    pub fn try_send(&self, v: T) -> Result<(), T> {
        let v = ManuallyDrop::new(v);
        if chansend(self.hchan(), &*v as *const T as *const u8, false) {
            Ok(())
        } else {
            Err(ManuallyDrop::into_inner(v))
        }
    }

    /// `v, ok := <-c`, as `Some(v)` / `None` (closed and drained).
    pub fn recv(&self) -> Option<T> {
        let mut slot = MaybeUninit::<T>::uninit();
        let (_, received) = chanrecv(self.hchan(), slot.as_mut_ptr() as *mut u8, true);
        // SAFETY: chanrecv wrote a T to the slot iff `received`.
        received.then(|| unsafe { slot.assume_init() })
    }

    /// `v, ok := <-c` with Go's zero value: `(T::default(), false)` once the
    /// channel is closed and drained.
    pub fn recv2(&self) -> (T, bool)
    where
        T: Default,
    {
        match self.recv() {
            Some(v) => (v, true),
            None => (T::default(), false),
        }
    }

    /// `select { case v, ok := <-c: ... default: }`.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut slot = MaybeUninit::<T>::uninit();
        match chanrecv(self.hchan(), slot.as_mut_ptr() as *mut u8, false) {
            // SAFETY: a T was written to the slot.
            (true, true) => Ok(unsafe { slot.assume_init() }),
            (true, false) => Err(TryRecvError::Closed),
            (false, _) => Err(TryRecvError::Empty),
        }
    }

    /// `close(c)`: wakes every blocked receiver (they get `None`) and sender
    /// (they panic). Panics if already closed, or nil.
    #[track_caller]
    pub fn close(&self) {
        closechan(self.hchan());
    }

    /// `len(c)`: buffered elements right now.
    pub fn len(&self) -> usize {
        // Acquire: pairs with set_qcount (a racy snapshot, as in Go).
        self.hchan().map_or(0, |c| c.qcount.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `cap(c)`.
    pub fn cap(&self) -> usize {
        self.hchan().map_or(0, |c| c.dataqsiz)
    }

    /// `for v := range c`: receive until closed and drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { c: self }
    }

    /// Are both handles the same channel (Go's `==` on channels)?
    pub fn same(&self, other: &Chan<T>) -> bool {
        self.raw() == other.raw()
    }
}

impl<T> core::fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Chan({:p}, len {}, cap {})", self.raw(), self.len(), self.cap())
    }
}

/// The iterator of [`Chan::iter`].
pub struct Iter<'a, T> {
    c: &'a Chan<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.c.recv()
    }
}

impl<'a, T> IntoIterator for &'a Chan<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

// ---------------------------------------------------------------------------
// Receive-only handles (Go's `<-chan T`)

/// A receive-only handle to a channel (Go's `<-chan T`): it can receive,
/// be used in a `select!` `recv` case and be cloned, but not send or close.
/// [`after`] and [`Timer`] hand out their channels this way, so a user can
/// never close a channel that a timer will send into; [`Chan::receiver`]
/// makes one from any channel (Go's implicit conversion).
///
/// A timer's receiver also keeps the timer: when the last handle of an
/// [`after`] channel is dropped, its timer is stopped and its memory freed
/// (what Go 1.23's collector does for an unreferenced `time.After`). So
/// `loop { select! { recv(c) -> v => .., recv(after(d)) -> _ => .. } }` holds
/// at most one pending timer per loop, however fast it turns.
pub struct Receiver<T> {
    c: Chan<T>,
    timer: Option<Arc<TimerOwner>>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Receiver { c: self.c.clone(), timer: self.timer.clone() }
    }
}

impl<T> Chan<T> {
    /// A receive-only handle to this channel (`var r <-chan T = c`).
    pub fn receiver(&self) -> Receiver<T> {
        Receiver { c: self.clone(), timer: None }
    }
}

impl<T> From<Chan<T>> for Receiver<T> {
    fn from(c: Chan<T>) -> Self {
        Receiver { c, timer: None }
    }
}

impl<T> Receiver<T> {
    /// `v, ok := <-r`, as `Some(v)` / `None` (closed and drained).
    pub fn recv(&self) -> Option<T> {
        self.c.recv()
    }

    /// `v, ok := <-r` with Go's zero value.
    pub fn recv2(&self) -> (T, bool)
    where
        T: Default,
    {
        self.c.recv2()
    }

    /// `select { case v, ok := <-r: ... default: }`.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.c.try_recv()
    }

    /// `len(r)`.
    pub fn len(&self) -> usize {
        self.c.len()
    }

    pub fn is_empty(&self) -> bool {
        self.c.is_empty()
    }

    /// `cap(r)`.
    pub fn cap(&self) -> usize {
        self.c.cap()
    }

    pub fn is_nil(&self) -> bool {
        self.c.is_nil()
    }

    /// `for v := range r`.
    pub fn iter(&self) -> Iter<'_, T> {
        self.c.iter()
    }

    /// Same channel (Go's `==`)?
    pub fn same(&self, other: &Receiver<T>) -> bool {
        self.c.same(&other.c)
    }
}

impl<T> core::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Receiver({:?})", self.c)
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// What a `select!` `recv` case accepts: a [`Chan`] or a [`Receiver`] (or a
/// reference to one).
pub trait RecvChan {
    /// The element type.
    type Elem;
    /// The underlying channel.
    fn as_chan(&self) -> &Chan<Self::Elem>;
}

impl<T> RecvChan for Chan<T> {
    type Elem = T;
    fn as_chan(&self) -> &Chan<T> {
        self
    }
}

impl<T> RecvChan for Receiver<T> {
    type Elem = T;
    fn as_chan(&self) -> &Chan<T> {
        &self.c
    }
}

impl<R: RecvChan + ?Sized> RecvChan for &R {
    type Elem = R::Elem;
    fn as_chan(&self) -> &Chan<R::Elem> {
        (**self).as_chan()
    }
}

// ---------------------------------------------------------------------------
// time.After, time.NewTimer

/// `time.After(d)`: a receive-only channel that receives the time
/// (`nanotime()`) once, `ns` nanoseconds from now. Use it as a `select!`
/// case for a timeout.
///
/// As in Go 1.23, the timer goes away with the channel: dropping the last
/// handle stops it, so a `select!` that returns through another case
/// releases the timer of its `recv(after(..))` case at once. For a timer to
/// stop or reset explicitly, use [`Timer`].
pub fn after(ns: u64) -> Receiver<u64> {
    Timer::new(ns).into_receiver()
}

/// `time.NewTimer(d)`: a timer that sends the time on its channel
/// ([`Timer::c`]) once, `ns` nanoseconds from now, unless stopped.
///
/// Go 1.23 semantics: after [`Timer::stop`] or [`Timer::reset`] returns, no
/// value from the old arming can be received (a value already sent but not
/// received is taken back). Dropping the timer, and every clone of its
/// channel, stops it.
///
/// ## The timer protocol
///
/// The shared state is the channel (buffer of one) and `armed`, the id of
/// the current arming (0: none), both changed under the channel's lock. An
/// arming adds a runtime timer whose argument owns one reference to the
/// shared state. When it fires (`send_time`, on some core's g0), it takes
/// the channel lock and delivers only if `armed` is still its own id, then
/// clears `armed`. `stop` takes the lock, clears `armed` and drains the
/// buffer; then it deletes the runtime timer. Whoever of the two gets the
/// lock first decides: a firing that comes second finds `armed` cleared
/// and delivers nothing. The reference is released by whichever removed
/// the runtime timer: the deletion, or the firing.
pub struct Timer {
    c: Receiver<u64>,
}

/// The state shared by a timer's handles and its armings.
struct TimerShared {
    c: Chan<u64>,
    /// (channel lock) Sequence number of the current arming; 0: none.
    armed: AtomicU64,
    /// (channel lock) The P it was added to (a hint for the deletion).
    armed_p: AtomicU32,
}

/// Owned by the user's handles only (never by an arming): when the last one
/// goes, the timer is stopped.
struct TimerOwner(Arc<TimerShared>);

impl Drop for TimerOwner {
    fn drop(&mut self) {
        stop_shared(&self.0);
    }
}

fn hchan_of(sh: &TimerShared) -> &HChan {
    sh.c.hchan().expect("a timer's channel is not nil")
}

fn arm_shared(sh: &Arc<TimerShared>, ns: u64) {
    let arg = Arc::into_raw(sh.clone()) as usize;
    let hc = hchan_of(sh);
    // Hold the channel lock across the arming: a firing (on another core)
    // waits for it, so it always sees `armed` set to its own id.
    let guard = hc.lock.lock();
    let id = crate::runtime::time::after_func(ns, send_time, arg);
    // Relaxed (both): written and read under the channel lock.
    sh.armed.store(id.seq, Ordering::Relaxed);
    sh.armed_p.store(id.p, Ordering::Relaxed);
    drop(guard);
}

/// Disarm; true if an arming was pending (its value will never be seen).
fn stop_shared(sh: &TimerShared) -> bool {
    let hc = hchan_of(sh);
    let guard = hc.lock.lock();
    // Relaxed: under the channel lock.
    let seq = sh.armed.swap(0, Ordering::Relaxed);
    let p = sh.armed_p.load(Ordering::Relaxed);
    if hc.can_buf_recv() {
        // A value delivered but not received: take it back (Go 1.23).
        let mut t = 0u64;
        // SAFETY: lock held, a value is buffered; u64 needs no drop.
        unsafe { hc.buf_recv(&mut t as *mut u64 as *mut u8) };
    }
    drop(guard);
    if seq == 0 {
        return false;
    }
    if let Some(arg) = crate::runtime::time::stop_timer(crate::runtime::time::TimerId { p, seq }) {
        // SAFETY: the deleted timer's argument is the reference leaked by
        // arm_shared; the timer will not run, so it is released here.
        drop(unsafe { Arc::from_raw(arg as *const TimerShared) });
    }
    true
}

impl Timer {
    /// `time.NewTimer(d)`.
    pub fn new(ns: u64) -> Timer {
        let sh = Arc::new(TimerShared { c: Chan::new(1), armed: AtomicU64::new(0), armed_p: AtomicU32::new(0) });
        arm_shared(&sh, ns);
        let c = Receiver { c: sh.c.clone(), timer: Some(Arc::new(TimerOwner(sh))) };
        Timer { c }
    }

    /// The channel the time is sent on (Go's `t.C`).
    pub fn c(&self) -> &Receiver<u64> {
        &self.c
    }

    /// The channel, keeping the timer alive as long as a clone of it.
    pub fn into_receiver(self) -> Receiver<u64> {
        self.c
    }

    fn shared(&self) -> &Arc<TimerShared> {
        &self.c.timer.as_ref().expect("a Timer's receiver owns the timer").0
    }

    /// `t.Stop()`: true if the call stopped the timer, false if it had
    /// already fired or been stopped. Afterwards nothing is received from
    /// `c()` until a `reset`.
    pub fn stop(&self) -> bool {
        stop_shared(self.shared())
    }

    /// `t.Reset(d)`: stop, then arm for `ns` from now. Returns what `stop`
    /// would have.
    pub fn reset(&self, ns: u64) -> bool {
        let was = stop_shared(self.shared());
        arm_shared(self.shared(), ns);
        was
    }
}

/// Go's `sendTime`, run on some core's scheduler stack when a timer fires.
/// Never blocks: the channel has a buffer of one and only a current arming
/// delivers, so there is always room.
fn send_time(arg: usize, seq: u64) {
    // SAFETY: `arg` is the reference leaked by arm_shared, consumed once
    // here (the timer was popped, so no deletion will release it).
    let sh = unsafe { Arc::from_raw(arg as *const TimerShared) };
    let hc = hchan_of(&sh);
    let now = crate::nanotime();
    let guard = hc.lock.lock();
    // Relaxed: under the channel lock.
    if sh.armed.load(Ordering::Relaxed) != seq {
        // Stopped or reset after this arming: deliver nothing.
        return;
    }
    sh.armed.store(0, Ordering::Relaxed);
    let mut wake = None;
    // SAFETY: lock held; a dequeued receiver gets our value.
    if let Some(sg) = unsafe { hc.recvq.dequeue() } {
        // SAFETY: as in chansend: lock held, sg just dequeued, ep holds a u64.
        wake = Some(unsafe { hc.send_to(sg, &now as *const u64 as *const u8) });
    } else if hc.can_buf_send() {
        // SAFETY: lock held, room in the buffer.
        unsafe { hc.buf_send(&now as *const u64 as *const u8) };
    }
    drop(guard);
    if let Some(g) = wake {
        crate::ready(g);
    }
}
