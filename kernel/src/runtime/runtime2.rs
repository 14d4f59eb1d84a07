//! The scheduler's data structures: Go's `g`, `m`, `p` and `schedt`
//! (runtime2.go), with the same names and the same meaning.
//!
//! ## Who may touch what
//!
//! A G is always owned by exactly one party: the queue it sits in, the M
//! running it (`curg`), or the wait structure it parked on. Fields marked
//! *owner* are plain [`OwnerCell`]s and are read and written only by that
//! owner; hand-offs (runqput/runqget, the global queue's lock, park/ready)
//! carry the release/acquire ordering that publishes them. Fields read by
//! other cores while the owner runs (status, preempt flags, stackguard0,
//! schedtick...) are atomics.
use crate::arch::x86_64::switch::Gobuf;
use core::cell::{Cell, UnsafeCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use gmp_core::gqueue::{GList, GQueue, Linked};
use gmp_core::pmask::{Mask, PMask};
use gmp_core::runq::RunQueue;

/// A cell written only by the current owner of the structure it is in (see
/// the module comment). `Sync` because ownership hand-offs synchronise.
pub struct OwnerCell<T>(UnsafeCell<T>);
// SAFETY: accesses are confined to the single owner at any time, and each
// ownership transfer is a release/acquire pair (queue or lock).
unsafe impl<T> Sync for OwnerCell<T> {}
impl<T> OwnerCell<T> {
    pub const fn new(v: T) -> Self {
        OwnerCell(UnsafeCell::new(v))
    }
    /// # Safety
    /// The caller is the current owner, and holds no other reference
    /// obtained from this cell.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_mut(&self) -> &mut T {
        // SAFETY: exclusive by the caller's promise.
        unsafe { &mut *self.0.get() }
    }
}
impl<T: Copy> OwnerCell<T> {
    /// # Safety
    /// The caller is the current owner (or the owner is parked and the
    /// caller only reads for a diagnostic).
    pub unsafe fn get(&self) -> T {
        // SAFETY: see above.
        unsafe { *self.0.get() }
    }
    /// # Safety
    /// The caller is the current owner.
    pub unsafe fn set(&self, v: T) {
        // SAFETY: see above.
        unsafe { *self.0.get() = v }
    }
}

// ---- goroutine status (Go's _G* constants, same numbers) ----
pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_SYSCALL: u32 = 3;
pub const G_WAITING: u32 = 4;
pub const G_DEAD: u32 = 6;
pub const G_PREEMPTED: u32 = 9;

pub fn gstatus_name(s: u32) -> &'static str {
    match s {
        G_IDLE => "idle",
        G_RUNNABLE => "runnable",
        G_RUNNING => "running",
        G_SYSCALL => "syscall",
        G_WAITING => "waiting",
        G_DEAD => "dead",
        G_PREEMPTED => "preempted",
        _ => "???",
    }
}

/// Why a goroutine is waiting (Go's waitReason); printed in tracebacks as
/// `goroutine 7 [chan receive]:`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WaitReason {
    Zero,
    ChanReceive,
    ChanSend,
    ChanReceiveNilChan,
    ChanSendNilChan,
    Select,
    SelectNoCases,
    Sleep,
    SyncMutexLock,
    Semacquire,
    SyncWaitGroupWait,
    SyncOnce,
    Preempted,
    StopTheWorld,
    Park,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Zero => "",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanReceiveNilChan => "chan receive (nil chan)",
            WaitReason::ChanSendNilChan => "chan send (nil chan)",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Sleep => "sleep",
            WaitReason::SyncMutexLock => "sync.Mutex.Lock",
            WaitReason::Semacquire => "semacquire",
            WaitReason::SyncWaitGroupWait => "sync.WaitGroup.Wait",
            WaitReason::SyncOnce => "sync.Once",
            WaitReason::Preempted => "preempted",
            WaitReason::StopTheWorld => "stop the world",
            WaitReason::Park => "park",
        }
    }
}

