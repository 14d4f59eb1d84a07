//! Scheduler scenarios (the GMP core): ports of Go's proc_test.go tests and
//! stress scenarios, each at -smp 1, 2 and 4, and once more with
//! `schedrandom=1` (randomised runnext, steal and batch order, as Go does
//! under the race detector). Every scenario asserts inside the kernel (a
//! failed assertion is a panic and a failure exit); the host checks the exit
//! status and the lines the scenario prints. A G running on two cores at
//! once is a fatal error in every scenario (the on-CPU CAS in `execute`).

mod common;

use common::*;

const TK: &str = "testkernel";

use common::pass_scenario as pass;

macro_rules! scenario {
    ($name:ident, $test:expr, $check:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn smp1() {
                ($check)(pass($test, 1, &[]), 1);
            }
            #[test]
            fn smp2() {
                ($check)(pass($test, 2, &[]), 2);
            }
            #[test]
            fn smp4() {
                ($check)(pass($test, 4, &[]), 4);
            }
            #[test]
            fn smp4_schedrandom() {
                ($check)(pass($test, 4, &["schedrandom=1"]), 4);
            }
        }
    };
}

scenario!(goroutine_parallelism, "parallelism", |o: Outcome, smp: u32| {
    expect_contains(&o, &format!("with {smp} goroutines spinning on {smp} Ps: ok"));
});
scenario!(goroutine_parallelism2, "parallelism2", |o: Outcome, _smp: u32| {
    expect_contains(&o, "parallelism2: ");
});
scenario!(yield_progress, "yield_progress", |o: Outcome, _smp: u32| {
    expect_contains(&o, "yield_progress: ok");
});
scenario!(spawn_storm, "spawn_storm", |o: Outcome, _smp: u32| {
    expect_contains(&o, "spawn_storm: 100000 goroutines, never ran=0, ran twice=0");
});
scenario!(spawn_tree, "spawn_tree", |o: Outcome, _smp: u32| {
    expect_contains(&o, "spawn_tree: depth 11: 4095 nodes");
});
scenario!(lock_os_thread, "lock_os_thread", |o: Outcome, _smp: u32| {
    expect_contains(&o, "200 yields and sleeps, always on cpu");
    expect_contains(&o, ", 0 of them on the locked core");
});
scenario!(lock_os_thread_with_stop_the_world, "lock_os_thread_stw", |o: Outcome, _smp: u32| {
    expect_contains(&o, "slept 100 times; moved 0 times");
});
scenario!(gomaxprocs_churn, "gomaxprocs_churn", |o: Outcome, _smp: u32| {
    expect_contains(&o, "gomaxprocs_churn: 1000 changes");
    expect_contains(&o, "none lost");
});

#[test]
fn gomaxprocs_out_of_range_is_an_error() {
    let o = pass("gomaxprocs_invalid", 2, &[]);
    expect_contains(&o, "gomaxprocs(0) = 2 (a query)");
    expect_contains(&o, "GOMAXPROCS(3) is out of range: must be 1..=2");
}

#[test]
fn gomaxprocs_boot_parameter() {
    let o = pass("parallelism", 4, &["gomaxprocs=2"]);
    expect_contains(&o, "with 2 goroutines spinning on 2 Ps: ok");
}

fn deadlock(smp: u32) {
    let o = boot(TK, smp, &["test=deadlock"], timeout_for(smp));
    expect_fail_with(&o, "fatal error: all goroutines are asleep - deadlock!");
    expect_contains(&o, "goroutine 1 [chan receive]:");
    expect_contains(&o, "[chan send]:");
}

#[test]
fn deadlock_report_smp1() {
    deadlock(1);
}
#[test]
fn deadlock_report_smp2() {
    deadlock(2);
}
#[test]
fn deadlock_report_smp4() {
    deadlock(4);
}

#[test]
fn panic_report_names_goroutine() {
    let o = boot(TK, 4, &["test=panic"], timeout_for(4));
    expect_fail_with(&o, "panic: boom from a goroutine");
    // The panicking goroutine is not main (goroutine 1).
    let line = expect_line(&o, "goroutine ");
    assert!(line.contains("[running]:") && !line.starts_with("goroutine 1 "), "report names the panicking goroutine: {line}");
}

#[test]
fn schedtrace_prints_go_format() {
    let o = boot("kernel", 4, &["schedtrace=5"], timeout_for(4));
    expect_pass(&o);
    let l = expect_line(&o, "SCHED ");
    for k in ["gomaxprocs=4", "idleprocs=", "threads=4", "spinningthreads=", "idlethreads=", "runqueue=", "["] {
        assert!(l.contains(k), "SCHED line lacks {k}: {l}");
    }
    expect_contains(&o, "sched summary: goroutines created=");
}

#[test]
fn scheddetail_prints_p_m_g_lines() {
    let o = boot("kernel", 2, &["schedtrace=20", "scheddetail=1"], timeout_for(2));
    expect_pass(&o);
    expect_contains(&o, "  P0: status=");
    expect_contains(&o, "  M1: p=");
    expect_contains(&o, "  G1: status=");
}

#[test]
fn demo_uses_every_core() {
    let o = boot("kernel", 4, &[], timeout_for(4));
    expect_pass(&o);
    expect_contains(&o, "(correct)");
}
