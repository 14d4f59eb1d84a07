//! Channels, select and sync: ports of Go's chan_test.go and sync tests,
//! close semantics, the prime sieve, and misuse that must fail with Go's
//! message. The scenarios live in kernel/src/bin/testkernel/chan.rs and
//! assert inside the kernel; here each passing scenario boots at -smp 1, 2
//! and 4 (some also with `schedrandom=1`) and the host checks the exit
//! status and the summary line. Failing scenarios must exit with failure
//! and print Go's `panic: ...` / `fatal error: ...` report.

mod common;

use common::*;

const TK: &str = "testkernel";

fn pass(test: &str, smp: u32, extra: &[&str]) -> Outcome {
    let t = format!("test={test}");
    let mut params = vec![t.as_str()];
    params.extend_from_slice(extra);
    let o = boot(TK, smp, &params, timeout_for(smp));
    expect_pass(&o);
    expect_contains(&o, &format!("test {test}: PASS"));
    o
}

fn must_fail(test: &str, smp: u32, needle: &str) -> Outcome {
    let t = format!("test={test}");
    let o = boot(TK, smp, &[t.as_str()], timeout_for(smp));
    expect_fail_with(&o, needle);
    o
}

/// `scenario!(name, "test", "line that must appear")` runs at -smp 1, 2, 4;
/// `scenario!(name, "test", "line", random)` adds -smp 4 with schedrandom=1.
macro_rules! scenario {
    ($name:ident, $test:expr, $needle:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn smp1() {
                expect_contains(&pass($test, 1, &[]), $needle);
            }
            #[test]
            fn smp2() {
                expect_contains(&pass($test, 2, &[]), $needle);
            }
            #[test]
            fn smp4() {
                expect_contains(&pass($test, 4, &[]), $needle);
            }
        }
    };
    ($name:ident, $test:expr, $needle:expr, random) => {
        mod $name {
            use super::*;
            #[test]
            fn smp1() {
                expect_contains(&pass($test, 1, &[]), $needle);
            }
            #[test]
            fn smp2() {
                expect_contains(&pass($test, 2, &[]), $needle);
            }
            #[test]
            fn smp4() {
                expect_contains(&pass($test, 4, &[]), $needle);
            }
            #[test]
            fn smp4_schedrandom() {
                expect_contains(&pass($test, 4, &["schedrandom=1"]), $needle);
            }
        }
    };
}

// --- chan_test.go ports -------------------------------------------------------------------------

scenario!(chan_basic, "chan_basic", "chan_basic: ok");
scenario!(test_chan, "chan_test", "chan_test: capacities 0..=100: blocking, non-blocking, close, FIFO", random);
scenario!(test_nonblock_recv_race, "chan_nonblock_recv_race", "rounds, 0 failures", random);
scenario!(test_self_select, "chan_self_select", "chan_self_select: ok");
scenario!(test_select_stress, "chan_select_stress", "chan_select_stress: 10 goroutines, 4 channels", random);
scenario!(test_multi_consumer, "chan_multi_consumer", "missing 0, duplicated 0", random);
scenario!(test_chan_send_interface, "chan_send_interface", "each dropped exactly once: ok");
scenario!(close_semantics, "chan_close", "chan_close: wake-all on close");
scenario!(select_after, "chan_select_after", "chan_select_after: timeout after");
scenario!(prime_sieve, "chan_sieve", "chan_sieve: first 150 primes: 2 ... 863");

/// TestSelectFairness: the split must be within 10 sigma (500) of 5000;
/// the kernel asserts it, the host re-checks the printed counts.
fn select_fairness(smp: u32, extra: &[&str]) {
    let o = pass("chan_select_fairness", smp, extra);
    let line = expect_line(&o, "chan_select_fairness: ");
    let counts: Vec<i64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    // "chan_select_fairness: 10000 trials: C1 / C2 (10 sigma = 500)"
    let [trials, c1, c2, ..] = counts[..] else { fail(&o, "cannot parse the fairness line") };
    if trials != 10_000 || c1 + c2 != trials || (c1 - 5000).abs() > 500 {
        fail(&o, &format!("unfair select: {c1} / {c2} over {trials} trials"));
    }
}

#[test]
fn test_select_fairness_smp1() {
    select_fairness(1, &[]);
}
#[test]
fn test_select_fairness_smp2() {
    select_fairness(2, &[]);
}
#[test]
fn test_select_fairness_smp4() {
    select_fairness(4, &[]);
}
#[test]
fn test_select_fairness_smp4_schedrandom() {
    select_fairness(4, &["schedrandom=1"]);
}

// --- sync -----------------------------------------------------------------------------------------

scenario!(waitgroup_10000, "sync_waitgroup", "sync_waitgroup: round 1: 10000 goroutines, 5 waiters: ok", random);
scenario!(mutex_counter, "sync_mutex", "sync_mutex: 8x2000 increments = 16000", random);
scenario!(mutex_fairness, "sync_mutex_fairness", "sync_mutex_fairness: the waiter got the mutex 10 times");
scenario!(once, "sync_once", "sync_once: round 2: 100 goroutines, f ran once: ok");
scenario!(semaphore, "sync_semaphore", "at most");

// --- misuse: Go's report, failure exit --------------------------------------------------------------

#[test]
fn send_on_closed_channel_panics() {
    let o = must_fail("chan_send_closed", 2, "panic: send on closed channel");
    expect_contains(&o, "goroutine 1 [running]:");
    expect_contains(&o, "testkernel/chan.rs");
}

#[test]
fn select_send_on_closed_channel_panics() {
    must_fail("chan_select_send_closed", 2, "panic: send on closed channel");
}

#[test]
fn close_of_closed_channel_panics() {
    must_fail("chan_close_closed", 2, "panic: close of closed channel");
}

#[test]
fn close_of_nil_channel_panics() {
    must_fail("chan_close_nil", 1, "panic: close of nil channel");
}

#[test]
fn close_wakes_blocked_sender_which_panics() {
    let o = must_fail("chan_close_wakes_sender", 4, "panic: send on closed channel");
    if o.serial.contains("did not panic") {
        fail(&o, "the blocked sender was not woken by close");
    }
}

#[test]
fn unlock_of_unlocked_mutex_is_fatal() {
    must_fail("sync_unlock_unlocked", 2, "fatal error: sync: unlock of unlocked mutex");
}

#[test]
fn negative_waitgroup_counter_panics() {
    must_fail("sync_waitgroup_negative", 2, "panic: sync: negative WaitGroup counter");
}

fn deadlock(smp: u32) {
    let o = must_fail("chan_deadlock", smp, "fatal error: all goroutines are asleep - deadlock!");
    for needle in [
        "goroutine 1 [chan receive]:",
        "[chan send]:",
        "[select]:",
        "[chan receive (nil chan)]:",
        "[sync.WaitGroup.Wait]:",
    ] {
        expect_contains(&o, needle);
    }
}

#[test]
fn deadlock_on_channels_smp1() {
    deadlock(1);
}

#[test]
fn deadlock_on_channels_smp4() {
    deadlock(4);
}
