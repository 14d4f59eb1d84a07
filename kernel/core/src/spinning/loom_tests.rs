//! Loom models of the spinning-M protocol: no wake-up is ever lost.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p gmp-core --release --lib spinning::loom_tests
//! ```
//!
//! A lost wake-up is an assertion: the G was submitted, the submitter relied on a spinner, and
//! the spinner did not see it; or a core halted and nothing will ever end its halt (there is no
//! timer backstop in these models, as there is none on a real idle core with no timer due).
use super::*;
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

/// One core: its M's note, and the wake-up IPI as a latch (`hlt` ends when one is pending,
/// and consumes it; an IPI sent while the core runs stays pending until it halts). Once the
/// waker has finished ([`WAKER_DONE`]), a halt with no IPI pending would last for ever: the model
/// reports that as `false` from [`Core::notesleep`] rather than blocking (a loom deadlock
/// aborts the whole test binary, and with it the other models' results).
struct Core {
    key: AtomicU32,
    halted: AtomicU32,
    /// [`IPI_PENDING`] | [`WAKER_DONE`], in one word so that coherence alone orders them.
    ipi: AtomicU32,
    ipis: AtomicU32,
}

impl Core {
    fn new() -> Self {
        Core {
            key: AtomicU32::new(0),
            halted: AtomicU32::new(0),
            ipi: AtomicU32::new(0),
            ipis: AtomicU32::new(0),
        }
    }

    /// The kernel's `notesleep` loop (interrupts off from the check to the `sti; hlt`). True:
    /// woken; false: halted for good (nobody will send another IPI).
    fn notesleep(&self) -> bool {
        loop {
            if note_sleep_check(&self.key, &self.halted) {
                return true;
            }
            // sti; hlt: sleep until an IPI is (or already was) delivered, consuming it.
            loop {
                let v = self.ipi.fetch_and(!IPI_PENDING, Ordering::AcqRel);
                if v & IPI_PENDING != 0 {
                    break;
                }
                if v & WAKER_DONE != 0 {
                    return false;
                }
                thread::yield_now();
            }
            self.halted.store(0, Ordering::Relaxed);
        }
    }

    /// The kernel's `notewakeup`: the IPI sets the pending latch.
    fn notewakeup(&self) {
        notewakeup(&self.key, &self.halted, || {
            self.ipis.fetch_add(1, Ordering::Relaxed);
            self.ipi.fetch_or(IPI_PENDING, Ordering::AcqRel);
        });
    }

    /// The waker will send nothing more.
    fn waker_done(&self) {
        self.ipi.fetch_or(WAKER_DONE, Ordering::AcqRel);
    }
}

/// The work: a run queue of at most one G (1 = queued, 0 = empty or taken).
struct World {
    nmspinning: AtomicU32,
    runq: AtomicU32,
    core: Core,
}

impl World {
    /// `runqput`: the queue's tail store is `SeqCst` (`xchg` on x86, a full barrier); the
    /// model writes that barrier out, as the C11 model needs it.
    fn runqput(&self) {
        self.runq.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// `runqget` by whichever M runs the G: true if this M took it.
    fn runqget(&self) -> bool {
        self.runq.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// `checkRunqsNoP`: an Acquire load of the queue, as `runqempty`'s.
    fn runqs_nonempty(&self) -> bool {
        self.runq.load(Ordering::Acquire) != 0
    }
}

/// The Dekker pair on `nmspinning`: the last spinning M gives up (found nothing, gave its P
/// back) while a submitter puts a G and calls wakep. Either the submitter claims a new
/// spinner, or the old spinner's re-check sees the G.
#[test]
fn loom_last_spinner_vs_submitter() {
    model(|| {
        let w = Arc::new(World { nmspinning: AtomicU32::new(1), runq: AtomicU32::new(0), core: Core::new() });
        let w2 = w.clone();
        let spinner = thread::spawn(move || drop_spinning_recheck(&w2.nmspinning, || w2.runqs_nonempty()));
        w.runqput();
        let claimed = wakep_claim(&w.nmspinning);
        let found = spinner.join().unwrap().expect("nmspinning went negative");
        assert!(claimed || found, "lost wake-up: the submitter saw a spinner, the spinner's re-check saw no G");
        // A claim is the one spinner slot: the count is 1 exactly when it was claimed.
        assert_eq!(w.nmspinning.load(Ordering::Relaxed), claimed as u32);
    });
}

/// The note: a core halting in notesleep, woken once. With the key published before the IPI
/// is decided, it always wakes.
#[test]
fn loom_note_wakeup_ends_the_halt() {
    model(|| {
        let c = Arc::new(Core::new());
        let c2 = c.clone();
        let sleeper = thread::spawn(move || c2.notesleep());
        c.notewakeup();
        c.waker_done();
        assert!(sleeper.join().unwrap(), "lost wake-up: the core halted again after the IPI and never saw the key");
        assert!(c.ipis.load(Ordering::Relaxed) <= 1);
        assert_eq!(c.halted.load(Ordering::Relaxed), 0, "a woken core must not still announce a halt");
    });
}

/// The whole chain, as the kernel runs it: the last spinning M (the only idle core) stops
/// spinning, re-checks, and if it found nothing parks on its note; the submitter puts a G,
/// calls wakep and, if it claimed the spinner slot, wakes that core (`startm` → `notewakeup`).
/// The G must run exactly once, and no core may halt for good with the G queued.
#[test]
fn loom_spinner_parks_submitter_wakes() {
    model(|| {
        let w = Arc::new(World { nmspinning: AtomicU32::new(1), runq: AtomicU32::new(0), core: Core::new() });
        let w2 = w.clone();
        let m = thread::spawn(move || {
            let found = drop_spinning_recheck(&w2.nmspinning, || w2.runqs_nonempty()).expect("negative nmspinning");
            if found && w2.runqget() {
                return 1; // took a P back, spun again, ran the G
            }
            // Parked: until startm wakes us, as a spinning M; then findRunnable finds the G.
            if !w2.core.notesleep() {
                return 0; // halted for good
            }
            w2.runqget() as u32
        });
        w.runqput();
        if wakep_claim(&w.nmspinning) {
            // startm: the parked M gets a P and the spinning count; wake its core.
            w.core.notewakeup();
        }
        // Otherwise the submitter relies on the spinner: if that M parked without seeing the G,
        // nothing ends its halt.
        w.core.waker_done();
        let ran_by_m = m.join().unwrap();
        assert_eq!(ran_by_m, 1, "the queued G never ran: a lost wake-up");
    });
}
