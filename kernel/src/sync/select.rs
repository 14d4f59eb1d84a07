//! `select`: Go's `runtime/select.go`, and the [`select!`](crate::select)
//! macro that plays the compiler's part.
//!
//! ```ignore
//! kernel::select! {
//!     recv(jobs) -> job => match job {
//!         Some(j) => run(j),
//!         None => return,           // jobs is closed
//!     },
//!     send(results, 42) => kernel::println!("sent"),
//!     recv(kernel::after(1_000_000)) -> _ => kernel::println!("1 ms timeout"),
//!     default => kernel::println!("nothing ready"),   // optional
//! }
//! ```
//!
//! `recv(c) -> v` binds `v: Option<T>` (`None`: closed). A `send(c, v)` case
//! whose value is not sent drops it. All channel and value expressions are
//! evaluated first, in source order, as in Go. `break`, `continue` and
//! `return` in a case body refer to the code around the `select!`.
//!
//! ## The select protocol (`selectgo`)
//!
//! 1. **Order.** Cases with a nil channel are left out. The others are put
//!    in a random *poll order* (an inside-out Fisher-Yates shuffle), which is
//!    what makes a select fair when several cases are ready. Separately,
//!    the *lock order* sorts them by channel address: every goroutine that
//!    locks several channels does so in address order, so two selects on
//!    the same channels cannot deadlock each other. A channel named twice is
//!    locked once (`sellock` skips equal neighbours).
//! 2. **Pass 1**, all locks held: look at the cases in poll order; the first
//!    that can proceed (a waiting partner, buffer room or data, a closed
//!    channel) completes exactly like `chansend`/`chanrecv` would, and
//!    select returns. If none can and there is a `default`, return that.
//! 3. **Pass 2**: enqueue one sudog per case on its channel's `sendq` or
//!    `recvq`, all pointing at this goroutine, linked together through
//!    `waitlink` in lock order, and park. The commit function
//!    (`selparkcommit`) walks that list and unlocks every channel, releasing
//!    a lock only once it has read the next sudog: the goroutine may be
//!    woken (and run elsewhere) as soon as the first lock is released, but
//!    it cannot get past its own re-lock in pass 3 before the last one is,
//!    so the sudogs stay valid for the walk.
//! 4. **Wake-up.** A waker on any of the channels dequeues our sudog. Since
//!    several wakers could do so at once on different channels (different
//!    locks), each must first win the select's `select_done` flag with a CAS
//!    0 -> 1 (in `WaitQ::dequeue`); a loser drops the stale sudog and looks
//!    at the next waiter. The winner completes the operation, stores the
//!    winning sudog in our `g.param` and readies us.
//! 5. **Pass 3**, all locks held again: the case whose sudog is `g.param`
//!    won; remove every other sudog from its queue (`dequeue_sudog`), give
//!    all sudogs back, unlock. A won send case whose `success` is false was
//!    woken by `close`: panic `send on closed channel`.
use super::chan::{block_forever, Chan, HChan, RecvChan};
use alloc::vec::Vec;
use super::sudog::{acquire_sudog, cheaprandn, clear_param, release_sudog, take_param, Sudog};
use crate::{GoroutineHandle, WaitReason};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::null_mut;
use core::sync::atomic::AtomicU32;

/// Most cases one select may have (Go's limit, 1 << 16: case indexes are
/// 16-bit). Up to [`STACK_CASES`] the poll and lock orders live on the
/// stack; a larger select allocates them.
pub const MAX_CASES: usize = 1 << 16;

/// Selects with at most this many cases allocate nothing.
pub const STACK_CASES: usize = 64;

/// One case of a select (Go's `scase`), built by the macro from a channel
/// and a value slot. `'a` ties it to the slot, which selectgo fills.
#[doc(hidden)]
pub struct Scase<'a> {
    c: *const HChan,
    elem: *mut u8,
    send: bool,
    /// Set by selectgo when this case completed with a value moved (a send
    /// that was taken, a receive that got a value).
    done: *mut bool,
    _slot: PhantomData<&'a mut ()>,
}

