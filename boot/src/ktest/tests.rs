//! Unit tests of the runner's pure parts: parsing the ELF section, the trial plan, judging a
//! boot, and the report formats (on synthetic results; tests/ktest_runner.rs checks them on
//! real boots).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gmp_core::ktest::{meta_bytes, Expect, Meta, ENTRY_LEN, META_LEN};

use super::exec::{judge, FailKind, TrialResult, Verdict};
use super::list::{list_bytes, TestInfo};
use super::plan::{filter_matches, plan, Trial};
use super::{parse_args, report, Options};
use crate::{Outcome, Status};

fn info(text: &str) -> TestInfo {
    let b = meta_bytes(&format!("ktest v1\n{text}"));
    TestInfo::from_meta(&Meta::parse(&b).unwrap(), "testkernel", Path::new("/k")).unwrap()
}

fn opts(args: &[&str]) -> Options {
    parse_args(args.iter().copied()).unwrap().unwrap()
}

fn names(trials: &[Trial]) -> Vec<String> {
    trials.iter().map(|t| t.name.clone()).collect()
}

#[test]
fn settings_from_metadata() {
    let t = info("module:testkernel::chan\nfn:x\nsmp:1,4\nalso:4 schedrandom=1\ntimeout:30\nparams:hz=100 heap=4M\nexpect:fatal\nexpect_text:deadlock!\noutput:a\noutput:/b/\ntags:slow,x\nmin_cpus:2\ncase:big hz=10\ncase:small\nmem:64\nexclusive:1\n");
    assert_eq!((t.name.as_str(), t.suite.as_str()), ("chan::x", "chan"));
    assert_eq!(t.smp, [1, 4]);
    assert_eq!(t.also, [(4, vec!["schedrandom=1".to_string()])]);
    assert_eq!((t.timeout, t.min_cpus, t.mem, t.exclusive, t.uefi), (Some(30), 2, Some(64), true, false));
    assert_eq!(t.params, ["hz=100", "heap=4M"]);
    assert_eq!((t.expect, t.expect_text.as_str()), (Expect::Fatal, "deadlock!"));
    assert_eq!(t.output, ["a", "/b/"]);
    assert_eq!(t.tags, ["slow", "x"]);
    assert_eq!(t.cases, [("big".to_string(), vec!["hz=10".to_string()]), ("small".to_string(), vec![])]);
    let d = info("module:k\nfn:top\n");
    assert_eq!((d.name.as_str(), d.suite.as_str(), d.smp.as_slice()), ("top", "main", &[1, 2, 4][..]));
}

#[test]
fn section_layout_is_checked() {
    assert_eq!(ENTRY_LEN, META_LEN + 8);
    // A fake ELF is not an ELF.
    assert!(list_bytes(b"nope", Path::new("/k"), "k").is_err());
}

