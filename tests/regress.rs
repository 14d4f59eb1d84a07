//! Regression scenarios for scheduler bugs (issues 8 and 14), each booted at
//! the core counts that showed the bug, with a hard timeout. Each failed
//! before its fix (see kernel/src/bin/testkernel/regress.rs for the story).

mod common;

use common::*;

/// Boot `test` and require a pass. These scenarios are stress loops (3000
/// stop-the-worlds, a torture run): a longer hard timeout than the usual
/// scenario's, still a failure with the serial tail if it hangs.
fn pass(test: &str, smp: u32, extra: &[&str]) -> Outcome {
    let t = format!("test={test}");
    let mut params = vec![t.as_str()];
    params.extend_from_slice(extra);
    let o = boot("testkernel", smp, &params, 300);
    expect_pass(&o);
    expect_contains(&o, &format!("test {test}: PASS"));
    o
}

// Bug 1: `casgstatus: bad transition running -> runnable (it is syscall)`:
// a pending preemption honoured at a safe point inside a syscall.
#[test]
fn syscall_preempt_smp1_asyncpreemptoff() {
    pass("syscall_preempt", 1, &["asyncpreemptoff=1"]);
}
#[test]
fn syscall_preempt_smp2_asyncpreemptoff() {
    let o = pass("syscall_preempt", 2, &["asyncpreemptoff=1"]);
    expect_contains(&o, "syscall_preempt: 5 syscalls entered with a preemption pending");
}
#[test]
fn syscall_preempt_smp3() {
    pass("syscall_preempt", 3, &[]);
}

// Bug 2: stop-the-world hung on a P that startm put back on the idle list.
#[test]
fn stw_syscallblock_smp2() {
    let o = pass("stw_syscallblock", 2, &[]);
    expect_contains(&o, " stop-the-worlds during ");
}
#[test]
fn stw_syscallblock_smp3() {
    pass("stw_syscallblock", 3, &[]);
}

// Issue 14: the same hang without syscalls, through wakep/startm.
#[test]
fn stw_wakep_churn_smp2() {
    pass("stw_wakep_churn", 2, &[]);
}
#[test]
fn stw_wakep_churn_smp3() {
    let o = pass("stw_wakep_churn", 3, &[]);
    expect_contains(&o, " goroutines spawned and finished");
}
#[test]
fn stw_wakep_churn_smp5_schedrandom() {
    pass("stw_wakep_churn", 5, &["schedrandom=1"]);
}

// Bug 3: nmspinning leaked through a locked M.
#[test]
fn locked_spinning_leak_smp3() {
    let o = pass("locked_spinning_leak", 3, &[]);
    expect_contains(&o, "4 hogs ran on ");
}
#[test]
fn locked_spinning_leak_smp4() {
    pass("locked_spinning_leak", 4, &[]);
}

// Bug 4: a new timer on a busy P woke no parked core.
// A latency bound: boot it alone (all QEMU slots), so that another QEMU on
// this small host does not add its own delays.
fn timer_wakes(smp: u32) -> Outcome {
    let mut b = Boot::new("testkernel", smp, &["test=timer_wakes_idle_core", "forcepreemptns=1000000000"], 300);
    b.exclusive = true;
    let o = b.run();
    expect_pass(&o);
    expect_contains(&o, "test timer_wakes_idle_core: PASS");
    o
}
#[test]
fn timer_wakes_idle_core_smp2() {
    let o = timer_wakes(2);
    expect_contains(&o, "timer_wakes_idle_core: a 1 ms timer armed by a spinning goroutine fired after");
}
#[test]
fn timer_wakes_idle_core_smp3() {
    timer_wakes(3);
}

// Issue 14: the per-P order check counted a legitimate late-added deadline.
#[test]
fn timer_order_exact_smp1() {
    let o = pass("timer_order_exact", 1, &[]);
    expect_contains(&o, "violations=0");
}
#[test]
fn timer_order_exact_smp2() {
    pass("timer_order_exact", 2, &[]);
}

// entersyscall from a goroutine locked to its core (Go allows it).
#[test]
fn syscall_locked_smp1() {
    pass("syscall_locked", 1, &[]);
}
#[test]
fn syscall_locked_smp2() {
    let o = pass("syscall_locked", 2, &[]);
    expect_contains(&o, "all on its core; other goroutine made progress=true");
}
#[test]
fn syscall_locked_smp4_gomaxprocs2() {
    pass("syscall_locked", 4, &["gomaxprocs=2"]);
}

// The torture scenario itself, briefly, at odd core counts (the campaign,
// `./run-qemu.sh torture`, runs it long and at random settings).
#[test]
fn torture_smp3_schedrandom() {
    let o = pass("torture", 3, &["duration=10", "schedrandom=1", "seed=12345"]);
    expect_contains(&o, "torture: seed=12345 ");
    expect_contains(&o, "torture: ok (seed=12345)");
}
#[test]
fn torture_smp1() {
    let o = pass("torture", 1, &["duration=8"]);
    expect_contains(&o, "torture: ok");
}
