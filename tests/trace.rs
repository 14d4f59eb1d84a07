//! The execution tracer and the CPU profiler, end to end: boot scenarios with `trace=1` (or the
//! flight recorder, or `profile=`) and the debug console connected to a file, decode what the
//! kernel wrote, and run the trace checker (no goroutine on two Ps at once, every start after a
//! create/unblock/stop, no P running two goroutines) over it, at several core counts.
mod common;

use boot::trace::format::{Kind, Trace};
use boot::trace::{analyse, debugcon_qemu_args, perfetto, profile, Outputs};
use common::*;
use std::path::PathBuf;
use std::time::Duration;

fn out_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("gmpos-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Boot the testkernel with `test=NAME`, `params`, and the debug console in a file; require a
/// pass (or, with `expect_failure`, a failure exit); return the run and the file's bytes.
fn boot_with_debugcon(test: &str, smp: u32, params: &[&str], tag: &str, expect_failure: bool) -> (Outcome, Vec<u8>) {
    let file = out_dir().join(format!("{test}-{smp}-{tag}.bin"));
    let _ = std::fs::remove_file(&file);
    let mut ps = vec![("test".to_string(), test.to_string())];
    ps.extend(params.iter().map(|p| boot::parse_param(p).unwrap()));
    let cfg = RunConfig {
        bin: "testkernel".into(),
        smp,
        release: std::env::var("GMPOS_RELEASE").map(|v| v == "1").unwrap_or(false),
        timeout: Some(Duration::from_secs(timeout_for(smp))),
        params: ps,
        extra_qemu_args: debugcon_qemu_args(&file).unwrap(),
        debugcon: Some(file.clone()),
        ..RunConfig::default()
    };
    let img = image("testkernel", false);
    let o = {
        let _permit = Permit::one();
        boot::run_image(&cfg, &img, false).unwrap_or_else(|e| panic!("cannot boot: {e}"))
    };
    if expect_failure {
        expect_fail(&o);
    } else {
        expect_pass(&o);
        expect_contains(&o, &format!("test {test}: PASS"));
    }
    let bytes = std::fs::read(&file).unwrap_or_else(|e| fail(&o, &format!("no debug console file {}: {e}", file.display())));
    (o, bytes)
}

/// Boot a scenario traced, decode, check, export; fail with the checker's findings.
fn traced(test: &str, smp: u32, extra: &[&str]) -> Outputs {
    let mut params = vec!["trace=1"];
    params.extend_from_slice(extra);
    let (o, bytes) = boot_with_debugcon(test, smp, &params, "trace", false);
    expect_contains(&o, "tracer: wrote ");
    let out = analyse(&bytes, test).unwrap_or_else(|e| fail(&o, &format!("trace does not decode: {e}")));
    if !out.check.ok() {
        fail(&o, &format!("trace checker:\n{}", out.summary));
    }
    // Something was judged: a scenario's whole run, not an empty window.
    assert!(out.check.starts > 10, "only {} goroutine starts judged:\n{}", out.check.starts, out.summary);
    perfetto::validate(&out.json).unwrap_or_else(|e| panic!("Perfetto JSON of {test}: {e}"));
    out
}

fn count(t: &Trace, k: Kind) -> usize {
    t.events.iter().filter(|e| e.kind == k).count()
}

#[test]
fn sieve_trace_blocks_and_wakes_on_channels_smp1() {
    let out = traced("chan::chan_sieve", 1, &[]);
    let t = &out.trace;
    assert!(count(t, Kind::GoCreate) >= 100, "{}", out.summary);
    assert!(t.events.iter().any(|e| e.kind == Kind::GoBlock && t.wait_reason(e.a) == "chan receive"));
    assert!(count(t, Kind::GoUnblock) > 100);
    assert_eq!(out.model.nprocs, 1);
}

#[test]
fn sieve_trace_smp2() {
    // A buffer big enough for the whole run: every goroutine's exit is in the trace.
    let out = traced("chan::chan_sieve", 2, &["tracebuf=131072"]);
    assert_eq!(out.trace.total_lost(), 0, "{}", out.summary);
    // One goroutine per prime, each blocking on both channel directions. (Their exits come
    // with the cascade of closes, which may still run when main returns: not counted.)
    let t = &out.trace;
    assert!(count(t, Kind::GoCreate) >= 150, "{}", out.summary);
    for r in ["chan receive", "chan send"] {
        assert!(t.events.iter().any(|e| e.kind == Kind::GoBlock && t.wait_reason(e.a) == r), "no {r} block:\n{}", out.summary);
    }
}

#[test]
fn sieve_trace_smp4_every_p_has_a_lane() {
    let out = traced("chan::chan_sieve", 4, &[]);
    let t = &out.trace;
    assert_eq!(t.ncpu, 4);
    assert!(count(t, Kind::IpiSend) > 0 && count(t, Kind::MPark) > 0, "{}", out.summary);
    let lanes = out.json["traceEvents"].as_array().unwrap().iter().filter(|e| e["name"] == "thread_name" && e["pid"] == 1).count();
    assert_eq!(lanes, 4);
}

#[test]
fn parallelism_trace_steals_smp4() {
    let out = traced("sched::spawn_tree", 4, &[]);
    let t = &out.trace;
    assert!(count(t, Kind::RunqSteal) > 0 && count(t, Kind::MSpinStart) > 0, "{}", out.summary);
    // Goroutines ran on more than one P.
    let ps: std::collections::HashSet<u16> = out.model.slices.iter().map(|s| s.p).collect();
    assert!(ps.len() >= 2, "{}", out.summary);
}

#[test]
fn preemption_trace_smp1() {
    let out = traced("preempt::preempt_async", 1, &[]);
    assert!(out.trace.events.iter().any(|e| e.kind == Kind::GoStop && e.a == 1), "no preemption:\n{}", out.summary);
    assert!(out.summary.contains("preemptions: "));
}

#[test]
fn syscall_handoff_trace_smp2() {
    let out = traced("preempt::syscall_handoff", 2, &["gomaxprocs=1"]);
    let t = &out.trace;
    assert!(count(t, Kind::SyscallEnter) > 0 && count(t, Kind::SyscallExit) + count(t, Kind::GoStop) > 0);
    assert!(count(t, Kind::PHandoff) > 0, "{}", out.summary);
}

#[test]
fn gomaxprocs_trace_has_stw_smp2() {
    // 1000 GOMAXPROCS changes overflow a small buffer: the checker judges the complete window.
    let out = traced("sched::gomaxprocs_churn", 2, &["tracebuf=65536"]);
    let t = &out.trace;
    assert!(count(t, Kind::StwBegin) > 0 && count(t, Kind::ProcsChange) > 0, "{}", out.summary);
    assert!(out.summary.contains("stop-the-world: "));
}

#[test]
fn flight_recorder_is_flushed_on_panic() {
    let (o, bytes) = boot_with_debugcon("bringup::panic", 2, &["trace=flight", "tracebuf=1024"], "flight", true);
    expect_contains(&o, "panic: ");
    expect_contains(&o, "tracer: wrote ");
    let out = analyse(&bytes, "panic").unwrap_or_else(|e| fail(&o, &format!("flight trace does not decode: {e}")));
    assert!(out.trace.fatal && out.trace.flight);
    assert!(out.check.ok(), "{}", out.summary);
    assert!(!out.trace.events.is_empty());
}

#[test]
fn tracing_off_writes_nothing() {
    let (o, bytes) = boot_with_debugcon("sched::yield_progress", 2, &[], "off", false);
    assert!(bytes.is_empty(), "{} bytes on the debug console without trace=", bytes.len());
    assert!(!o.serial.contains("tracer:"));
}

/// `go tool pprof` from Debian's golang-1.19-go (as bench/ uses), installed when missing and
/// possible.
fn go_tool() -> Option<PathBuf> {
    let go = PathBuf::from("/usr/lib/go-1.19/bin/go");
    if !go.exists() {
        let _ = std::process::Command::new("apt-get").args(["install", "-y", "-q", "golang-1.19-go"]).status();
    }
    go.exists().then_some(go)
}

#[test]
fn profile_tops_with_the_hot_function_and_pprof_reads_it() {
    let (o, bytes) = boot_with_debugcon("trace::profile_spin", 2, &["profile=1000"], "profile", false);
    expect_contains(&o, "profiler: wrote ");
    let s = profile::decode(&bytes).unwrap_or_else(|e| fail(&o, &format!("profile does not decode: {e}")));
    assert!(s.stacks.len() > 100, "only {} samples", s.stacks.len());
    let elf = kernel("testkernel");
    let mut sym = profile::Symbolizer::new(Some(&elf)).unwrap();
    let top = profile::top(&s, &mut sym);
    assert!(top[0].0.ends_with("profile_hot_loop"), "top of the profile: {:?}", &top[..top.len().min(5)]);
    assert!(top[0].1 * 2 > s.stacks.len() as u64, "profile_hot_loop has only {} of {} samples", top[0].1, s.stacks.len());
    // The flame graph and the pprof file.
    let fg = profile::flamegraph(&profile::folded(&s, &mut sym), "t").unwrap();
    assert!(String::from_utf8_lossy(&fg).contains("profile_hot_loop"));
    let pb = out_dir().join("profile_spin.pb.gz");
    std::fs::write(&pb, profile::gzip(&profile::to_pprof(&s, &mut sym))).unwrap();
    let Some(go) = go_tool() else {
        panic!("go tool pprof is needed (apt-get install golang-1.19-go) to check the profile");
    };
    let out = std::process::Command::new(go).args(["tool", "pprof", "-top"]).arg(&pb).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "go tool pprof failed: {}", String::from_utf8_lossy(&out.stderr));
    let first = text.lines().skip_while(|l| !l.trim_start().starts_with("flat")).nth(1).unwrap_or("");
    assert!(first.contains("profile_hot_loop"), "go tool pprof -top:\n{text}");
}
