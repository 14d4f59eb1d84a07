//! `gmp-core`: the machine-independent half of the GMP kernel scheduler.
//!
//! Everything in this crate is plain logic that builds for the host (and is
//! tested there, with proptest and loom) as well as for `x86_64-unknown-none`.
//! Nothing here touches the machine: no interrupts, no per-CPU registers. Only
//! the growable structures allocate ([`timerheap`], [`semtree`]), through
//! `alloc`, which the kernel backs with its heap. The kernel (`kernel/src`) owns the Gs, Ps and Ms and calls into
//! these modules, in the same way Go's `proc.go` calls its small helpers.
//!
//! | module        | Go counterpart                                    |
//! | ------------- | ------------------------------------------------- |
//! | [`runq`]      | `p.runq`, `runqhead/runqtail`, `runnext`; `runqput`, `runqputslow`, `runqget`, `runqdrain`, `runqputbatch`, `runqgrab`, `runqsteal`, `runqempty` |
//! | [`order`]     | `randomOrder`, `randomEnum`, `stealOrder`         |
//! | [`pmask`]     | `pMask` (`idlepMask`, `timerpMask`), sized for 256 Ps |
//! | [`rand`]      | `cheaprand`, `cheaprandn` (formerly `fastrand`)   |
//! | [`retake`]    | the decision in `retake`'s loop (`sysmontick`, `forcePreemptNS`), pure |
//! | [`gqueue`]    | `gQueue`, `gList` (linked through `g.schedlink`); the batch size rule of `globrunqget` |
//! | [`timerheap`] | the per-P 4-ary timer heap of `time.go` (`siftupTimer`, `siftdownTimer`) |
//! | [`selorder`]  | `selectgo`'s `pollorder` (random) and `lockorder` (by channel address) |
//! | [`semtree`]   | `semaRoot`'s treap: per address, the FIFO of its waiters (`sema.go`) |
//! | [`spinning`]  | the spinning-M protocol of `wakep`/`findRunnable` (`nmspinning`) and `notesleep`/`notewakeup` |
//! | [`haltpoll`]  | none in Go (Go's Ms spin before they sleep): Linux's cpuidle-haltpoll, polling the note for an adaptive window before halting |
//! | [`timeradvance`] | none in Go (the host kernel's job): KVM's adaptive `lapic_timer_advance_ns`, how early a parked core arms its one-shot |
//! | [`mcache`]    | `mcache`/`mcentral` (`mcache.go`, `mcentral.go`) and `size_to_class8`: per-core free lists of small blocks by size class, refilled and drained in batches through shared lists, in front of the kernel heap |
//! | [`bootparam`] | `GODEBUG`/`GOMAXPROCS` parsing, for fw_cfg boot parameters |
//!
//! # Deviations from the brief (kept deliberately)
//!
//! - The crate is `no_std` unless `test` **or `loom`** is set: loom is a std
//!   library, and the loom build is a test build anyway.
//! - [`runq::Local::put_batch`] takes `&mut impl Iterator` (the caller keeps
//!   what did not fit in its own iterator; `next()` is only called when a slot
//!   is free, so nothing is ever taken and dropped) and an optional
//!   [`rand::FastRand`] to shuffle the batch in `schedrandom` mode, as Go's
//!   `runqputbatch` does under `randomizeScheduler`.
//! - [`runq::Local::put`] also shuffles the overflow batch when
//!   `randomize_next` is set (Go shuffles it in `runqputslow` in that mode);
//!   the shuffle is seeded from `rand`.
//! - [`runq::Steal::steal_into`] asserts *before* grabbing that the thief's
//!   own queue has room for half a ring (Go checks after the fact). The kernel
//!   only steals when its own queue is empty, so this never fires.
//! - [`runq::Steal::len`] counts the ring only, not `runnext` (like the
//!   `runqsize` that Go's schedtrace prints); [`runq::Steal::is_empty`]
//!   includes `runnext`, as `runqempty` does.
//! - [`bootparam::BootParams::apply`] returns an owned [`bootparam::ParamError`]
//!   (key and value copied, long values truncated) so that it carries no
//!   lifetime. The heap size key is `heap`.
//! - [`timerheap::TimerHeap`] grows like Go's `pp.timers` slice; `try_push`
//!   reports an allocation failure instead of aborting.
#![cfg_attr(not(any(test, loom)), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate alloc;

pub mod bootparam;
pub mod ktest;
pub mod gqueue;
pub mod haltpoll;
pub mod mcache;
pub mod order;
pub mod pmask;
pub mod rand;
pub mod retake;
pub mod runq;
pub mod selorder;
pub mod semtree;
pub mod spinning;
pub mod timeradvance;
pub mod timerheap;

mod sync;
