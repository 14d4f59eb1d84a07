//! The reports: libtest-style lines for people, KTAP v1, a JSON event stream in the spirit
//! of Go's test2json, and JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
use serde_json::json;

use super::exec::{status_word, FailKind, TrialResult, Verdict};
use super::plan::Trial;
use super::Options;

/// The counts of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub flaky: usize,
}

impl Counts {
    pub fn of(results: &[TrialResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.verdict {
                Verdict::Pass => c.passed += 1,
                Verdict::Flaky => c.flaky += 1,
                Verdict::Skip => c.skipped += 1,
                Verdict::Fail(_) => c.failed += 1,
            }
        }
        c
    }

    /// `N passed, N failed` (`, N skipped`, `, N flaky` when there are any). A flaky trial is
    /// not counted as passed.
    pub fn line(&self) -> String {
        let mut s = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            let _ = write!(s, ", {} skipped", self.skipped);
        }
        if self.flaky > 0 {
            let _ = write!(s, ", {} flaky", self.flaky);
        }
        s
    }
}

/// The command that reruns exactly this trial alone, with its seed.
pub fn rerun_command(t: &Trial, opt: &Options) -> String {
    let mut s = format!("cargo run -- test --exact '{}' --seed {}", t.name, t.seed);
    let default_bins = opt.bins.is_empty() && opt.examples.is_empty() && opt.kernels.is_empty();
    if !default_bins || t.test.bin != "testkernel" {
        if opt.examples.contains(&t.test.bin) {
            let _ = write!(s, " --example {}", t.test.bin);
        } else if opt.kernels.iter().any(|k| k == &t.test.elf) {
            let _ = write!(s, " --kernel {}", t.test.elf.display());
        } else {
            let _ = write!(s, " --bin {}", t.test.bin);
        }
    }
    if opt.release {
        s += " --release";
    }
    if let Some(q) = &opt.qemu {
        let _ = write!(s, " --qemu {}", q.display());
    }
    if let Some(c) = &opt.cpu {
        let _ = write!(s, " --cpu {c}");
    }
    if opt.accel != crate::Accel::Tcg {
        let _ = write!(s, " --accel {}", opt.accel.name());
    }
    if (opt.timeout_multiplier - 1.0).abs() > f64::EPSILON {
        let _ = write!(s, " --timeout-multiplier {}", opt.timeout_multiplier);
    }
    for p in &opt.params {
        let _ = write!(s, " {p}");
    }
    s
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// One libtest-style line: `test NAME ... ok (3.1 s)`.
pub fn human_line(r: &TrialResult) -> String {
    let name = if r.trial.iteration > 0 { format!("{} #{}", r.trial.name, r.trial.iteration + 1) } else { r.trial.name.clone() };
    match r.verdict {
        Verdict::Skip => format!("test {name} ... skipped ({})", r.message),
        Verdict::Flaky => format!("test {name} ... FLAKY ({}, {})", secs(r.elapsed), r.message),
        v => format!("test {name} ... {} ({})", status_word(v), secs(r.elapsed)),
    }
}

/// The failure details: status, logs, the last serial lines, and how to rerun.
pub fn failure_details(r: &TrialResult, opt: &Options) -> String {
    let mut s = format!("---- {} ----\n", r.trial.name);
    let _ = writeln!(s, "status:  {}: {}", status_word(r.verdict), r.message);
    let _ = writeln!(s, "test:    {} ({}:{}, kernel {})", r.trial.test.name, r.trial.test.file, r.trial.test.line, r.trial.test.bin);
    let _ = writeln!(s, "seed:    {} (boot parameters: {})", r.trial.seed, r.trial.params.join(" "));
    if r.attempts > 1 {
        let _ = writeln!(s, "boots:   {}", r.attempts);
    }
    for l in &r.logs {
        let _ = writeln!(s, "log:     {l}");
    }
    if !r.tail.is_empty() {
        let _ = writeln!(s, "--- last serial lines ---\n{}\n--- end ---", r.tail);
    }
    if !r.qemu.is_empty() {
        let _ = writeln!(s, "qemu:    {}", r.qemu);
    }
    let _ = writeln!(s, "rerun:   {}", rerun_command(&r.trial, opt));
    if let Some(f) = &r.replay {
        let _ = writeln!(s, "replay:  {}", super::replay_command(&r.trial, f, opt));
    } else if r.trial.smp > 1 {
        let _ = writeln!(
            s,
            "note:    a multi-core trial cannot be replayed exactly; the seed reproduces the scheduler's random choices, not the interleaving"
        );
    }
    s
}

fn ktap_directive(r: &TrialResult) -> String {
    match r.verdict {
        Verdict::Pass if r.xfail => format!(" # XFAIL {}", r.message),
        Verdict::Pass => String::new(),
        Verdict::Flaky => format!(" # FLAKY {}", r.message),
        Verdict::Skip => format!(" # SKIP {}", r.message),
        Verdict::Fail(FailKind::Timeout) => format!(" # TIMEOUT {}", r.message),
        Verdict::Fail(FailKind::BootError) | Verdict::Fail(FailKind::TripleFault) => {
            format!(" # ERROR {}: {}", status_word(r.verdict), r.message)
        }
        Verdict::Fail(_) => String::new(),
    }
}

/// KTAP version 1: one subtest per suite, one result line per trial.
pub fn ktap(results: &[TrialResult]) -> String {
    let mut suites: Vec<(String, Vec<&TrialResult>)> = Vec::new();
    for r in results {
        let suite = &r.trial.test.suite;
        match suites.iter_mut().find(|(s, _)| s == suite) {
            Some((_, v)) => v.push(r),
            None => suites.push((suite.clone(), vec![r])),
        }
    }
    let mut s = String::from("KTAP version 1\n");
    let _ = writeln!(s, "1..{}", suites.len());
    for (i, (suite, rs)) in suites.iter().enumerate() {
        let _ = writeln!(s, "    KTAP version 1\n    # Subtest: {suite}\n    1..{}", rs.len());
        let mut suite_ok = true;
        for (j, r) in rs.iter().enumerate() {
            for l in &r.logs {
                let _ = writeln!(s, "    # {l}");
            }
            let ok = !matches!(r.verdict, Verdict::Fail(_));
            if !ok {
                suite_ok = false;
                let _ = writeln!(s, "    # {}: {}", status_word(r.verdict), r.message);
                for l in r.tail.lines() {
                    let _ = writeln!(s, "    # | {l}");
                }
            }
            let _ = writeln!(s, "    {} {} {}{}", if ok { "ok" } else { "not ok" }, j + 1, r.trial.name, ktap_directive(r).replace('\n', " "));
        }
        let _ = writeln!(s, "{} {} {suite}", if suite_ok { "ok" } else { "not ok" }, i + 1);
    }
    s
}

/// One test2json-style event.
pub fn json_event(action: &str, test: Option<&str>, elapsed: Option<Duration>, output: Option<&str>) -> String {
    let mut v = json!({ "Time": now_rfc3339(), "Action": action, "Package": "gmpos/ktest" });
    if let Some(t) = test {
        v["Test"] = json!(t);
    }
    if let Some(e) = elapsed {
        v["Elapsed"] = json!((e.as_secs_f64() * 1000.0).round() / 1000.0);
    }
    if let Some(o) = output {
        v["Output"] = json!(o);
    }
    v.to_string()
}

/// The events of one finished trial: run, output lines, then pass / fail / skip.
pub fn json_trial(r: &TrialResult) -> Vec<String> {
    let name = r.trial.name.as_str();
    let mut ev = vec![json_event("run", Some(name), None, None)];
    for l in &r.logs {
        ev.push(json_event("output", Some(name), None, Some(&format!("    {l}\n"))));
    }
    let action = match r.verdict {
        Verdict::Pass | Verdict::Flaky => "pass",
        Verdict::Skip => "skip",
        Verdict::Fail(_) => "fail",
    };
    if !r.message.is_empty() {
        ev.push(json_event("output", Some(name), None, Some(&format!("    {}: {}\n", status_word(r.verdict), r.message))));
    }
    if matches!(r.verdict, Verdict::Fail(_)) {
        for l in r.tail.lines() {
            ev.push(json_event("output", Some(name), None, Some(&format!("    | {l}\n"))));
        }
    }
    let mut last: serde_json::Value =
        serde_json::from_str(&json_event(action, Some(name), Some(r.elapsed), None)).expect("our own JSON");
    if r.verdict == Verdict::Flaky {
        last["Flaky"] = json!(true);
    }
    if let Verdict::Fail(k) = r.verdict {
        last["Status"] = json!(k.word());
    }
    ev.push(last.to_string());
    ev
}

/// JUnit XML: one `<testsuite>` per suite; a flaky pass has `<flakyFailure>` elements.
pub fn junit(results: &[TrialResult], total: Duration) -> String {
    let mut report = Report::new("gmpos-ktest");
    report.set_time(total);
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in results {
        let suite_name = r.trial.test.suite.clone();
        let idx = match suites.iter().position(|s| s.name.as_str() == suite_name) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(suite_name));
                suites.len() - 1
            }
        };
        let status = match r.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Flaky => {
                let mut st = TestCaseStatus::success();
                let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                rerun.set_message(r.message.clone());
                rerun.set_system_out(r.tail.clone());
                st.add_rerun(rerun);
                st
            }
            Verdict::Skip => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(r.message.clone());
                st
            }
            Verdict::Fail(k) => {
                let kind = match k {
                    FailKind::BootError | FailKind::TripleFault => NonSuccessKind::Error,
                    _ => NonSuccessKind::Failure,
                };
                let mut st = TestCaseStatus::non_success(kind);
                st.set_message(r.message.clone());
                st.set_type(k.word());
                st.set_description(r.tail.clone());
                st
            }
        };
        let mut tc = TestCase::new(r.trial.name.clone(), status);
        tc.set_classname(format!("{}.{}", r.trial.test.bin, r.trial.test.suite));
        tc.set_time(r.elapsed);
        if !r.logs.is_empty() {
            tc.set_system_out(r.logs.join("\n"));
        }
        suites[idx].add_test_case(tc);
    }
    report.add_test_suites(suites);
    report.to_string().unwrap_or_else(|e| format!("<!-- cannot write JUnit XML: {e} -->"))
}

/// The current UTC time as RFC 3339 (test2json's `Time`), without a date crate.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, nanos) = (d.as_secs() as i64, d.subsec_nanos());
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        nanos / 1000
    )
}