/// A goroutine (Go's `g`).
#[repr(C)]
pub struct G {
    /// Stack bounds `[lo, hi)`; the guard page is `[lo - 4096, lo)`.
    pub stack_lo: u64,
    pub stack_hi: u64,
    /// `sp < stackguard0` at a safe point means "call morestack": either the
    /// stack is nearly exhausted, or sysmon poisoned it with
    /// `STACK_PREEMPT` to ask for a yield. Written by the owner (execute) and
    /// by sysmon's `preemptone` (store); read by the owner at safe points.
    pub stackguard0: AtomicU64,
    /// Where to resume (owner). See arch::x86_64::switch.
    pub sched: Gobuf,
    /// Go's `atomicstatus`; transitions through `casgstatus`.
    pub atomicstatus: AtomicU32,
    /// Set while some core executes this G (cleared in `dropg` once the G's
    /// state is saved). `execute` makes a G that is still set a fatal error,
    /// and its status CAS one that two cores took at once, instead of a
    /// silent corruption.
    pub on_cpu: AtomicBool,
    /// Preemption request (sysmon's `preemptone`): pairs with the check at
    /// the next safe point or preemption IPI.
    pub preempt: AtomicBool,
    pub goid: AtomicU64,
    pub parent_goid: OwnerCell<u64>,
    /// Entry function's address and name (Go's `startpc`).
    pub startpc: OwnerCell<u64>,
    pub startfn: OwnerCell<&'static str>,
    pub waitreason: OwnerCell<WaitReason>,
    /// Run queue / free list link (Go's `schedlink`).
    pub schedlink: Cell<Option<NonNull<G>>>,
    /// The M this G is locked to (LockOSThread), or null.
    pub lockedm: AtomicPtr<M>,
    /// Nesting count of lock_os_thread calls.
    pub lockcount: OwnerCell<u32>,
    /// Generic wake-up parameter (Go's `param`): channels pass the sudog.
    pub param: AtomicPtr<u8>,
    /// The core that ran this G last (diagnostics, LockOSThread tests).
    pub lastcpu: AtomicU32,
    /// Number of times `execute` started this G (statistics, tests).
    pub nexec: AtomicU64,
    /// Async preemption: saved full register state lives on the G's stack
    /// (runtime::preempt); this is its address while preempted, else 0.
    pub asyncsafe: OwnerCell<u64>,
}

// SAFETY: the runq and the lists in gmp_core only touch `schedlink`, and a G
// is on at most one of them at a time.
unsafe impl Linked for G {
    fn link(&self) -> &Cell<Option<NonNull<Self>>> {
        &self.schedlink
    }
}
// SAFETY: G's shared fields are atomics; the rest follow the owner rule in
// the module comment.
unsafe impl Sync for G {}
unsafe impl Send for G {}

impl G {
    pub fn new(stack_lo: u64, stack_hi: u64) -> Self {
        G {
            stack_lo,
            stack_hi,
            stackguard0: AtomicU64::new(stack_lo + super::preempt::STACK_GUARD),
            sched: Gobuf::default(),
            atomicstatus: AtomicU32::new(G_IDLE),
            on_cpu: AtomicBool::new(false),
            preempt: AtomicBool::new(false),
            goid: AtomicU64::new(0),
            parent_goid: OwnerCell::new(0),
            startpc: OwnerCell::new(0),
            startfn: OwnerCell::new(""),
            waitreason: OwnerCell::new(WaitReason::Zero),
            schedlink: Cell::new(None),
            lockedm: AtomicPtr::new(core::ptr::null_mut()),
            lockcount: OwnerCell::new(0),
            param: AtomicPtr::new(core::ptr::null_mut()),
            lastcpu: AtomicU32::new(0),
            nexec: AtomicU64::new(0),
            asyncsafe: OwnerCell::new(0),
        }
    }
    #[inline]
    pub fn status(&self) -> u32 {
        self.atomicstatus.load(Ordering::Acquire)
    }
    #[inline]
    pub fn id(&self) -> u64 {
        self.goid.load(Ordering::Relaxed)
    }
}

