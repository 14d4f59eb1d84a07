//! Tests of the test runner itself (`cargo run -- test`), on the example kernel
//! kernel/examples/ktest_demo.rs, whose outcomes are known: each report format is parsed and
//! its counts compared with the run's; Ctrl-C leaves no QEMU behind; an unknown test name is a
//! clear failure.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boot::ktest::{self, exec::Verdict, report, Options};

/// One QEMU-booting test at a time: the runner inside already uses the host's cores.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every trial of the example, the `manual` failure included ("*" selects it).
fn example_options() -> Options {
    let mut o = ktest::parse_args(["*", "--example", "ktest_demo", "--retries", "1"]).unwrap().unwrap();
    if let Some(j) = std::env::var("GMPOS_QEMU_JOBS").ok().and_then(|j| j.parse().ok()) {
        o.jobs = j;
    }
    o
}

#[test]
fn report_formats_agree_with_the_run() {
    let _one = one_at_a_time();
    let junit = std::env::temp_dir().join(format!("ktest-runner-{}.xml", std::process::id()));
    let mut opt = example_options();
    opt.format = ktest::Format::Json;
    opt.junit = Some(junit.clone());
    let (mut json, mut human) = (Vec::new(), Vec::new());
    let run = ktest::run(opt, &mut json, &mut human).unwrap_or_else(|e| panic!("runner error: {e}"));
    let human = String::from_utf8(human).unwrap();
    let json = String::from_utf8(json).unwrap();
    eprintln!("{human}");
    let c = run.counts;

    // What the example declares: 14 trials; fails_on_purpose fails (twice: --retries 1);
    // needs_two_cores[smp=1] and skips_itself are skipped.
    assert_eq!((c.passed, c.failed, c.skipped, c.flaky), (11, 1, 2, 0), "{human}");
    let failed: Vec<_> = run.results.iter().filter(|r| matches!(r.verdict, Verdict::Fail(_))).collect();
    assert_eq!(failed[0].trial.name, "fails_on_purpose[smp=1]");
    assert_eq!(failed[0].attempts, 2, "a failing trial is retried --retries times");
    assert!(failed[0].message.contains("arithmetic still works"), "{}", failed[0].message);
    assert_eq!(failed[0].logs, ["about to compare"], "t.log lines reach the report");
    let details = report::failure_details(failed[0], &ktest::parse_args(["--example", "ktest_demo"]).unwrap().unwrap());
    assert!(details.contains("rerun:   cargo run -- test --exact 'fails_on_purpose[smp=1]' --seed "), "{details}");
    assert!(details.contains("--example ktest_demo"), "{details}");
    assert!(details.contains("--- last serial lines ---"), "{details}");
    let skip = run.results.iter().find(|r| r.trial.name == "needs_two_cores[smp=1]").unwrap();
    assert_eq!((skip.verdict, skip.message.as_str()), (Verdict::Skip, "needs 2 or more cores"));
    let sum = run.results.iter().find(|r| r.trial.name == "channel_sum[big,smp=2]").unwrap();
    assert_eq!(sum.verdict, Verdict::Pass);
    assert!(sum.trial.params.contains(&"heap=64M".to_string()), "a case's boot parameters");
    assert!(sum.logs.iter().any(|l| l == "sum of 1..=100000 = 5000050000"), "{:?}", sum.logs);
    let xfail = run.results.iter().find(|r| r.trial.name == "deadlock_is_reported[smp=1]").unwrap();
    assert!(xfail.xfail && xfail.verdict == Verdict::Pass);

    // Human: one line per trial, and the closing line.
    let lines: Vec<&str> = human.lines().filter(|l| l.starts_with("test ") && l.contains(" ... ")).collect();
    assert_eq!(lines.len(), 14, "{human}");
    assert_eq!(human.trim_end().lines().last().unwrap(), "11 passed, 1 failed, 2 skipped");

    // JSON (test2json's actions): one terminal event per trial, plus the run's.
    let events: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    let count = |a: &str| events.iter().filter(|e| e["Action"] == a && e.get("Test").is_some()).count();
    assert_eq!((count("pass"), count("fail"), count("skip"), count("run")), (11, 1, 2, 14), "{json}");
    assert_eq!(events.first().unwrap()["Action"], "start");
    assert_eq!(events.last().unwrap()["Action"], "fail");
    assert!(events.iter().any(|e| e["Action"] == "output" && e["Output"].as_str().unwrap().contains("about to compare")));

    // KTAP: suites as subtests, with their directives.
    let ktap = report::ktap(&run.results);
    let sub: Vec<&str> = ktap.lines().filter(|l| l.starts_with("    ok ") || l.starts_with("    not ok ")).collect();
    assert_eq!(ktap.lines().next(), Some("KTAP version 1"));
    assert_eq!(sub.len(), 14, "{ktap}");
    assert_eq!(sub.iter().filter(|l| l.starts_with("    not ok")).count(), 1);
    assert_eq!(sub.iter().filter(|l| l.contains(" # SKIP ")).count(), 2);
    assert_eq!(sub.iter().filter(|l| l.contains(" # XFAIL ")).count(), 2);
    assert!(ktap.lines().any(|l| l == "not ok 1 main"), "{ktap}");

    // JUnit XML, read back.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let _ = std::fs::remove_file(&junit);
    let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let cases: Vec<&quick_junit::TestCase> = parsed.test_suites.iter().flat_map(|s| s.test_cases.iter()).collect();
    assert_eq!(cases.len(), 14);
    let n = |f: fn(&quick_junit::TestCaseStatus) -> bool| cases.iter().filter(|c| f(&c.status)).count();
    assert_eq!(n(|s| matches!(s, quick_junit::TestCaseStatus::Success { .. })), 11);
    assert_eq!(n(|s| matches!(s, quick_junit::TestCaseStatus::NonSuccess { .. })), 1);
    assert_eq!(n(|s| matches!(s, quick_junit::TestCaseStatus::Skipped { .. })), 2);
}

