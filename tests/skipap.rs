//! A core that does not come up (`skipap=N`: the boot core sends that AP no INIT-SIPI-SIPI in
//! time and takes the same path as for an AP that never answers; it sends them after it gave up,
//! and the late AP must halt in the trampoline, not triple-fault the machine). The cores that did come up must still
//! be addressed by their own APIC ids: every pair exchanges IPIs, and the scheduler wakes and
//! uses every online core. The skip, the timeout and the CPU-to-APIC-id map are reported.

mod common;

use common::*;

const TK: &str = "testkernel";

/// Boot `test` on `smp` cores with MADT entry `skip` left out; checks the report and returns
/// the outcome.
fn boot_skipping(test: &str, smp: u32, skip: u32) -> Outcome {
    let t = format!("test={test}");
    let s = format!("skipap={skip}");
    let o = boot(TK, smp, &[t.as_str(), s.as_str()], timeout_for(smp));
    expect_pass(&o);
    expect_contains(&o, &format!("test {test}: PASS"));
    expect_contains(&o, &format!("smp: core #{skip} (apic id {skip}) not started (skipap={skip})"));
    expect_contains(&o, "and started only after the timeout");
    expect_contains(&o, &format!("smp: core #{skip} (apic id {skip}) did not come up within"));
    expect_contains(&o, &format!("smp: {} of {smp} cores online", smp - 1));
    // The dense CPU numbers skip the dead core's APIC id (QEMU numbers APIC ids 0..smp).
    let ids: Vec<u32> = (0..smp).filter(|&a| a != skip).collect();
    for (cpu, id) in ids.iter().enumerate() {
        expect_contains(&o, &format!("smp: cpu{cpu} is apic id {id}"));
    }
    o
}

/// Every ordered pair of the online cores exchanges IPIs, none lost.
fn ipi_with_a_dead_core(smp: u32, skip: u32) {
    let o = boot_skipping("bringup::ipi_pingpong", smp, skip);
    let line = expect_line(&o, "ipi: ");
    let n = u64::from(smp - 1);
    let pairs: u64 = field(&o, line, "pairs");
    let lost: u64 = field(&o, line, "lost");
    if pairs != n * (n - 1) || lost != 0 {
        fail(&o, &format!("{line:?}: expected pairs={} lost=0 on the {n} online cores", n * (n - 1)));
    }
}

#[test]
fn ipi_pingpong_smp4_skip1() {
    ipi_with_a_dead_core(4, 1);
}

#[test]
fn ipi_pingpong_smp3_skip2() {
    ipi_with_a_dead_core(3, 2);
}

/// The goroutines can only finish if all Ps run at once, on different cores, woken from halt by
/// wakep's IPIs: an IPI sent to the dead core's APIC id would leave one spinning (10 s bound).
#[test]
fn scheduler_uses_every_online_core_smp4_skip1() {
    let o = boot_skipping("sched::parallelism2", 4, 1);
    expect_contains(&o, "with 3 goroutines spinning on 3 Ps: ok");
}

/// A skipped core that does not exist is a boot parameter error naming the key and the range.
#[test]
fn skipap_beyond_the_cores_is_refused() {
    let o = boot(TK, 2, &["test=bringup::smp_online", "skipap=2"], timeout_for(2));
    expect_fail_with(&o, "boot parameter error: skipap=2 is out of range: must be 0..=1");
}
