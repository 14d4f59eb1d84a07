//! Bring-up scenarios: boot the `testkernel` in QEMU with `test=NAME` and check what it reports.
//!
//! Contract with the testkernel (kernel/src/bin/testkernel*): it reads the boot parameters from
//! fw_cfg, runs the scenario named by `test=`, prints the lines checked below on the serial
//! console, and exits through isa-debug-exit with 0x10 (pass) or 0x11 (fail). A bad boot
//! parameter is a failure exit with a message naming `boot parameter` and the key.

mod common;

use common::*;

const TESTKERNEL: &str = "testkernel";

// --- smp_online: every core reaches the scheduler -------------------------------------------

/// `smp: N of N cores online in <T> us`
fn all_cores_online(smp: u32, uefi: bool) {
    let params = ["test=smp_online"];
    let o = Boot { uefi, ..Boot::new(TESTKERNEL, smp, &params, timeout_for(smp)) }.run();
    expect_pass(&o);
    let line = expect_line(&o, "smp: ");
    let words: Vec<&str> = line.split_whitespace().collect();
    let parsed = match words.as_slice() {
        ["smp:", online, "of", total, "cores", "online", "in", t, "us"] => {
            match (online.parse::<u32>(), total.parse::<u32>(), t.parse::<f64>()) {
                (Ok(a), Ok(b), Ok(t)) => Some((a, b, t)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some((online, total, t)) = parsed else {
        fail(&o, &format!("line {line:?} is not `smp: N of N cores online in T us`"));
    };
    if online != smp || total != smp {
        fail(&o, &format!("{line:?}: expected {smp} of {smp} cores online"));
    }
    if !(t > 0.0) {
        fail(&o, &format!("{line:?}: the bring-up time must be positive"));
    }
}

#[test]
fn all_cores_online_smp1() {
    all_cores_online(1, false);
}

#[test]
fn all_cores_online_smp2() {
    all_cores_online(2, false);
}

#[test]
fn all_cores_online_smp4() {
    all_cores_online(4, false);
}

#[test]
fn uefi_all_cores_online() {
    all_cores_online(4, true);
}

// --- ipi_pingpong: every ordered pair of cores exchanges IPIs, none lost ---------------------

/// `ipi: pairs=P messages=M lost=0` with P == n*(n-1).
fn ipi_pingpong(smp: u32) {
    let o = boot(TESTKERNEL, smp, &["test=ipi_pingpong"], timeout_for(smp));
    expect_pass(&o);
    let lines = lines_with(&o, "ipi: ");
    if smp == 1 && lines.is_empty() {
        return; // nothing to ping: passing is enough
    }
    let line = expect_line(&o, "ipi: ");
    let pairs: u64 = field(&o, line, "pairs");
    let messages: u64 = field(&o, line, "messages");
    let lost: u64 = field(&o, line, "lost");
    let want = u64::from(smp * (smp - 1));
    if pairs != want {
        fail(&o, &format!("{line:?}: expected pairs={want} (n*(n-1) with n={smp})"));
    }
    if messages < pairs {
        fail(&o, &format!("{line:?}: fewer messages than pairs"));
    }
    if lost != 0 {
        fail(&o, &format!("{line:?}: IPIs were lost"));
    }
}

#[test]
fn ipi_pingpong_smp1() {
    ipi_pingpong(1);
}

#[test]
fn ipi_pingpong_smp2() {
    ipi_pingpong(2);
}

#[test]
fn ipi_pingpong_smp4() {
    ipi_pingpong(4);
}

// --- timer_rate: every core's LAPIC timer ticks at the requested rate ------------------------

/// Per core: `timer: cpu=C hz=H ticks=T elapsed_us=E`, with T*1e6/E within 10% of H.
/// Runs alone (all QEMU slots), since a starved vCPU loses timer ticks.
fn timer_rate(smp: u32) {
    const HZ: u64 = 100;
    let params = ["test=timer_rate", "hz=100"];
    let o = Boot { exclusive: true, ..Boot::new(TESTKERNEL, smp, &params, timeout_for(smp)) }.run();
    expect_pass(&o);
    let lines = lines_with(&o, "timer: ");
    for cpu in 0..smp {
        let Some(line) = lines.iter().find(|l| l.split_whitespace().any(|w| w == format!("cpu={cpu}"))) else {
            fail(&o, &format!("no `timer: cpu={cpu} ...` line"));
        };
        let hz: u64 = field(&o, line, "hz");
        let ticks: u64 = field(&o, line, "ticks");
        let elapsed_us: u64 = field(&o, line, "elapsed_us");
        if hz != HZ {
            fail(&o, &format!("{line:?}: expected hz={HZ} (the boot parameter)"));
        }
        if elapsed_us == 0 {
            fail(&o, &format!("{line:?}: elapsed_us must be positive"));
        }
        let rate = ticks as f64 * 1e6 / elapsed_us as f64;
        if (rate - hz as f64).abs() > 0.10 * hz as f64 {
            fail(&o, &format!("{line:?}: measured {rate:.1} Hz, not within 10% of {hz} Hz"));
        }
    }
}

#[test]
fn timer_rate_smp1() {
    timer_rate(1);
}

#[test]
fn timer_rate_smp2() {
    timer_rate(2);
}

#[test]
fn timer_rate_smp4() {
    timer_rate(4);
}

// --- faults and reports ----------------------------------------------------------------------

#[test]
fn guard_page_fault() {
    let o = boot(TESTKERNEL, 2, &["test=guard_page"], timeout_for(2));
    expect_fail_with(&o, "page fault");
    expect_contains(&o, "guard page");
}

#[test]
fn panic_report() {
    let o = boot(TESTKERNEL, 2, &["test=panic"], timeout_for(2));
    expect_fail_with(&o, "panic: ");
    expect_contains(&o, "goroutine");
}

#[test]
fn unknown_test_name() {
    let o = boot(TESTKERNEL, 1, &["test=no_such_test"], timeout_for(1));
    expect_fail_with(&o, "unknown test");
}

// --- bad boot parameters: rejected before any scenario runs ----------------------------------

/// The kernel must refuse `bad` (failure exit naming `boot parameter` and `key`), even though
/// the scenario it would otherwise run passes.
fn bad_boot_param(smp: u32, bad: &str) {
    let key = bad.split_once('=').map_or(bad, |(k, _)| k);
    let params = ["test=smp_online", bad];
    let o = boot(TESTKERNEL, smp, &params, timeout_for(smp));
    if o.status != Status::Fail {
        fail(&o, &format!("boot parameter `{bad}` must make the kernel FAIL (exit 0x11)"));
    }
    expect_contains(&o, "boot parameter");
    expect_contains(&o, key);
}

#[test]
fn bad_boot_params_unknown_key() {
    bad_boot_param(2, "bogus=1");
}

#[test]
fn bad_boot_params_gomaxprocs_zero() {
    bad_boot_param(2, "gomaxprocs=0");
}

#[test]
fn bad_boot_params_gomaxprocs_above_ncpu() {
    bad_boot_param(4, "gomaxprocs=9");
}

#[test]
fn bad_boot_params_schedtrace_not_a_number() {
    bad_boot_param(2, "schedtrace=abc");
}

#[test]
fn bad_boot_params_hz_zero() {
    bad_boot_param(2, "hz=0");
}

// --- out of memory: a clear report, never a hang or silent corruption ------------------------

#[test]
fn heap_exhaustion_is_reported() {
    let o = boot(TESTKERNEL, 2, &["test=oom_heap", "heap=4M"], timeout_for(2));
    expect_fail_with(&o, "fatal error: out of memory: kernel heap cannot allocate");
    let g = reported_goroutine(&o);
    assert!(g != 1, "the report names the allocating goroutine, not main");
    expect_contains(&o, &format!("goroutine {g} [running]:"));
}

#[test]
fn physical_memory_exhaustion_is_reported() {
    let o = Boot { mem_mib: Some(64), ..Boot::new(TESTKERNEL, 2, &["test=oom_stack", "heap=4M"], timeout_for(2)) }.run();
    expect_fail_with(&o, "fatal error: out of memory: no physical frame left while growing a goroutine stack");
    expect_contains(&o, "goroutine ");
}
