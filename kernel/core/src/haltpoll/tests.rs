//! Host tests of the halt-poll policy: the window's table of cases against Linux's
//! `adjust_poll_limit`, a proptest of its invariants, and the poll on a fake clock.
use super::*;
use core::cell::Cell;
use proptest::prelude::*;

/// A window after one park of `slept_ns`, from `start`.
fn after(start: u64, polled_ok: bool, slept_ns: u64) -> u64 {
    let mut w = Window::from_ns(start);
    w.after_wake(polled_ok, slept_ns);
    w.window_ns()
}

#[test]
fn grows_after_a_short_halt() {
    // Halted (the poll expired), woken soon after: ×2.
    assert_eq!(after(50_000, false, 60_000), 100_000);
    assert_eq!(after(100_000, false, 150_000), 200_000);
    // Woken exactly at MAX_NS still counts as soon.
    assert_eq!(after(50_000, false, MAX_NS), 100_000);
    // Never beyond MAX_NS.
    assert_eq!(after(200_000, false, 200_000), 200_000);
    assert_eq!(after(150_000, false, 180_000), 200_000);
    // A window shrunk to nothing grows back to GROW_START_NS at once.
    assert_eq!(after(0, false, 10_000), GROW_START_NS);
    assert_eq!(after(10_000, false, 20_000), GROW_START_NS);
    // From the first window: 50 -> 100 -> 200 -> 200 µs.
    let mut w = Window::new();
    for want in [100_000, 200_000, 200_000] {
        w.after_wake(false, 190_000.max(w.window_ns() + 1).min(MAX_NS));
        assert_eq!(w.window_ns(), want);
    }
}

#[test]
fn shrinks_after_a_long_sleep() {
    assert_eq!(after(200_000, false, 200_001), 100_000);
    assert_eq!(after(200_000, false, 10_000_000), 100_000);
    assert_eq!(after(50_000, false, 1_000_000), 25_000);
    // Down to 0 after enough long sleeps, never below.
    let mut w = Window::new();
    for _ in 0..64 {
        w.after_wake(false, 5_000_000);
    }
    assert_eq!(w.window_ns(), 0);
    // A timer deadline that ended a long park counts as a long sleep too (polled_ok false).
    assert_eq!(after(100_000, false, 1_000_000), 50_000);
}

#[test]
fn kept_when_the_poll_caught_the_wake_up() {
    for start in [0, 25_000, 50_000, 100_000, 200_000] {
        for slept in [0, 1, 10_000, start] {
            assert_eq!(after(start, true, slept), start, "start {start} slept {slept}");
        }
    }
}

#[test]
fn starts_at_grow_start_and_clamps() {
    assert_eq!(Window::new().window_ns(), GROW_START_NS);
    assert_eq!(Window::default(), Window::new());
    assert_eq!(Window::from_ns(u64::MAX).window_ns(), MAX_NS);
    // The first window adapts like any other (this test also fails if after_wake is a stub).
    let mut w = Window::new();
    w.after_wake(false, 70_000);
    assert_eq!(w.window_ns(), 2 * GROW_START_NS);
}

proptest! {
    /// Any sequence of parks: the window stays within 0..=MAX_NS; a halted park that lasted
    /// longer than the window but at most MAX_NS never shrinks it (and grows it unless it is
    /// at MAX_NS); a park longer than MAX_NS never grows it (and shrinks it unless it is 0).
    #[test]
    fn window_stays_in_range_grows_on_short_shrinks_on_long(
        parks in proptest::collection::vec((any::<bool>(), 0u64..2 * MAX_NS), 1..200),
        start in 0u64..=MAX_NS,
    ) {
        let mut w = Window::from_ns(start);
        for (polled_ok, slept) in parks {
            let before = w.window_ns();
            // A poll that caught the wake-up ended within the window.
            let slept = if polled_ok { slept.min(before) } else { slept.max(before) };
            w.after_wake(polled_ok, slept);
            let now = w.window_ns();
            prop_assert!(now <= MAX_NS);
            if polled_ok {
                prop_assert_eq!(now, before);
            } else if slept > MAX_NS {
                prop_assert!(now <= before);
                prop_assert!(before == 0 || now < before, "a long sleep must shrink {before}");
            } else if slept > before {
                prop_assert!(now >= before);
                prop_assert!(before == MAX_NS || now > before, "a short halt must grow {before}");
                prop_assert!(now >= GROW_START_NS);
            }
        }
    }
}

/// A fake clock: each reading advances it by `step` ns.
fn clock(step: u64) -> (Cell<u64>, u64) {
    (Cell::new(0), step)
}

#[test]
fn poll_returns_at_once_when_the_key_is_set() {
    let key = AtomicU32::new(1);
    let (t, step) = clock(10);
    assert!(poll(&key, 1_000, || t.replace(t.get() + step)));
    // Even with a window of 0.
    assert!(poll(&key, 0, || 0));
}

#[test]
fn poll_gives_up_exactly_when_the_window_passed() {
    let key = AtomicU32::new(0);
    let (t, step) = clock(10);
    let reads = Cell::new(0u32);
    let got = poll(&key, 1_000, || {
        reads.set(reads.get() + 1);
        t.replace(t.get() + step)
    });
    assert!(!got);
    // 1000 ns of a clock that moves 10 per reading: 101 readings (the start, then 100), not
    // fewer (giving up early), not many more.
    assert_eq!(reads.get(), 101, "the poll must read the clock until the window has passed, then stop");
    // A window of 0 still looks at the key once, and ends.
    let (t, step) = clock(1);
    assert!(!poll(&key, 0, || t.replace(t.get() + step)));
}

#[test]
fn poll_sees_a_key_stored_during_the_window() {
    // The waker stores the key while the clock reads 500: the poll must return true.
    let key = AtomicU32::new(0);
    let t = Cell::new(0u64);
    let got = poll(&key, 1_000, || {
        let v = t.get();
        t.set(v + 10);
        if v == 500 {
            key.store(1, Ordering::SeqCst);
        }
        v
    });
    assert!(got, "the poll missed a key stored within its window");
    // Even one stored at the window's last reading before it expires.
    let key = AtomicU32::new(0);
    let t = Cell::new(0u64);
    let got = poll(&key, 1_000, || {
        let v = t.get();
        t.set(v + 10);
        if v == 990 {
            key.store(1, Ordering::SeqCst);
        }
        v
    });
    assert!(got, "the poll gave up before its window had passed");
}

#[test]
fn poll_on_a_real_thread() {
    // A second thread sets the key after a short while; a long window sees it.
    let key = std::sync::Arc::new(AtomicU32::new(0));
    let k2 = key.clone();
    let t0 = std::time::Instant::now();
    let h = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        k2.store(1, Ordering::SeqCst);
    });
    assert!(poll(&key, 5_000_000_000, || t0.elapsed().as_nanos() as u64));
    h.join().unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(4));
}