impl<'a> Scase<'a> {
    pub fn recv<C: RecvChan + ?Sized>(c: &'a C, slot: &'a mut RecvSlot<C::Elem>) -> Self {
        Scase { c: c.as_chan().raw(), elem: slot.v.as_mut_ptr() as *mut u8, send: false, done: &mut slot.filled, _slot: PhantomData }
    }
    pub fn send<T>(c: &'a Chan<T>, slot: &'a mut SendSlot<T>) -> Self {
        Scase { c: c.raw(), elem: slot.v.as_mut_ptr() as *mut u8, send: true, done: &mut slot.sent, _slot: PhantomData }
    }
    fn chan(&self) -> &HChan {
        // SAFETY: non-null (nil cases are filtered out before any call),
        // and the Chan handle it came from outlives 'a.
        unsafe { &*self.c }
    }
}

/// Where a receive case's value lands.
#[doc(hidden)]
pub struct RecvSlot<T> {
    v: MaybeUninit<T>,
    filled: bool,
}

impl<T> RecvSlot<T> {
    /// An empty slot with the element type of `c`.
    pub fn new_for<C: RecvChan<Elem = T> + ?Sized>(_c: &C) -> Self {
        RecvSlot { v: MaybeUninit::uninit(), filled: false }
    }
    /// The received value, or None if the case fired because the channel
    /// is closed.
    pub fn take(&mut self) -> Option<T> {
        if !self.filled {
            return None;
        }
        self.filled = false;
        // SAFETY: `filled` says selectgo moved a T in.
        Some(unsafe { self.v.assume_init_read() })
    }
}

impl<T> Drop for RecvSlot<T> {
    fn drop(&mut self) {
        if self.filled {
            // SAFETY: a T was moved in and not taken.
            unsafe { self.v.assume_init_drop() };
        }
    }
}

/// The value of a send case.
#[doc(hidden)]
pub struct SendSlot<T> {
    v: MaybeUninit<T>,
    sent: bool,
}

impl<T> SendSlot<T> {
    pub fn new_for(_c: &Chan<T>, v: T) -> Self {
        SendSlot { v: MaybeUninit::new(v), sent: false }
    }
    /// Nothing to take from a send case (the dispatch treats every case
    /// alike: `let _ = slot.take();`).
    pub fn take(&mut self) {}
}

impl<T> Drop for SendSlot<T> {
    fn drop(&mut self) {
        if !self.sent {
            // SAFETY: the value was not moved out: still ours.
            unsafe { self.v.assume_init_drop() };
        }
    }
}

fn lock_chan(c: &HChan) {
    // The guards of a select's locks are forgotten and the locks released
    // with unlock_forgotten (in selunlock or selparkcommit).
    core::mem::forget(c.lock.lock());
}

/// # Safety
/// The lock is held by this core through a forgotten guard.
unsafe fn unlock_chan(c: &HChan) {
    // SAFETY: forwarded.
    unsafe { c.lock.unlock_forgotten() };
}

/// Go's `sellock`: lock every channel once, in address order.
fn sellock(scases: &[Scase], lockorder: &[u16]) {
    let mut last: *const HChan = core::ptr::null();
    for &o in lockorder {
        let c = scases[o as usize].c;
        if c != last {
            last = c;
            lock_chan(scases[o as usize].chan());
        }
    }
}

/// Go's `selunlock`: unlock every channel once, in reverse order.
fn selunlock(scases: &[Scase], lockorder: &[u16]) {
    for i in (0..lockorder.len()).rev() {
        let c = scases[lockorder[i] as usize].c;
        if i > 0 && c == scases[lockorder[i - 1] as usize].c {
            continue; // same channel as the previous one: unlock it once
        }
        // SAFETY: sellock locked it on this core (locks pin us here).
        unsafe { unlock_chan(scases[lockorder[i] as usize].chan()) };
    }
}