#[test]
fn list_reads_the_elf_without_booting() {
    let mut opt = example_options();
    opt.list = true;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let t0 = Instant::now();
    ktest::run(opt, &mut out, &mut err).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("channel_sum: smp=1,2 cases=small,big"), "{out}");
    assert!(out.contains("send_on_closed_channel_panics: smp=2 should_panic=\"send on closed channel\""), "{out}");
    assert!(out.contains("exactly_two_cores: smp=2 smp_only"), "{out}");
    assert!(out.trim_end().ends_with("8 tests, 14 trials"), "{out}");
    assert!(t0.elapsed() < Duration::from_secs(600));
}

/// `--smp` replaces every matrix, but a test marked `smp_only` runs only at the counts it lists:
/// at the others it is skipped with the reason, not booted where it cannot pass.
#[test]
fn smp_only_is_skipped_at_other_counts() {
    let _one = one_at_a_time();
    let mut opt = ktest::parse_args(["--exact", "exactly_two_cores", "--example", "ktest_demo", "--smp", "1,2,3"]).unwrap().unwrap();
    opt.jobs = 1;
    let (mut out, mut human) = (Vec::new(), Vec::new());
    let run = ktest::run(opt, &mut out, &mut human).unwrap_or_else(|e| panic!("runner error: {e}"));
    let human = String::from_utf8(human).unwrap() + &String::from_utf8(out).unwrap();
    let c = run.counts;
    assert_eq!((c.passed, c.failed, c.skipped), (1, 0, 2), "{human}");
    for r in &run.results {
        let want = if r.trial.smp == 2 { Verdict::Pass } else { Verdict::Skip };
        assert_eq!(r.verdict, want, "{}: {human}", r.trial.name);
        if r.trial.smp != 2 {
            assert_eq!(r.message, "holds only at smp=2 (smp_only)");
        }
    }
}

