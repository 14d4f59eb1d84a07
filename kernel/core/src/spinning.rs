//! The spinning-M protocol: how an idle core goes to sleep and a submitter wakes it, without a
//! wake-up ever being lost (Go's "Worker thread parking/unparking" comment at the top of
//! `runtime/proc.go`; the seed document's section on spinning Ms).
//!
//! The kernel (`kernel/src/runtime/proc.rs`) calls these at the protocol's four points; they
//! are here, on plain atomics, so that loom can run every interleaving of them (and every stale
//! value a weak load may return) in `spinning/loom_tests.rs`.
//!
//! Two Dekker pairs, each "store mine, full fence, load yours", so that at least one side sees
//! the other:
//!
//! 1. `nmspinning` and the run queues. A submitter puts a G in a run queue (the queue's store
//!    is the fence: `runqput`'s `SeqCst` tail store, or the `SeqCst` add to `sched.runqsize`),
//!    then [`wakep_claim`] reads `nmspinning`: if an M spins it will find the G, otherwise the
//!    submitter starts one. A spinning M that found nothing gives its P back and
//!    [`drop_spinning_recheck`] decrements `nmspinning`, fences, and looks at every queue again.
//!    Either the submitter saw the spinner, or the spinner sees the G.
//! 2. A parked core's note: `key` (woken) and `halted` (may be in `hlt`). The sleeper stores
//!    `halted = 1` then reads `key` ([`note_sleep_check`]); the waker stores `key = 1` then
//!    reads `halted` and sends the wake-up IPI only if it is set ([`notewakeup`]). Either the
//!    sleeper sees the key and does not halt, or the waker sees `halted` and the IPI ends the
//!    halt. The sleeper checks with interrupts off and halts with `sti; hlt`, so an IPI that
//!    arrives between the check and the `hlt` stays pending and ends the halt at once.
//!
//! The fences are explicit `fence(SeqCst)` because that is what the C++/Rust memory model
//! (and loom) needs for "store, then load something else" to be ordered; on x86 the locked
//! read-modify-write before it is already a full barrier, so they cost little.
use crate::sync::{fence, AtomicU32, Ordering};

/// `nmspinning` was decremented below zero: the spinning count leaked somewhere.
#[derive(Debug, PartialEq, Eq)]
pub struct NegativeSpinning;

/// Go's `wakep` (its first half): the submitter has published a G; should it start a spinning
/// M? Only if none spins already ("be conservative about spinning threads"): true if it
/// claimed the one spinner slot (`nmspinning` 0 → 1). The caller then takes an idle P and
/// starts an M for it, or gives the count back if there is none.
pub fn wakep_claim(nmspinning: &AtomicU32) -> bool {
    //~ lab4 begin wakep_claim: if an M already spins, it will find the G: false. Otherwise claim
    //~ the slot with a CAS 0 -> 1 (a plain load first, so a busy machine does not bounce the
    //~ line with failing CASes). SeqCst: this load is the submitter's half of the Dekker pair.
    nmspinning.load(Ordering::SeqCst) == 0
        && nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
    //~ lab4 end
}

/// findRunnable's last step for a spinning M that found nothing and gave up its P: stop
/// counting as spinning, then look at every source of work again with `recheck` (the run
/// queues, the global queue, the timers). True if `recheck` found work: the caller takes an
/// idle P back and spins again. Err if the count was already zero.
pub fn drop_spinning_recheck(
    nmspinning: &AtomicU32,
    recheck: impl FnOnce() -> bool,
) -> Result<bool, NegativeSpinning> {
    //~ lab4 begin drop_spinning_recheck: decrement nmspinning (Err if it was 0), then a full
    //~ fence (StoreLoad: our decrement before the loads of the queues), then re-check. The
    //~ order matters: check first and decrement after, and a G submitted in between (its
    //~ submitter saw us spinning and relied on us) is found by nobody.
    if nmspinning.fetch_sub(1, Ordering::SeqCst) == 0 {
        return Err(NegativeSpinning);
    }
    fence(Ordering::SeqCst);
    Ok(recheck())
    //~ lab4 end
}

/// notesleep's check, with interrupts off: announce that this core may halt, then look at the
/// note. True: the note is set (`halted` is cleared again), do not halt. False: halt (`sti;
/// hlt`), then clear `halted` and call this again.
pub fn note_sleep_check(key: &AtomicU32, halted: &AtomicU32) -> bool {
    //~ lab4 begin note_sleep_check: store halted = 1, full fence, then read key (the sleeper's
    //~ half of the note's Dekker pair). If the key is set, clear halted and return true.
    halted.store(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if key.load(Ordering::SeqCst) != 0 {
        halted.store(0, Ordering::Relaxed);
        return true;
    }
    false
    //~ lab4 end
}

/// Go's `notewakeup`: set the note, and if its core may be halted, call `ipi` (send it the
/// wake-up IPI). A core that is not halted sees the key in [`note_sleep_check`] without one.
pub fn notewakeup(key: &AtomicU32, halted: &AtomicU32, ipi: impl FnOnce()) {
    //~ lab4 begin notewakeup: publish first (key = 1), full fence, then read halted and send
    //~ the IPI only if it is set. The other way round, the IPI can end a halt before the key is
    //~ visible: the sleeper re-checks, sees no key, halts again, and nobody wakes it.
    key.store(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    if halted.load(Ordering::SeqCst) != 0 {
        ipi();
    }
    //~ lab4 end
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