#[test]
fn plan_expands_the_matrix_cases_and_also() {
    let t = Arc::new(info("module:k::s\nfn:t\nsmp:1,2\nalso:4 schedrandom=1\ncase:a\ncase:b hz=10\nmin_cpus:2\n"));
    let p = plan(&[t.clone()], &opts(&[]), 7);
    assert_eq!(
        names(&p),
        ["s::t[a,smp=1]", "s::t[a,smp=2]", "s::t[a,smp=4,schedrandom=1]", "s::t[b,smp=1]", "s::t[b,smp=2]", "s::t[b,smp=4,schedrandom=1]"]
    );
    assert_eq!(p[0].skip.as_deref(), Some("needs 2 or more cores"));
    assert!(p[1].skip.is_none());
    assert_eq!(p[5].params, ["hz=10", "schedrandom=1"]);
    // --smp replaces the matrix and drops the extra shapes, as go test -cpu.
    assert_eq!(names(&plan(&[t.clone()], &opts(&["--smp", "3", "b"]), 7)), ["s::t[b,smp=3]"]);
    // ... except for a test that holds only at its own counts: planned, but skipped with the
    // reason, at the counts it does not list; run at those it does.
    let only = Arc::new(info("module:k::s\nfn:only\nsmp:2\nsmp_only:1\n"));
    assert!(only.smp_only && !t.smp_only);
    let p = plan(&[only.clone()], &opts(&["--smp", "1,2,3"]), 7);
    assert_eq!(names(&p), ["s::only[smp=1]", "s::only[smp=2]", "s::only[smp=3]"]);
    assert_eq!(p[0].skip.as_deref(), Some("holds only at smp=2 (smp_only)"));
    assert!(p[1].skip.is_none());
    assert_eq!(p[2].skip.as_deref(), Some("holds only at smp=2 (smp_only)"));
    assert!(plan(&[only.clone()], &opts(&[]), 7).iter().all(|x| x.skip.is_none()));
    // Its `also` trials' counts are its own too.
    let also = Arc::new(info("module:k::s\nfn:also\nsmp:1\nalso:4 gomaxprocs=2\nsmp_only:1\n"));
    assert!(plan(&[also.clone()], &opts(&[]), 7).iter().all(|x| x.skip.is_none()));
    let p = plan(&[also.clone()], &opts(&["--smp", "2,4"]), 7);
    assert_eq!(p[0].skip.as_deref(), Some("holds only at smp=1,4 (smp_only)"));
    assert!(p[1].skip.is_none());
    // Filters: substring, glob, exact; --skip.
    assert_eq!(plan(&[t.clone()], &opts(&["s::t[a*"]), 7).len(), 3);
    assert_eq!(plan(&[t.clone()], &opts(&["--exact", "s::t[a,smp=2]"]), 7).len(), 1);
    assert_eq!(plan(&[t.clone()], &opts(&["--exact", "s::t"]), 7).len(), 6);
    assert_eq!(plan(&[t.clone()], &opts(&["--skip", "*schedrandom*"]), 7).len(), 4);
    // --count, and seeds: fresh per trial, or the one given.
    let p = plan(&[t.clone()], &opts(&["--count", "2"]), 7);
    assert_eq!(p.len(), 12);
    assert_ne!(p[0].seed, p[1].seed);
    assert!(plan(&[t.clone()], &opts(&["--seed", "5"]), 7).iter().all(|x| x.seed == 5));
}

#[test]
fn plan_skips_tags_and_params() {
    let hog = Arc::new(info("module:k::preempt\nfn:hog\nsmp:1\nskip_params:schedrandom=1\n"));
    let manual = Arc::new(info("module:k::m\nfn:boom\nsmp:1\ntags:manual\n"));
    let slow = Arc::new(info("module:k::m\nfn:slow\nsmp:1\ntags:slow\n"));
    let all = [hog.clone(), manual.clone(), slow.clone()];
    assert_eq!(names(&plan(&all, &opts(&[]), 1)), ["preempt::hog[smp=1]", "m::slow[smp=1]"]);
    assert_eq!(names(&plan(&all, &opts(&["boom"]), 1)), ["m::boom[smp=1]"]);
    assert_eq!(names(&plan(&all, &opts(&["--tags", "slow"]), 1)), ["m::slow[smp=1]"]);
    assert_eq!(names(&plan(&all, &opts(&["--skip-tags", "slow"]), 1)), ["preempt::hog[smp=1]"]);
    let p = plan(&all, &opts(&["schedrandom=1", "hog"]), 1);
    assert_eq!(p[0].skip.as_deref(), Some("not run with schedrandom=1"));
}

#[test]
fn shuffle_is_reproducible() {
    let ts: Vec<Arc<TestInfo>> = (0..20).map(|i| Arc::new(info(&format!("module:k::s\nfn:t{i}\nsmp:1\n")))).collect();
    let a = names(&plan(&ts, &opts(&["--shuffle=42"]), 1));
    let b = names(&plan(&ts, &opts(&["--shuffle=42"]), 1));
    let c = names(&plan(&ts, &opts(&[]), 1));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut sorted = a.clone();
    sorted.sort();
    let mut c2 = c.clone();
    c2.sort();
    assert_eq!(sorted, c2, "a permutation");
}