/// Ctrl-C in a terminal signals the whole foreground process group: the runner and its QEMUs.
/// None may be left running.
#[test]
fn ctrl_c_leaves_no_qemu_behind() {
    let _one = one_at_a_time();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let marker = format!("ktest-ctrlc-{}", std::process::id());
        // Build first (not under the timer below).
        ktest::collect_tests(&example_options(), false).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gmpos"))
            .args(["test", "every_goroutine_runs", "--example", "ktest_demo", "--count", "50", "--jobs", "2"])
            .env("GMPOS_QEMU_ARGS", format!("-name {marker}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id();
        let t0 = Instant::now();
        while qemus_with(&marker).is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(300), "no QEMU started");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Ctrl-C in a terminal: SIGINT to the whole foreground process group (the runner and
        // its QEMUs). Sent with kill(2) itself: procps-ng's `kill -INT -PGID` exits 0 but
        // signals nobody (a negative pid needs `--` there), which made this test fail.
        // SAFETY: kill(2) has no memory effects; pgid is our live child's group.
        let rc = unsafe { libc::kill(-(pgid as i32), libc::SIGINT) };
        assert_eq!(rc, 0, "kill(-{pgid}, SIGINT): {}", std::io::Error::last_os_error());
        let t1 = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if t1.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                for pid in qemus_with(&marker) {
                    // SAFETY: as above; a QEMU of ours.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                panic!("the runner did not stop within 30 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // 128 + SIGINT, as a shell reports a process ended by Ctrl-C (boot::cleanup).
        assert_eq!(status.code(), Some(130), "the runner's status after SIGINT: {status}");
        while !qemus_with(&marker).is_empty() {
            if t1.elapsed() > Duration::from_secs(30) {
                let left = qemus_with(&marker);
                for &pid in &left {
                    // SAFETY: kill(2) has no memory effects.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
                panic!("QEMU processes left behind after Ctrl-C: {left:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Processes whose command line contains `marker`.
fn qemus_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.starts_with("qemu-system") && cmd.contains(marker) {
                out.push(pid);
            }
        }
    }
    out
}

/// A name no test has: a failure exit that says so and lists the tests.
#[test]
fn unknown_test_name_is_a_clear_failure() {
    let _one = one_at_a_time();
    let cfg = boot::RunConfig {
        bin: "testkernel".into(),
        smp: 1,
        timeout: Some(Duration::from_secs(90)),
        params: vec![("test".into(), "no_such_test".into())],
        ..boot::RunConfig::default()
    };
    let o = boot::run(&cfg, false).unwrap();
    assert_eq!(o.status, boot::Status::Fail, "{}", o.serial);
    assert!(o.serial.contains("unknown test \"no_such_test\"; known tests:"), "{}", o.serial);
}

/// The README's "Writing kernel tests" example works when copied as it stands: the block is
/// byte for byte `kernel/examples/readme_example.rs` (the README says `mytests.rs`; the file
/// here has another name so that a reader's copy does not collide with it), and running it
/// prints what the README says: 6 trials, "6 passed, 0 failed".
#[test]
fn readme_example_works_as_copied() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let at = readme.find("Copy this into a new file `kernel/examples/mytests.rs`:").expect("the README's example");
    let start = readme[at..].find("```rust\n").map(|i| at + i + "```rust\n".len()).unwrap();
    let end = start + readme[start..].find("```\n").unwrap();
    let file = std::fs::read_to_string(format!("{root}/kernel/examples/readme_example.rs")).unwrap();
    assert!(readme[start..end] == file, "README's example and kernel/examples/readme_example.rs differ: keep them identical");
    assert!(readme.contains("cargo run -- test --example mytests          # 6 trials, ending with \"6 passed, 0 failed\""));

    let _one = one_at_a_time();
    let o = Command::new(env!("CARGO_BIN_EXE_gmpos"))
        .args(["test", "--example", "readme_example"])
        .current_dir(root)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{}\n{out}\n{err}", o.status);
    assert_eq!(out.matches(" ... ok").count(), 6, "{out}");
    assert!(out.trim_end().ends_with("6 passed, 0 failed"), "{out}");
    for name in ["goroutines_all_run[smp=4]", "buffered[big,smp=2]", "buffered[small,smp=2]", "double_close[smp=1]"] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
}
