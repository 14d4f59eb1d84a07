//! Channels, select and sync: ports of Go's chan_test.go and sync tests,
//! close semantics, the prime sieve, and misuse that must fail with Go's
//! message. The scenarios live in kernel/src/bin/testkernel/chan.rs and
//! assert inside the kernel (a failed assertion is a panic and a failure
//! exit); the host checks the exit status and the lines they print.
//!
//! A boot costs ~5 s under TCG while most scenarios take a fraction of a
//! second, so: every scenario boots alone at -smp 4 (the most concurrent
//! case, and the one to rerun when something fails), and the whole suite
//! (`test=chan_all`, every scenario in turn in one kernel) runs at -smp 1,
//! 2 and 4, and at -smp 4 with `schedrandom=1` (randomised runnext and
//! batch order, as Go's race mode). Each boot has a hard timeout.

mod common;

use common::*;

const TK: &str = "testkernel";

use common::pass_scenario as pass;

fn must_fail(test: &str, smp: u32, needle: &str) -> Outcome {
    let t = format!("test={test}");
    let o = boot(TK, smp, &[t.as_str()], timeout_for(smp));
    expect_fail_with(&o, needle);
    o
}

/// Every scenario of the suite, with the line its success prints.
const SUITE: &[(&str, &str)] = &[
    ("chan_basic", "chan_basic: ok"),
    ("chan_test", "chan_test: capacities 0..=100: blocking, non-blocking, close, FIFO, 4x1000 fan-in/out, len/cap: ok"),
    ("chan_nonblock_recv_race", "chan_nonblock_recv_race: 10000 rounds, 0 failures"),
    ("chan_self_select", "chan_self_select: ok"),
    ("chan_select_stress", "chan_select_stress: 10 goroutines, 4 channels, 160000 values: ok"),
    ("chan_select_fairness", "chan_select_fairness: 10000 trials: "),
    ("chan_multi_consumer", "chan_multi_consumer: 23 workers, 271828 values, sum 36945094878, missing 0, duplicated 0"),
    ("chan_send_interface", "chan_send_interface: 106 boxed trait objects, each dropped exactly once: ok"),
    ("chan_close", "chan_close: wake-all on close"),
    ("chan_select_after", "chan_select_after: timeout after"),
    ("sync_waitgroup", "sync_waitgroup: round 1: 10000 goroutines, 5 waiters: ok"),
    ("sync_mutex", "sync_mutex: 8x2000 increments = 16000"),
    ("sync_mutex_fairness", "sync_mutex_fairness: the waiter got the mutex 10 times"),
    ("sync_once", "sync_once: round 2: 100 goroutines, f ran once: ok"),
    ("sync_semaphore", "sync_semaphore: 40 goroutines x 20 acquisitions of 3 units, at most"),
    ("chan_sieve", "chan_sieve: first 150 primes: 2 ... 863"),
    ("chan_after_loop", "chan_after_loop: 100000 values through select with after(1s)"),
    ("chan_timers_shrink", "chan_timers_shrink: timers per P"),
    ("chan_timer_stop_reset", "chan_timer_stop_reset: stop, reset, drop and 500 stop/fire races"),
    ("chan_select_100", "chan_select_100: a 100-case select!, ready and blocking; 1000 cases through selectgo: ok"),
];

/// TestSelectFairness: the kernel asserts the 10-sigma bound; the host
/// re-checks the printed counts ("10000 trials: C1 / C2 (10 sigma = 500)").
fn check_fairness(o: &Outcome) {
    let line = expect_line(o, "chan_select_fairness: ");
    let counts: Vec<i64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect();
    let [trials, c1, c2, ..] = counts[..] else { fail(o, "cannot parse the fairness line") };
    if trials != 10_000 || c1 + c2 != trials || (c1 - 5000).abs() > 500 {
        fail(o, &format!("unfair select: {c1} / {c2} over {trials} trials"));
    }
}

fn check(o: &Outcome, test: &str) {
    let (_, needle) = SUITE.iter().find(|(t, _)| *t == test).unwrap();
    expect_contains(o, needle);
    if test == "chan_select_fairness" {
        check_fairness(o);
    }
}

/// The whole suite in one boot: every scenario must report PASS.
fn suite(smp: u32, extra: &[&str]) {
    let o = pass("chan_all", smp, extra);
    for (test, _) in SUITE {
        expect_contains(&o, &format!("test {test}: PASS"));
        check(&o, test);
    }
    expect_contains(&o, &format!("chan_all: {} scenarios passed", SUITE.len()));
}

#[test]
fn suite_smp1() {
    suite(1, &[]);
}

#[test]
fn suite_smp2() {
    suite(2, &[]);
}

#[test]
fn suite_smp4() {
    suite(4, &[]);
}

#[test]
fn suite_smp4_schedrandom() {
    suite(4, &["schedrandom=1"]);
}

/// `alone!(name, "test")`: the scenario in its own boot at -smp 4.
macro_rules! alone {
    ($($name:ident => $test:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(&pass($test, 4, &[]), $test);
            }
        )*
    };
}

alone! {
    chan_basic_smp4 => "chan_basic",
    test_chan_smp4 => "chan_test",
    test_nonblock_recv_race_smp4 => "chan_nonblock_recv_race",
    test_self_select_smp4 => "chan_self_select",
    test_select_stress_smp4 => "chan_select_stress",
    test_select_fairness_smp4 => "chan_select_fairness",
    test_multi_consumer_smp4 => "chan_multi_consumer",
    test_chan_send_interface_smp4 => "chan_send_interface",
    close_semantics_smp4 => "chan_close",
    select_after_smp4 => "chan_select_after",
    waitgroup_10000_smp4 => "sync_waitgroup",
    mutex_counter_smp4 => "sync_mutex",
    mutex_fairness_smp4 => "sync_mutex_fairness",
    once_smp4 => "sync_once",
    semaphore_smp4 => "sync_semaphore",
    prime_sieve_smp4 => "chan_sieve",
    after_loop_smp4 => "chan_after_loop",
    timers_shrink_smp4 => "chan_timers_shrink",
    timer_stop_reset_smp4 => "chan_timer_stop_reset",
    select_100_cases_smp4 => "chan_select_100",
}

// --- issue 16 / issue 8: limits and differences from Go -----------------------------------------

/// The mutex's and semaphore's hand-off yields with goyield: the local
/// queue, not the global one.
#[test]
fn goyield_uses_the_local_queue() {
    for smp in [1, 2] {
        let o = pass("sched_goyield", smp, &[]);
        expect_contains(&o, "sched_goyield: global queue 0 after goyield, 1 after gosched: ok");
    }
}

/// Go's message when main called Goexit and every other goroutine ended.
#[test]
fn goexit_from_main_reports_no_goroutines() {
    for smp in [1, 4] {
        let o = must_fail("chan_goexit_main", smp, "fatal error: no goroutines (main called runtime.Goexit) - deadlock!");
        expect_contains(&o, "chan_goexit_main: the other goroutine finished");
        if o.serial.contains("all goroutines are asleep") {
            fail(&o, "the generic deadlock report instead of Go's Goexit one");
        }
    }
}

/// goexit inside Once::call_once: a fatal error naming the goroutine, not
/// a deadlock of the next caller.
#[test]
fn goexit_inside_call_once_is_fatal() {
    for smp in [1, 2] {
        let o = must_fail("sync_once_goexit", smp, "fatal error: goexit inside Once::call_once: goroutine ");
        expect_contains(&o, "would leave the Once locked forever");
        if o.serial.contains("deadlock") {
            fail(&o, "a deadlock instead of the goexit report");
        }
    }
}

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