#[test]
fn filters() {
    assert!(filter_matches("spawn", "sched::spawn_storm[smp=4]", false));
    assert!(filter_matches("sched::*[smp=4]", "sched::spawn_storm[smp=4]", false));
    assert!(!filter_matches("sched::*[smp=2]", "sched::spawn_storm[smp=4]", false));
    assert!(!filter_matches("spawn", "sched::spawn_storm", true));
}

#[test]
fn bad_arguments() {
    for (args, want) in [
        (&["--isolate", "x"][..], "--isolate"),
        (&["--smp", "0"][..], "--smp"),
        (&["--format", "xml"][..], "--format"),
        (&["--gdb"][..], "--replay"),
        (&["test=x"][..], "set by the runner"),
        (&["--frob"][..], "unknown option"),
        (&["--timeout-multiplier", "-1"][..], "factor"),
    ] {
        let e = parse_args(args.iter().copied()).unwrap_err().0;
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let o = opts(&["--isolate", "suite=chan,sched", "--jobs", "3", "--retries=2", "hz=100", "chan::*"]);
    assert_eq!(o.isolate_suites, Some(vec!["chan".to_string(), "sched".to_string()]));
    assert_eq!((o.jobs, o.retries), (3, 2));
    assert_eq!(o.params, ["hz=100"]);
    assert_eq!(o.filters, ["chan::*"]);
}

fn trial(text: &str, smp: u32) -> Trial {
    let t = Arc::new(info(text));
    let mut p = plan(&[t], &opts(&["--smp", &smp.to_string()]), 1);
    p.remove(0)
}

fn outcome(status: Status, serial: &str) -> Outcome {
    Outcome { status, serial: serial.into(), qemu_stderr: String::new(), elapsed: Duration::from_secs(1), command: "qemu".into() }
}

const PASSED: &str = "[cpu0] smp: 2 of 2 cores online in 5 us\n[cpu0] # ktest start s::t\n[cpu1] # hello\n[cpu0] ok 1 s::t\n";

#[test]
fn judging_a_boot() {
    let t = trial("module:k::s\nfn:t\n", 2);
    assert_eq!(judge(&t, &outcome(Status::Pass, PASSED)).0, Verdict::Pass);
    assert_eq!(judge(&t, &outcome(Status::Timeout, PASSED)).0, Verdict::Fail(FailKind::Timeout));
    assert_eq!(judge(&t, &outcome(Status::NoExit(0), "")).0, Verdict::Fail(FailKind::TripleFault));
    assert_eq!(judge(&t, &outcome(Status::NoExit(1), "")).0, Verdict::Fail(FailKind::BootError));
    let before = "boot parameter error: x\n";
    assert_eq!(judge(&t, &outcome(Status::Fail, before)).0, Verdict::Fail(FailKind::BootError));
    let panicked = "# ktest start s::t\npanic: boom\n\ngoroutine 5 [running]:\n";
    let (v, m, _) = judge(&t, &outcome(Status::Fail, panicked));
    assert_eq!((v, m.as_str()), (Verdict::Fail(FailKind::Panicked), "panic: boom"));
    let fatal = "# ktest start s::t\nfatal error: all goroutines are asleep - deadlock!\n";
    assert_eq!(judge(&t, &outcome(Status::Fail, fatal)).0, Verdict::Fail(FailKind::Fatal));
    let skipped = "# ktest start s::t\n# skip: why\nok 1 s::t # SKIP\n";
    assert_eq!(judge(&t, &outcome(Status::Pass, skipped)).0, Verdict::Skip);
    assert_eq!(judge(&t, &outcome(Status::Pass, "nothing\n")).0, Verdict::Fail(FailKind::Failed));
}

#[test]
fn judging_expected_failures_and_output() {
    let p = trial("module:k::s\nfn:t\nexpect:panic\nexpect_text:boom\noutput:/^goroutine [02-9] \\[running\\]:/\n", 2);
    let panicked = "# ktest start s::t\npanic: boom\n\n[cpu1] goroutine 5 [running]:\n";
    let (v, _, xfail) = judge(&p, &outcome(Status::Fail, panicked));
    assert!(v == Verdict::Pass && xfail);
    let main = "# ktest start s::t\npanic: boom\n\ngoroutine 1 [running]:\n";
    assert_eq!(judge(&p, &outcome(Status::Fail, main)).0, Verdict::Fail(FailKind::Failed), "output check");
    assert_eq!(judge(&p, &outcome(Status::Fail, "# ktest start s::t\npanic: other\n")).0, Verdict::Fail(FailKind::Panicked));
    assert_eq!(judge(&p, &outcome(Status::Pass, PASSED)).0, Verdict::Fail(FailKind::Failed), "did not panic");
    let f = trial("module:k::s\nfn:t\nexpect:fatal\nexpect_text:boot parameter\noutput:{case}\ncase:hz hz=0\n", 2);
    assert_eq!(f.name, "s::t[hz,smp=2]");
    let (v, _, _) = judge(&f, &outcome(Status::Fail, "boot parameter error: hz=0 is out of range\n"));
    assert_eq!(v, Verdict::Pass);
    let s = trial("module:k::s\nfn:t\noutput:/^smp: {smp} of {smp} cores/\n", 2);
    assert_eq!(judge(&s, &outcome(Status::Pass, PASSED)).0, Verdict::Pass);
    let s4 = trial("module:k::s\nfn:t\noutput:/^smp: {smp} of {smp} cores/\n", 4);
    assert_eq!(judge(&s4, &outcome(Status::Pass, PASSED)).0, Verdict::Fail(FailKind::Failed));
}

#[test]
fn a_qemu_killed_from_outside_is_not_a_triple_fault() {
    let t = trial("module:k::s\nfn:t\n", 2);
    let mut o = outcome(Status::NoExit(0), "# ktest start s::t\n");
    assert_eq!(judge(&t, &o).0, Verdict::Fail(FailKind::TripleFault));
    o.qemu_stderr = "qemu-system-x86_64: terminating on signal 2\n".into();
    let (v, msg, _) = judge(&t, &o);
    assert_eq!(v, Verdict::Fail(FailKind::BootError));
    assert!(msg.contains("stopped from outside") && msg.contains("terminating on signal 2"), "{msg}");
}

#[test]
fn output_captures_carry_into_later_patterns() {
    // The overflow report must name the goroutine that said it would overflow.
    let t = trial(
        "module:k::s\nfn:t\nexpect:fatal\nexpect_text:stack overflow\noutput:/^overflowing in goroutine (?P<g>[0-9]+)$/\noutput:/^fatal error: stack overflow: goroutine {g} sp=/\noutput:goroutine {g} [running]:\n",
        2,
    );
    let same = "# ktest start s::t\noverflowing in goroutine 17\nfatal error: stack overflow: goroutine 17 sp=0x10\n\ngoroutine 17 [running]:\n";
    assert_eq!(judge(&t, &outcome(Status::Fail, same)).0, Verdict::Pass);
    let other = "# ktest start s::t\noverflowing in goroutine 17\nfatal error: stack overflow: goroutine 18 sp=0x10\n\ngoroutine 18 [running]:\n";
    let (v, msg, _) = judge(&t, &outcome(Status::Fail, other));
    assert_eq!(v, Verdict::Fail(FailKind::Failed), "{msg}");
    assert!(msg.contains("goroutine 17 sp="), "{msg}");
}

fn result(t: Trial, verdict: Verdict) -> TrialResult {
    TrialResult {
        trial: t,
        verdict,
        message: "why".into(),
        attempts: 1,
        elapsed: Duration::from_millis(1500),
        logs: vec!["a log line".into()],
        tail: "last line".into(),
        qemu: String::new(),
        xfail: false,
        replay: None,
    }
}

#[test]
fn reports_of_synthetic_results() {
    let rs = vec![
        result(trial("module:k::a\nfn:p\n", 1), Verdict::Pass),
        result(trial("module:k::a\nfn:f\n", 1), Verdict::Fail(FailKind::Timeout)),
        result(trial("module:k::b\nfn:s\n", 1), Verdict::Skip),
        result(trial("module:k::b\nfn:fl\n", 1), Verdict::Flaky),
    ];
    let c = report::Counts::of(&rs);
    assert_eq!(c.line(), "1 passed, 1 failed, 1 skipped, 1 flaky");
    assert_eq!(report::human_line(&rs[0]), "test a::p[smp=1] ... ok (1.5 s)");
    assert_eq!(report::human_line(&rs[1]), "test a::f[smp=1] ... TIMEOUT (1.5 s)");
    assert!(report::human_line(&rs[3]).starts_with("test b::fl[smp=1] ... FLAKY"));

    let k = report::ktap(&rs);
    let expect = "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: a\n    1..2\n    # a log line\n    ok 1 a::p[smp=1]\n";
    assert!(k.starts_with(expect), "{k}");
    assert!(k.contains("    not ok 2 a::f[smp=1] # TIMEOUT why\nnot ok 1 a\n"), "{k}");
    assert!(k.contains("    ok 1 b::s[smp=1] # SKIP why\n"), "{k}");
    assert!(k.ends_with("ok 2 b\n"), "{k}");

    let xml = report::junit(&rs, Duration::from_secs(3));
    assert!(xml.contains("<flakyFailure"), "{xml}");
    let back = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(back.test_suites.len(), 2);
    assert_eq!(back.test_suites.iter().map(|s| s.test_cases.len()).sum::<usize>(), 4);

    let ev: Vec<serde_json::Value> = report::json_trial(&rs[3]).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ev[0]["Action"], "run");
    assert_eq!(ev.last().unwrap()["Action"], "pass");
    assert_eq!(ev.last().unwrap()["Flaky"], true);
    let ev: Vec<serde_json::Value> = report::json_trial(&rs[1]).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ev.last().unwrap()["Status"], "TIMEOUT");
    assert!(report::now_rfc3339().ends_with('Z'));
}