/// Go's `selparkcommit`: unlock the select's channels, walking its sudogs
/// (in lock order) without touching the goroutine's stack, and reading each
/// next sudog before unlocking the previous channel (see the module comment).
fn selparkcommit(_g: GoroutineHandle, first: *mut u8) -> bool {
    let mut sg = first as *mut Sudog;
    let mut lastc: *const HChan = core::ptr::null();
    while !sg.is_null() {
        // SAFETY: the sudogs stay allocated and linked until the goroutine
        // passes its pass-3 sellock, which needs the lock of `sg`'s channel,
        // still held here.
        let (c, next) = unsafe { ((*sg).c, (*sg).waitlink) };
        if c != lastc && !lastc.is_null() {
            // SAFETY: locked in sellock by this goroutine on this core;
            // the channel is alive (the goroutine holds a handle).
            unsafe { unlock_chan(&*lastc) };
        }
        lastc = c;
        sg = next;
    }
    if !lastc.is_null() {
        // SAFETY: as above; nothing is touched after this last unlock.
        unsafe { unlock_chan(&*lastc) };
    }
    true
}

/// `select {}`: block forever.
pub fn block() -> ! {
    block_forever(WaitReason::SelectNoCases)
}

/// Go's `selectgo`. Returns the index of the chosen case, or None for
/// `default` (only when `!block`), and for a receive whether a value
/// arrived (false: closed). The chosen case's slot is marked filled / sent.
#[doc(hidden)]
#[track_caller]
pub fn selectgo(scases: &mut [Scase], block: bool) -> (Option<usize>, bool) {
    let r = selectgo_inner(scases, block);
    if let (Some(i), ok) = r {
        if ok || scases[i].send {
            // A receive got a value, or a send's value was taken.
            // SAFETY: `done` points into the case's slot, borrowed for 'a.
            unsafe { *scases[i].done = true };
        }
    }
    r
}

