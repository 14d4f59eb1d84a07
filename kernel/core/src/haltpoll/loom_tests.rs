//! Loom model of halt polling in front of the note's Dekker pair: polling first loses no
//! wake-up, and a wake-up the poll caught costs no IPI.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p gmp-core --release --lib haltpoll::loom_tests
//! ```
use super::*;
use crate::spinning::{note_sleep_check, notewakeup};
use core::cell::Cell;
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    b.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f()
    });
    let runs = runs.load(StdOrdering::Relaxed);
    println!("loom explored {runs} interleavings");
    assert!(runs > 1, "loom explored a single interleaving: is --cfg loom set?");
}

const IPI_PENDING: u32 = 1;
const WAKER_DONE: u32 = 2;

/// One core's note and its wake-up IPI as a latch, as in `spinning/loom_tests.rs`.
struct Core {
    key: AtomicU32,
    halted: AtomicU32,
    ipi: AtomicU32,
    ipis: AtomicU32,
}

impl Core {
    /// The kernel's `notesleep` with `haltpoll=1`: poll for a window of two clock ticks (each
    /// clock reading is one tick), then the lab 4 loop. Returns (woken, caught by the poll).
    fn notesleep(&self) -> (bool, bool) {
        let t = Cell::new(0u64);
        if poll(&self.key, 2, || t.replace(t.get() + 1)) {
            return (true, true);
        }
        loop {
            if note_sleep_check(&self.key, &self.halted) {
                return (true, false);
            }
            loop {
                let v = self.ipi.fetch_and(!IPI_PENDING, Ordering::AcqRel);
                if v & IPI_PENDING != 0 {
                    break;
                }
                if v & WAKER_DONE != 0 {
                    return (false, false);
                }
                thread::yield_now();
            }
            self.halted.store(0, Ordering::Relaxed);
        }
    }

    fn notewakeup(&self) {
        notewakeup(&self.key, &self.halted, || {
            self.ipis.fetch_add(1, Ordering::Relaxed);
            self.ipi.fetch_or(IPI_PENDING, Ordering::AcqRel);
        });
    }
}

/// A core polls then halts while a waker sets its note: it always wakes; if the poll caught
/// the key, it never announced a halt, so the waker sent no IPI.
#[test]
fn loom_poll_then_halt_loses_no_wake_up() {
    model(|| {
        let c = Arc::new(Core {
            key: AtomicU32::new(0),
            halted: AtomicU32::new(0),
            ipi: AtomicU32::new(0),
            ipis: AtomicU32::new(0),
        });
        let c2 = c.clone();
        let sleeper = thread::spawn(move || c2.notesleep());
        c.notewakeup();
        c.ipi.fetch_or(WAKER_DONE, Ordering::AcqRel);
        let (woken, polled) = sleeper.join().unwrap();
        assert!(woken, "lost wake-up: the core halted after polling and never saw the key");
        let ipis = c.ipis.load(Ordering::Relaxed);
        assert!(ipis <= 1);
        if polled {
            assert_eq!(ipis, 0, "the poll caught the wake-up, yet the waker sent an IPI");
        }
        assert_eq!(c.halted.load(Ordering::Relaxed), 0);
    });
}
