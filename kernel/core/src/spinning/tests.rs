//! Host tests of the spinning-M protocol's pieces, one thread at a time (the interleavings are
//! in `loom_tests.rs`).
use super::*;
use std::sync::atomic::AtomicUsize;

#[test]
fn wakep_claims_only_when_none_spins() {
    let n = AtomicU32::new(0);
    assert!(wakep_claim(&n), "no M spins: the submitter starts one");
    assert_eq!(n.load(Ordering::Relaxed), 1);
    assert!(!wakep_claim(&n), "one M spins already: it will find the G");
    assert_eq!(n.load(Ordering::Relaxed), 1);
    n.store(3, Ordering::Relaxed);
    assert!(!wakep_claim(&n));
    assert_eq!(n.load(Ordering::Relaxed), 3);
}

#[test]
fn drop_spinning_decrements_then_rechecks() {
    let n = AtomicU32::new(2);
    // The re-check runs after the decrement (it sees the new count), and its answer is returned.
    assert_eq!(drop_spinning_recheck(&n, || n.load(Ordering::Relaxed) == 1), Ok(true));
    assert_eq!(drop_spinning_recheck(&n, || false), Ok(false));
    assert_eq!(n.load(Ordering::Relaxed), 0);
    assert_eq!(drop_spinning_recheck(&n, || true), Err(NegativeSpinning), "a decrement below zero is reported");
}

#[test]
fn note_sleep_check_announces_the_halt() {
    let (key, halted) = (AtomicU32::new(0), AtomicU32::new(0));
    assert!(!note_sleep_check(&key, &halted), "no key: halt");
    assert_eq!(halted.load(Ordering::Relaxed), 1, "announced before halting");
    halted.store(0, Ordering::Relaxed);
    key.store(1, Ordering::Relaxed);
    assert!(note_sleep_check(&key, &halted), "key set: do not halt");
    assert_eq!(halted.load(Ordering::Relaxed), 0, "no halt, so no IPI wanted");
}

#[test]
fn notewakeup_sends_the_ipi_only_to_a_halted_core() {
    let (key, halted) = (AtomicU32::new(0), AtomicU32::new(0));
    let ipis = AtomicUsize::new(0);
    notewakeup(&key, &halted, || {
        ipis.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(key.load(Ordering::Relaxed), 1);
    assert_eq!(ipis.load(Ordering::Relaxed), 0, "a running core sees the key without an IPI");
    key.store(0, Ordering::Relaxed);
    halted.store(1, Ordering::Relaxed);
    notewakeup(&key, &halted, || {
        // The key is published before the IPI is sent.
        assert_eq!(key.load(Ordering::Relaxed), 1, "IPI sent before the key was set");
        ipis.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(ipis.load(Ordering::Relaxed), 1);
}
