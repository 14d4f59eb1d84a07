//! Lab 8 (bonus): fewer IPIs and halts per wake-up than the reference kernel (`labs/lab8/`).
use super::{median, Kind, Lab, RatioRun, Test};
use gmp_core::rand::mix64;

/// The QEMU test's expected line: the same formulas as `rounds` and `step` in
/// `kernel/src/bin/testkernel/lab8.rs` (kept equal by hand; the grader is the reference).
fn lab8_expect(seed: u64) -> String {
    let rounds = 2000 + mix64(seed ^ 0x6c61_6238) % 500;
    let mut x = mix64(seed);
    let mut sum = 0u64;
    for r in 0..rounds {
        x = mix64(x ^ r.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        sum = sum.wrapping_add(x);
    }
    format!("lab8: nonce {seed} rounds {rounds} checksum {sum:016x} ok")
}

/// `(ipis + halts) / wakeups` of one boot: what each wake-up of a parked core cost.
fn cost(c: &super::Counters) -> Option<f64> {
    let (w, ipis, halts) = (c.get("wakeups")?, c.get("ipis")?, c.get("halts")?);
    (w > 0).then(|| (ipis + halts) as f64 / w as f64)
}

/// Full points if the student's cost per wake-up is at most half the reference's, none if it
/// is not lower, linear in between; from the median over the runs of the per-run quotient
/// (a failed student boot is an infinite quotient; a run whose reference boot failed is left
/// out). TCG timing varies 2× from run to run, hence the median and the wide band.
fn score_ratio(runs: &[RatioRun]) -> (f64, String) {
    let mut q = Vec::new();
    for r in runs {
        let Some(base) = r.reference.as_ref().and_then(cost) else { continue };
        let stu = r.student.as_ref().and_then(cost).unwrap_or(f64::INFINITY);
        q.push(if base > 0.0 { stu / base } else if stu == 0.0 { 1.0 } else { f64::INFINITY });
    }
    let Some(m) = median(&mut q) else { return (0.0, "no run's reference boot printed its counters".into()) };
    let frac = ((1.0 - m) / 0.5).clamp(0.0, 1.0);
    (frac, format!("median cost per wake-up {m:.2}× the reference's (full marks at ≤ 0.50×)"))
}

/// The largest window (`gmp_core::haltpoll::MAX_NS`), in µs.
const MAX_WINDOW_US: u64 = (gmp_core::haltpoll::MAX_NS / 1000) as u64;

/// Polling is bounded: failed polls waste at most 2× the largest window per wake-up, and
/// (nearly) no single poll lasts over 2× the largest window (a few may, when the host
/// deschedules the vCPU mid-poll). Full points if at least half the runs pass.
fn score_poll_bound(runs: &[RatioRun]) -> (f64, String) {
    let mut pass = 0;
    let mut notes = Vec::new();
    for r in runs {
        let Some(c) = &r.student else {
            notes.push("boot failed".to_string());
            continue;
        };
        let (Some(w), Some(wasted), Some(long), Some(parks)) = (c.get("wakeups"), c.get("wasted_poll_us"), c.get("long_polls"), c.get("parks")) else {
            notes.push("counters missing".into());
            continue;
        };
        let per = wasted as f64 / w.max(1) as f64;
        let ok = per <= 2.0 * MAX_WINDOW_US as f64 && long <= 4 + parks / 200;
        pass += ok as usize;
        notes.push(format!("{per:.0} µs wasted per wake-up, {long} long polls"));
    }
    let frac = if !runs.is_empty() && 2 * pass >= runs.len() { 1.0 } else { 0.0 };
    (frac, notes.join("; "))
}

/// Both boots of each run: the reference behaviour, and the student's poll.
const REFERENCE: &str = "haltpoll=0";
const STUDENT: &str = "haltpoll=1";
const COUNTERS: &str = "lab8: counters ";

const LAB8_TESTS: &[Test] = &[
    Test { title: "window grows after a short halt", kind: Kind::Host("haltpoll::tests::grows_after_a_short_halt"), points: 8 },
    Test { title: "window shrinks after a long sleep", kind: Kind::Host("haltpoll::tests::shrinks_after_a_long_sleep"), points: 8 },
    Test { title: "window kept when the poll caught the wake-up", kind: Kind::Host("haltpoll::tests::kept_when_the_poll_caught_the_wake_up"), points: 5 },
    Test { title: "window starts at 50 us and stays clamped", kind: Kind::Host("haltpoll::tests::starts_at_grow_start_and_clamps"), points: 4 },
    Test { title: "proptest: window in range, grows on short, shrinks on long", kind: Kind::Host("haltpoll::tests::window_stays_in_range_grows_on_short_shrinks_on_long"), points: 10 },
    Test { title: "poll returns at once when the key is set", kind: Kind::Host("haltpoll::tests::poll_returns_at_once_when_the_key_is_set"), points: 4 },
    Test { title: "poll gives up exactly when the window passed", kind: Kind::Host("haltpoll::tests::poll_gives_up_exactly_when_the_window_passed"), points: 6 },
    Test { title: "poll sees a key stored during the window", kind: Kind::Host("haltpoll::tests::poll_sees_a_key_stored_during_the_window"), points: 5 },
    Test { title: "loom: poll, then halt: no lost wake-up, no IPI for a polled one", kind: Kind::Loom("haltpoll::loom_tests::loom_poll_then_halt_loses_no_wake_up"), points: 10 },
    Test {
        title: "qemu: IPIs + halts per wake-up vs the reference",
        kind: Kind::Ratio { test: "lab8::haltpoll_ratio", smp: 2, reference: REFERENCE, params: STUDENT, expect: lab8_expect, counters: COUNTERS, score: score_ratio },
        points: 15,
    },
    Test {
        title: "qemu: IPIs + halts per wake-up vs the reference",
        kind: Kind::Ratio { test: "lab8::haltpoll_ratio", smp: 4, reference: REFERENCE, params: STUDENT, expect: lab8_expect, counters: COUNTERS, score: score_ratio },
        points: 15,
    },
    Test {
        title: "qemu: poll time bounded by the window",
        kind: Kind::Ratio { test: "lab8::haltpoll_ratio", smp: 2, reference: REFERENCE, params: STUDENT, expect: lab8_expect, counters: COUNTERS, score: score_poll_bound },
        points: 5,
    },
    Test {
        title: "qemu: poll time bounded by the window",
        kind: Kind::Ratio { test: "lab8::haltpoll_ratio", smp: 4, reference: REFERENCE, params: STUDENT, expect: lab8_expect, counters: COUNTERS, score: score_poll_bound },
        points: 5,
    },
];

pub const LAB: Lab = Lab {
    number: 8,
    title: "Bonus: halt polling, fewer IPIs and halts per wake-up",
    tests: LAB8_TESTS,
    qemu_runs: 3,
    // The loom model runs lab 4's note_sleep_check and notewakeup after the poll.
    uses: &[4],
    protected: &[
        "kernel/core/src/haltpoll/tests.rs",
        "kernel/core/src/haltpoll/loom_tests.rs",
        "kernel/src/bin/testkernel/lab8.rs",
        "boot/src/lab/spec/lab8.rs",
    ],
};

#[cfg(test)]
mod tests {
    use super::super::{Counters, RatioRun};

    fn c(line: &str) -> Option<Counters> {
        Counters::find(line, "lab8: counters ")
    }

    #[test]
    fn lab8_expect_matches_a_boot() {
        // From a boot of the full tree: `--smp 2 test=lab8::haltpoll_ratio seed=5` (either haltpoll).
        assert_eq!(super::lab8_expect(5), "lab8: nonce 5 rounds 2221 checksum c40d505b784cac58 ok");
    }

    #[test]
    fn ratio_scores() {
        let base = "lab8: counters haltpoll=0 wakeups 100 parks 100 ipis 100 halts 100 poll_hits 0 wasted_poll_us 0 poll_us 0 long_polls 0";
        let good = "lab8: counters haltpoll=1 wakeups 100 parks 100 ipis 20 halts 20 poll_hits 80 wasted_poll_us 500 poll_us 900 long_polls 0";
        let half = "lab8: counters haltpoll=1 wakeups 100 parks 100 ipis 75 halts 75 poll_hits 25 wasted_poll_us 500 poll_us 900 long_polls 0";
        let run = |s: &str| RatioRun { reference: c(base), student: c(s) };
        assert_eq!(super::score_ratio(&[run(good), run(good), run(base)]).0, 1.0);
        assert!((super::score_ratio(&[run(half)]).0 - 0.5).abs() < 1e-9);
        assert_eq!(super::score_ratio(&[run(base)]).0, 0.0);
        // A failed student boot counts as infinitely worse; the median rides out one.
        let failed = RatioRun { reference: c(base), student: None };
        assert_eq!(super::score_ratio(&[run(good), failed.clone(), run(good)]).0, 1.0);
        assert_eq!(super::score_ratio(&[failed.clone(), failed, run(good)]).0, 0.0);
        assert_eq!(super::score_ratio(&[RatioRun::default()]).0, 0.0);
        // The poll bound.
        assert_eq!(super::score_poll_bound(&[run(good)]).0, 1.0);
        let wasteful = "lab8: counters haltpoll=1 wakeups 100 parks 100 ipis 0 halts 0 poll_hits 100 wasted_poll_us 90000 poll_us 90000 long_polls 0";
        assert_eq!(super::score_poll_bound(&[run(wasteful)]).0, 0.0);
        let long = "lab8: counters haltpoll=1 wakeups 100 parks 100 ipis 0 halts 0 poll_hits 100 wasted_poll_us 0 poll_us 90000 long_polls 30";
        assert_eq!(super::score_poll_bound(&[run(long)]).0, 0.0);
    }
}