#[test]
fn rerun_command_names_the_trial_and_seed() {
    let t = trial("module:k::s\nfn:t\n", 2);
    let cmd = report::rerun_command(&t, &opts(&[]));
    assert_eq!(cmd, format!("cargo run -- test --exact 's::t[smp=2]' --seed {}", t.seed));
    let cmd = report::rerun_command(&t, &opts(&["--bin", "testkernel", "--timeout-multiplier", "2", "schedrandom=1"]));
    assert!(cmd.ends_with(" --bin testkernel --timeout-multiplier 2 schedrandom=1"), "{cmd}");
}

#[test]
fn qemu_cpu_and_accel_options() {
    let o = opts(&["--qemu", "/q10/qemu-system-x86_64", "--cpu", "max", "--accel=auto", "bringup::*"]);
    assert_eq!(o.qemu.as_deref(), Some(Path::new("/q10/qemu-system-x86_64")));
    assert_eq!((o.cpu.as_deref(), o.accel), (Some("max"), crate::Accel::Auto));
    assert_eq!(o.filters, ["bringup::*"]);
    let d = opts(&[]);
    assert_eq!((d.qemu.as_deref(), d.cpu.as_deref(), d.accel), (None, None, crate::Accel::Tcg));
    // --cpu used to be a synonym of --smp (go test -cpu); a core count there is refused, naming --smp.
    let e = parse_args(["--cpu", "1,2"]).unwrap_err().0;
    assert!(e.contains("--smp 1,2"), "{e}");
    assert!(parse_args(["--accel", "xen"]).unwrap_err().0.contains("tcg, kvm or auto"));
    assert!(parse_args(["--record", "--accel", "kvm"]).unwrap_err().0.contains("need TCG"));
    // The boot of a trial gets them, and the rerun command names them.
    let t = Arc::new(info("module:k::s\nfn:t\nsmp:2\n"));
    let o = opts(&["--qemu", "/q10/q", "--cpu", "max", "--accel", "kvm"]);
    let trials = plan(&[t], &o, 1);
    let cfg = crate::ktest::exec::boot_config(&trials[0], "s::t", std::time::Duration::from_secs(5), &o);
    assert_eq!((cfg.qemu.as_deref(), cfg.cpu.as_deref(), cfg.accel), (Some(Path::new("/q10/q")), Some("max"), crate::Accel::Kvm));
    let cmd = report::rerun_command(&trials[0], &o);
    assert!(cmd.ends_with("--qemu /q10/q --cpu max --accel kvm"), "{cmd}");
}