#[track_caller]
fn selectgo_inner(scases: &[Scase], block: bool) -> (Option<usize>, bool) {
    crate::runtime::preempt::check_preempt_at_safe_point();
    let ncases = scases.len();
    if ncases > MAX_CASES {
        panic!("select: {ncases} cases, at most {MAX_CASES} supported");
    }

    // 1. Poll order (random) and lock order (by address), nil cases left out.
    // Small selects keep both on the stack; a large one allocates (Go keeps
    // them in a frame the compiler sizes per select statement).
    let mut pollbuf = [0u16; STACK_CASES];
    let mut lockbuf = [0u16; STACK_CASES];
    let mut heapbuf: Vec<u16> = Vec::new();
    let (pollorder, lockorder) = if ncases <= STACK_CASES {
        (&mut pollbuf[..], &mut lockbuf[..])
    } else {
        heapbuf.resize(2 * ncases, 0);
        heapbuf.split_at_mut(ncases)
    };
    // The shuffle and the sort are gmp_core::selorder's (lab 6), host-tested there.
    let norder = gmp_core::selorder::pollorder(ncases, |i| scases[i].c.is_null(), pollorder, cheaprandn);
    let pollorder = &pollorder[..norder];
    let lockorder = &mut lockorder[..norder];
    gmp_core::selorder::lockorder(pollorder, lockorder, |i| scases[i as usize].c as usize);
    let lockorder = &*lockorder;

    if norder == 0 {
        if !block {
            return (None, false);
        }
        // Only nil channels: nothing can ever wake us.
        block_forever(WaitReason::Select);
    }

    sellock(scases, lockorder);

    // 2. Pass 1: anything ready, in poll order?
    for &casi in pollorder {
        let casi = casi as usize;
        let cas = &scases[casi];
        let c = cas.chan();
        if cas.send {
            if c.is_closed_locked() {
                selunlock(scases, lockorder);
                panic!("send on closed channel");
            }
            // SAFETY (this block): all our channels are locked.
            if let Some(sg) = unsafe { c.recvq.dequeue() } {
                // SAFETY: sg just dequeued from recvq; elem holds the value.
                let gp = unsafe { c.send_to(sg, cas.elem) };
                selunlock(scases, lockorder);
                crate::ready(gp);
                return (Some(casi), false);
            }
            if c.can_buf_send() {
                // SAFETY: locked, room in the buffer.
                unsafe { c.buf_send(cas.elem) };
                selunlock(scases, lockorder);
                return (Some(casi), false);
            }
        } else {
            // SAFETY: locked.
            if let Some(sg) = unsafe { c.sendq.dequeue() } {
                // SAFETY: sg just dequeued from sendq; elem is our slot.
                let gp = unsafe { c.recv_from(sg, cas.elem) };
                selunlock(scases, lockorder);
                crate::ready(gp);
                return (Some(casi), true);
            }
            if c.can_buf_recv() {
                // SAFETY: locked, a value is buffered.
                unsafe { c.buf_recv(cas.elem) };
                selunlock(scases, lockorder);
                return (Some(casi), true);
            }
            if c.is_closed_locked() {
                selunlock(scases, lockorder);
                return (Some(casi), false);
            }
        }
    }
    if !block {
        selunlock(scases, lockorder);
        return (None, false);
    }

    // 3. Pass 2: a sudog on every channel, then park.
    let select_done = AtomicU32::new(0);
    let gp = crate::current();
    let mut first: *mut Sudog = null_mut();
    let mut prev: *mut Sudog = null_mut();
    for &casi in lockorder {
        let cas = &scases[casi as usize];
        let sg = acquire_sudog();
        // SAFETY: sg is ours until enqueued; the queues are locked.
        unsafe {
            (*sg).g = gp;
            (*sg).is_select = true;
            (*sg).select_done = &select_done;
            (*sg).elem = cas.elem;
            (*sg).c = cas.c;
            (*sg).success = false;
            if prev.is_null() {
                first = sg;
            } else {
                (*prev).waitlink = sg;
            }
            prev = sg;
            if cas.send {
                cas.chan().sendq.enqueue(sg);
            } else {
                cas.chan().recvq.enqueue(sg);
            }
        }
    }
    clear_param();
    crate::park(Some(selparkcommit), first as *mut u8, WaitReason::Select);

    // 4./5. Woken: pass 3.
    sellock(scases, lockorder);
    let winner = take_param();
    let mut chosen = None;
    let mut success = false;
    let mut sg = first;
    for &casi in lockorder {
        let cas = &scases[casi as usize];
        // SAFETY: our sudogs; all channels locked, so no waker can touch
        // them now; the winner was already dequeued by its waker.
        unsafe {
            if sg == winner {
                chosen = Some(casi as usize);
                success = (*sg).success;
            } else if cas.send {
                cas.chan().sendq.dequeue_sudog(sg);
            } else {
                cas.chan().recvq.dequeue_sudog(sg);
            }
            let next = (*sg).waitlink;
            (*sg).waitlink = null_mut();
            (*sg).select_done = core::ptr::null();
            (*sg).is_select = false;
            (*sg).c = core::ptr::null();
            release_sudog(sg);
            sg = next;
        }
    }
    selunlock(scases, lockorder);
    let Some(casi) = chosen else {
        crate::runtime::fatal::throw("selectgo: bad wakeup");
    };
    if scases[casi].send {
        if !success {
            panic!("send on closed channel");
        }
        return (Some(casi), false);
    }
    (Some(casi), success)
}

/// Go's `select` statement. See the [module documentation](crate::sync::select).
///
/// ```ignore
/// select! {
///     recv(c1) -> v => { /* v: Option<T1> */ },
///     send(c2, value) => { /* value was sent */ },
///     default => { /* nothing was ready */ },
/// }
/// ```
#[macro_export]
macro_rules! select {
    () => {
        $crate::sync::select::block()
    };
    ($($t:tt)+) => {
        $crate::__select_parse!(@cases [] @default [] @idx [0usize] $($t)+)
    };
}

