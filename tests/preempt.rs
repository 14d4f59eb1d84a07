//! Preemption and time scenarios: sysmon's retake with the poisoned stack
//! guard (cooperative) and the preemption IPI (asynchronous), timers,
//! FPU/SSE state across asynchronous preemption, PreemptGuard, the
//! syscall hand-off and stack overflows. Each at -smp 1, 2 and 4 unless the
//! scenario is about a specific shape.

mod common;

use common::*;

const TK: &str = "testkernel";

use common::pass_scenario as pass;

macro_rules! at_1_2_4 {
    ($name:ident, $test:expr, $extra:expr, $check:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn smp1() {
                ($check)(pass($test, 1, $extra));
            }
            #[test]
            fn smp2() {
                ($check)(pass($test, 2, $extra));
            }
            #[test]
            fn smp4() {
                ($check)(pass($test, 4, $extra));
            }
        }
    };
}

// TestPreemption: with no safe point at all, only asynchronous preemption
// lets the third goroutine run at -smp 1 (the scenario asserts the count).
at_1_2_4!(preemption_async, "preempt_async", &[], |o: Outcome| {
    expect_contains(&o, "third goroutine finished 5 steps");
});
// ... and with cooperative checks only (asyncpreemptoff=1).
at_1_2_4!(preemption_cooperative, "preempt_coop", &["asyncpreemptoff=1"], |o: Outcome| {
    expect_contains(&o, "third goroutine finished 5 steps");
    expect_contains(&o, "async preemptions=0");
});
// TestPingPongHog: runnext hand-offs share one time slice, so sysmon
// preempts the hog pair's chain and the light pair gets the P (the scenario
// asserts Go's factor-of-20 bound; with forcepreemptns=10s it fails ~1000x).
at_1_2_4!(ping_pong_hog, "ping_pong_hog", &[], |o: Outcome| {
    expect_contains(&o, "ping_pong_hog: hog count ");
});
at_1_2_4!(timer_fairness, "timer_fairness", &[], |o: Outcome| {
    expect_contains(&o, "timer_fairness: a 20 ms sleep under a flood woke");
});
at_1_2_4!(sleep_accuracy, "sleep_accuracy", &[], |o: Outcome| {
    expect_contains(&o, "sleep_accuracy: sleep(5ms) x20");
});
at_1_2_4!(many_sleepers, "many_sleepers", &[], |o: Outcome| {
    expect_contains(&o, "many_sleepers: 10000 sleepers woke");
    expect_contains(&o, "early=0, out of deadline order per P=0");
});
at_1_2_4!(fpu_sse_state_survives_async_preemption, "fpu_preempt", &[], |o: Outcome| {
    expect_contains(&o, " 0 wrong");
});
at_1_2_4!(preempt_guard, "preempt_guard", &[], |o: Outcome| {
    expect_contains(&o, "preempt_guard: other goroutine ran 0 steps during 5 slices");
});

#[test]
fn syscall_handoff_smp2_gomaxprocs1() {
    let o = pass("syscall_handoff", 2, &["gomaxprocs=1"]);
    // The scenario asserts progress during both kinds of syscall.
    expect_contains(&o, "syscall_handoff: plain syscall: other goroutine made");
    expect_contains(&o, "syscall_handoff: blocking syscall: other goroutine made");
}

#[test]
fn syscall_without_spare_core_smp1() {
    pass("syscall_handoff", 1, &[]);
}

#[test]
fn syscall_handoff_smp4_gomaxprocs2() {
    pass("syscall_handoff", 4, &["gomaxprocs=2"]);
}

// Regression: the cooperative check racing with asynchronous preemption
// must never report a false stack overflow (tiny slice, fast ticks).
at_1_2_4!(check_races_async_preemption, "check_under_preemption", &["forcepreemptns=100000", "hz=2000"], |o: Outcome| {
    expect_contains(&o, "check_under_preemption: 4 goroutines made ");
});

#[test]
fn forcepreemptns_knob() {
    let o = pass("preempt_async", 1, &["forcepreemptns=2000000"]);
    expect_contains(&o, "third goroutine finished 5 steps");
}

/// The report must name the overflowing goroutine (not main, goroutine 1),
/// in its header and, for the software check, in the message itself.
fn overflow(test: &str, smp: u32, needle: &str) {
    let t = format!("test={test}");
    let o = boot(TK, smp, &[t.as_str()], timeout_for(smp));
    expect_fail_with(&o, needle);
    let g = reported_goroutine(&o);
    assert!(g != 1, "the report names main instead of the overflowing goroutine");
    expect_contains(&o, &format!("goroutine {g} [running]:"));
    if test == "stack_overflow_checked" {
        expect_contains(&o, &format!("fatal error: stack overflow: goroutine {g} sp="));
    }
}

#[test]
fn stack_overflow_guard_page_smp1() {
    overflow("stack_overflow", 1, "fatal error: stack overflow");
}
#[test]
fn stack_overflow_guard_page_smp4() {
    overflow("stack_overflow", 4, "fatal error: stack overflow");
}
#[test]
fn stack_overflow_software_check_smp2() {
    overflow("stack_overflow_checked", 2, "fatal error: stack overflow: goroutine ");
}