/// A parking spot for an M (Go's `note`, on a halted core instead of a
/// futex). See the protocol comment in runtime::proc above `notesleep`.
pub struct Note {
    /// 1 once woken; cleared by the sleeper after it wakes.
    pub key: AtomicU32,
    /// 1 while the sleeper may be in `hlt` and needs an IPI.
    pub halted: AtomicU32,
}

/// A machine: one CPU core (Go's `m`).
#[repr(C)]
pub struct M {
    /// Top of this core's g0 (scheduler) stack: `mcall` starts here.
    pub g0_stack_top: u64,
    pub id: usize,
    pub apic_id: u32,
    /// The goroutine running on this M, or null on g0.
    pub curg: AtomicPtr<G>,
    /// The attached P (null while idle or in a syscall).
    pub p: AtomicPtr<P>,
    /// The P handed over by `startm`, acquired when the M wakes.
    pub nextp: AtomicPtr<P>,
    /// The P left behind by `entersyscall`.
    pub oldp: AtomicPtr<P>,
    /// Is this M out of work and actively looking for it? Written by the M
    /// itself, and by `startm` before waking it; paired with
    /// `sched.nmspinning`.
    pub spinning: AtomicBool,
    /// The G locked to this M (LockOSThread), or null.
    pub lockedg: AtomicPtr<G>,
    /// Parked in `stopm` / `stoplockedm`.
    pub park: Note,
    /// `gopark`'s unlock function and its argument, handed to `park_m`.
    pub waitunlockf: OwnerCell<Option<fn(*mut G, *mut u8) -> bool>>,
    pub waitlock: OwnerCell<*mut u8>,
    /// This M's random source (Go's `m.cheaprand`).
    pub fastrand: OwnerCell<gmp_core::rand::FastRand>,
    /// The stealing order (shared by all Ms in Go; per M here so that no
    /// lock is needed when gomaxprocs changes: rebuilt on each change).
    pub steal_order: OwnerCell<gmp_core::order::RandomOrder>,
    pub steal_order_count: OwnerCell<u32>,
    /// Statistics.
    pub steals: AtomicU64,
    /// Goroutines this M created (`newproc1`): a load and a store, as only
    /// this M writes it; the schedtrace summary adds up every M's. Not in
    /// `SCHED`: a counter there that every core bumps at every spawn moved
    /// the cache line of `npidle`, `nmspinning` and `runqsize` between the
    /// cores at every spawn, and cost a locked instruction besides.
    pub ngcreated: AtomicU64,
    pub parks: AtomicU64,
    pub wakeups: AtomicU64,
    /// This core's halt-poll window in ns (`haltpoll=1`: a `gmp_core::haltpoll::Window`,
    /// read and written only by this M in `notesleep`; an atomic for `Sync`).
    pub poll_window_ns: AtomicU64,
}
// SAFETY: shared fields are atomics; OwnerCells are touched only by this M.
unsafe impl Sync for M {}

// ---- P status (Go's _P* constants) ----
pub const P_IDLE: u32 = 0;
pub const P_RUNNING: u32 = 1;
pub const P_SYSCALL: u32 = 2;
pub const P_GCSTOP: u32 = 3;
pub const P_DEAD: u32 = 4;

/// The per-P gFree list.
pub struct GFree {
    pub list: GList<G>,
}