/// Parses the cases one at a time. Each step creates the two hidden
/// variables of its case (`__select_chan`, `__select_slot`): hygiene gives
/// the names of each macro step a context of their own, so the variables of
/// different cases never clash. The `@idx` tokens count the cases
/// (`0usize + 1 + 1 ...`).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // A case is `recv(c) -> pat => body` or `send(c, v) => body`, where the
    // body is a `{ block }` (comma optional) or an expression (comma needed
    // unless last). Each case is normalised to
    // `[dir (chan slot) (index) (channel) (value or ()) (pattern or _) (body)]`.
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        recv($c:expr) -> $p:pat => { $($body:tt)* } , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [recv (__select_chan __select_slot) ($($idx)*) ($c) (()) ($p) ({ $($body)* })]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        recv($c:expr) -> $p:pat => { $($body:tt)* } $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [recv (__select_chan __select_slot) ($($idx)*) ($c) (()) ($p) ({ $($body)* })]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        recv($c:expr) -> $p:pat => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [recv (__select_chan __select_slot) ($($idx)*) ($c) (()) ($p) ($body)]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        recv($c:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(@cases [$($cases)* [recv (__select_chan __select_slot) ($($idx)*) ($c) (()) ($p) ($body)]]
            @default [$($def)*] @idx [$($idx)* + 1])
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        send($c:expr, $v:expr) => { $($body:tt)* } , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [send (__select_chan __select_slot) ($($idx)*) ($c) ($v) (_) ({ $($body)* })]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        send($c:expr, $v:expr) => { $($body:tt)* } $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [send (__select_chan __select_slot) ($($idx)*) ($c) ($v) (_) ({ $($body)* })]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        send($c:expr, $v:expr) => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)* [send (__select_chan __select_slot) ($($idx)*) ($c) ($v) (_) ($body)]]
            @default [$($def)*] @idx [$($idx)* + 1] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]
        send($c:expr, $v:expr) => $body:expr) => {
        $crate::__select_parse!(@cases [$($cases)* [send (__select_chan __select_slot) ($($idx)*) ($c) ($v) (_) ($body)]]
            @default [$($def)*] @idx [$($idx)* + 1])
    };
    // `default => body`, at most once.
    (@cases [$($cases:tt)*] @default [] @idx [$($idx:tt)*]
        default => { $($body:tt)* } , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)*] @default [({ $($body)* })] @idx [$($idx)*] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [] @idx [$($idx:tt)*]
        default => { $($body:tt)* } $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)*] @default [({ $($body)* })] @idx [$($idx)*] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [] @idx [$($idx:tt)*]
        default => $body:expr , $($rest:tt)*) => {
        $crate::__select_parse!(@cases [$($cases)*] @default [($body)] @idx [$($idx)*] $($rest)*)
    };
    (@cases [$($cases:tt)*] @default [] @idx [$($idx:tt)*]
        default => $body:expr) => {
        $crate::__select_parse!(@cases [$($cases)*] @default [($body)] @idx [$($idx)*])
    };
    // All parsed.
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*]) => {
        $crate::__select_impl!([$($cases)*] [$($def)*])
    };
    (@cases [$($cases:tt)*] @default [$($def:tt)*] @idx [$($idx:tt)*] $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(chan) -> pat => body`, `send(chan, value) => body` or `default => body` (at most one default)"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_impl {
    ([$([$dir:ident ($chan:ident $slot:ident) ($($idx:tt)*) ($c:expr) ($x:tt) ($p:pat) ($body:tt)])*] [$($def:tt)*]) => {{
        // Evaluate every channel and value, in source order.
        $(
            let $chan = &$c;
            #[allow(unused_mut)]
            let mut $slot = $crate::__select_slot!($dir $chan $x);
        )*
        let (__select_chosen, _) = {
            let mut __select_cases = [$($crate::sync::select::Scase::$dir($chan, &mut $slot)),*];
            $crate::sync::select::selectgo(&mut __select_cases, $crate::__select_block!($($def)*))
        };
        // The dispatch is one flat `if .. else if .. else` chain (no
        // recursion per case), so only the parser above recurses once per
        // case: a select! of up to about 120 cases compiles within rustc's
        // default recursion limit (128); more need `#![recursion_limit]`.
        $(
            if __select_chosen == ::core::option::Option::Some($($idx)*) {
                #[allow(clippy::let_unit_value)]
                let $p = $slot.take();
                $body
            } else
        )* {
            $crate::__select_default!($($def)*)
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_slot {
    (recv $chan:ident $x:tt) => {
        $crate::sync::select::RecvSlot::new_for($chan)
    };
    (send $chan:ident $v:tt) => {
        $crate::sync::select::SendSlot::new_for($chan, $v)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_block {
    () => {
        true
    };
    ($($def:tt)+) => {
        false
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_default {
    () => {
        ::core::unreachable!("select without default returned no case")
    };
    (($def:tt)) => {
        $def
    };
}