/// A processor: the right and the resources to run Go code (Go's `p`).
pub struct P {
    pub id: u32,
    pub status: AtomicU32,
    /// Link in `sched.pidle`.
    pub link: Cell<Option<NonNull<P>>>,
    /// Incremented on every scheduler call that does not inherit the time
    /// slice. Read by sysmon (`retake`).
    pub schedtick: AtomicU32,
    /// The TSC when the current time slice began: `execute` stores it just
    /// before it increments `schedtick` (release), and sysmon's `retake`
    /// reads it after `schedtick` (acquire), so the stamp it reads is this
    /// slice's or a later one's, never an earlier one's.
    pub slicestart: AtomicU64,
    /// Incremented on every syscall entry/exit.
    pub syscalltick: AtomicU32,
    /// The M running this P, or null.
    pub m: AtomicPtr<M>,
    pub runq: RunQueue<G>,
    /// Free Gs (owner: the M holding this P).
    pub gfree: OwnerCell<GList<G>>,
    /// Cache of goids, batch [goidcache, goidcacheend).
    pub goidcache: OwnerCell<u64>,
    pub goidcacheend: OwnerCell<u64>,
    /// Go's `p.preempt`: this P should enter the scheduler as soon as it
    /// can, whichever G it is running then. Set by `preemptone` beside
    /// `g.preempt`; read by the asynchronous check in `irq_dispatch` (Go's
    /// `wantAsyncPreempt` checks both); cleared by `schedule` before it looks
    /// for the next G. It covers the request that names a G which is just
    /// being switched in: `execute` stores `m.curg` and then clears the new
    /// G's `preempt`, so a `preemptone` between the two would be lost.
    pub preempt: AtomicBool,
    /// The timers of this P (runtime::time).
    pub timers: super::time::PTimers,
    /// sysmon's memory of the last schedtick/syscalltick it saw, and when.
    pub sysmontick: super::preempt::SysmonTick,
}
// SAFETY: shared fields are atomics; OwnerCells are touched only by the M
// holding the P; `link` only under sched.lock.
unsafe impl Sync for P {}
unsafe impl Send for P {}

/// The global scheduler state protected by `sched.lock`.
pub struct SchedLocked {
    /// Idle Ms, as a bitmap of M ids (Go: the `midle` list).
    pub midle: Mask,
    /// Ms parked by `stoplockedm` waiting for their locked G.
    pub nmidlelocked: u32,
    /// Idle Ps (Go: `pidle` list).
    pub pidle: Option<NonNull<P>>,
    /// The global run queue.
    pub runq: GQueue<G>,
    /// The global free-G list.
    pub gfree: GList<G>,
    /// Free Gs that kept their mapped stacks (Go's `gFree.stack`); beyond
    /// `GFREE_STACK_KEEP` the scavenger unmaps those that stayed unused
    /// (`proc::gfscavenge`). `gfree` holds those without (Go's `noStack`).
    pub gfree_stack: GList<G>,
    /// The shortest `gfree_stack` has been since the scavenger last looked
    /// (its low-water mark): that many stacks were not needed all along.
    pub gfree_stack_low: u32,
    /// Stop-the-world: Ps still to stop.
    pub stopwait: u32,
}
// SAFETY: only accessed under sched.lock.
unsafe impl Send for SchedLocked {}

/// The global scheduler (Go's `schedt`).
pub struct Sched {
    /// Last goid handed out in a batch.
    pub goidgen: AtomicU64,
    pub lock: super::lock::SpinLock<SchedLocked>,
    /// Number of idle Ps (written under lock, read without).
    pub npidle: AtomicU32,
    /// Number of spinning Ms. See the protocol comment in proc.rs.
    pub nmspinning: AtomicU32,
    /// Someone wanted a spinning M but found no idle P (Go 1.21+).
    pub needspinning: AtomicU32,
    /// Length of the global run queue, readable without the lock.
    pub runqsize: AtomicU32,
    /// Bitmap of idle Ps (Go's `idlepMask`), read by stealWork without
    /// the lock; written under it by pidleput/pidleget.
    pub idlepmask: PMask,
    /// A stop-the-world is in progress: Ms must give up their Ps.
    pub gcwaiting: AtomicBool,
    pub stopnote: Note,
    /// Number of Ms parked by `stopm` (== popcount(midle)).
    pub nmidle: AtomicU32,
    /// Ms currently in a syscall (they count as running for checkdead).
    /// An atomic, not under the lock: entersyscall/exitsyscall take no lock.
    pub nmsys: AtomicU32,
}
