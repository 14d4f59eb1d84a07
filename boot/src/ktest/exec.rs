//! Running trials: one QEMU per trial (or per suite with `--isolate suite`), in parallel up
//! to `--jobs`, each through [`crate::run_image`] (the one function that spawns QEMU), and
//! judging each boot against what the test declared.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gmp_core::ktest::Expect;
use regex::Regex;

use super::list::TestInfo;
use super::plan::Trial;
use super::Options;
use crate::{Outcome, RunConfig, Status};

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Passed only on a retry.
    Flaky,
    Skip,
    Fail(FailKind),
}

/// Why a trial failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// An assertion of the runner (output checks, missing report) or `t.error`.
    Failed,
    /// A panic the test did not expect.
    Panicked,
    /// A fatal runtime error the test did not expect.
    Fatal,
    Timeout,
    /// QEMU exited without the kernel's debug exit (with -no-reboot: a triple fault).
    TripleFault,
    /// The kernel failed before the test started, or QEMU could not run.
    BootError,
}

impl FailKind {
    pub fn word(self) -> &'static str {
        match self {
            FailKind::Failed => "FAILED",
            FailKind::Panicked => "PANICKED",
            FailKind::Fatal => "FATAL",
            FailKind::Timeout => "TIMEOUT",
            FailKind::TripleFault => "TRIPLE FAULT",
            FailKind::BootError => "BOOT ERROR",
        }
    }
}

/// The result of one trial, after retries.
#[derive(Debug, Clone)]
pub struct TrialResult {
    pub trial: Trial,
    pub verdict: Verdict,
    /// One line: why it failed / was skipped / what was expected.
    pub message: String,
    /// Boots made (1 + retries used).
    pub attempts: u32,
    pub elapsed: Duration,
    /// `t.log` lines (`# ...`) of the test.
    pub logs: Vec<String>,
    /// The last serial lines, for failures.
    pub tail: String,
    /// The QEMU command line of the (last) boot.
    pub qemu: String,
    /// Set when the test expected a failure and got it (KTAP XFAIL).
    pub xfail: bool,
    /// The replay file kept for a failed recorded trial.
    pub replay: Option<PathBuf>,
}

/// Serial lines shown for a failure.
pub const TAIL: usize = 40;

pub use crate::strip_cpu;

/// The part of the serial output that belongs to `test` (from its `# ktest start` line to the
/// next one); `None` if it never started.
fn segment<'a>(serial: &'a str, shown: &str) -> Option<&'a str> {
    let start_line = format!("# ktest start {shown}");
    let mut start = None;
    let mut pos = 0;
    for line in serial.split_inclusive('\n') {
        let s = strip_cpu(line).trim_end();
        if start.is_none() && s == start_line {
            start = Some(pos);
        } else if start.is_some() && s.starts_with("# ktest start ") {
            return Some(&serial[start.unwrap()..pos]);
        }
        pos += line.len();
    }
    start.map(|s| &serial[s..])
}

/// The name the kernel prints for a trial: `module::fn` or `module::fn[case]`.
pub fn kernel_name(t: &Trial) -> String {
    match &t.case {
        Some(c) => format!("{}[{c}]", t.test.name),
        None => t.test.name.clone(),
    }
}

/// The text of a panic/fatal report: from its first line to the end.
fn report_text(serial: &str) -> Option<&str> {
    let mut pos = 0;
    for line in serial.split_inclusive('\n') {
        let s = strip_cpu(line);
        if s.starts_with("panic: ") || s.starts_with("fatal error: ") || s.starts_with("runtime: ") {
            return Some(&serial[pos..]);
        }
        pos += line.len();
    }
    None
}

/// The `# ` lines the test logged (not the runner's own `# ktest` markers).
fn logs_of(seg: &str) -> Vec<String> {
    seg.lines()
        .map(|l| strip_cpu(l).trim_end())
        .filter(|l| l.starts_with("# ") && !l.starts_with("# ktest "))
        .map(|l| l[2..].to_string())
        .collect()
}

/// Check the declared `output` lines against `text`: each must be contained in some serial
/// line, or match it when written as `/regex/`; `{smp}` is the trial's core count, `{case}`
/// its case. A named group of a regex, `(?P<g>...)`, captures from the first matching line,
/// and `{g}` in a later pattern is replaced by it: `["/^overflow in goroutine (?P<g>[0-9]+)$/",
/// "goroutine {g} [running]"]` checks that both lines name the same goroutine (a back-reference
/// across lines, which regexes do not have).
pub fn check_output(test: &TestInfo, smp: u32, case: Option<&str>, text: &str) -> Result<(), String> {
    let mut captured: Vec<(String, String)> = Vec::new();
    for pat in &test.output {
        let is_re = pat.len() >= 2 && pat.starts_with('/') && pat.ends_with('/');
        let mut p = pat.replace("{smp}", &smp.to_string()).replace("{case}", case.unwrap_or(""));
        for (name, value) in &captured {
            // Into a regex the value goes escaped: it is matched literally.
            let v = if is_re { regex::escape(value) } else { value.clone() };
            p = p.replace(&format!("{{{name}}}"), &v);
        }
        let lines = || text.lines().map(|l| strip_cpu(l).trim_end());
        if p.len() >= 2 && p.starts_with('/') && p.ends_with('/') {
            let re = Regex::new(&p[1..p.len() - 1]).map_err(|e| format!("bad output regex {p}: {e}"))?;
            let Some(caps) = lines().find_map(|l| re.captures(l)) else {
                return Err(format!("no serial line matches {p}"));
            };
            for name in re.capture_names().flatten() {
                if let Some(m) = caps.name(name) {
                    captured.push((name.to_string(), m.as_str().to_string()));
                }
            }
        } else if !lines().any(|l| l.contains(p.as_str())) {
            return Err(format!("serial output does not contain {p:?}"));
        }
    }
    Ok(())
}

/// Judge one boot of one trial. Returns the verdict, a message, and whether an expected failure
/// happened (XFAIL).
pub fn judge(trial: &Trial, o: &Outcome) -> (Verdict, String, bool) {
    let t = &trial.test;
    let shown = kernel_name(trial);
    let fail = |k: FailKind, m: String| (Verdict::Fail(k), m, false);
    match o.status {
        Status::Timeout => {
            return fail(FailKind::Timeout, format!("no exit within {:.0} s", trial.timeout.as_secs_f64()));
        }
        Status::NoExit(0) => {
            if let Some(line) = crate::qemu_killed_by_signal(&o.qemu_stderr) {
                return fail(FailKind::BootError, format!("QEMU was stopped from outside, not by the kernel ({line})"));
            }
            return fail(FailKind::TripleFault, "QEMU reset without a debug exit (triple fault)".into());
        }
        Status::NoExit(code) => {
            let err = o.qemu_stderr.trim();
            return fail(FailKind::BootError, format!("QEMU exited with status {code}{}{err}", if err.is_empty() { "" } else { ": " }));
        }
        Status::BootFailure(why) => return fail(FailKind::BootError, format!("the boot failed before the kernel started: {why}")),
        Status::Pass | Status::Fail => {}
    }
    let seg = segment(&o.serial, &shown);
    let report = report_text(&o.serial);
    let failed_kind = |r: Option<&str>| match r {
        Some(r) if strip_cpu(r).starts_with("panic: ") => FailKind::Panicked,
        Some(_) => FailKind::Fatal,
        None => FailKind::Failed,
    };
    let first_line = |r: Option<&str>| r.and_then(|r| r.lines().next()).map(|l| strip_cpu(l).trim().to_string()).unwrap_or_default();
    let (verdict, msg, xfail) = match t.expect {
        Expect::Pass => {
            if o.status == Status::Pass {
                let Some(seg) = seg else {
                    return fail(FailKind::Failed, format!("the kernel exited without running `{shown}`"));
                };
                let ok = seg.lines().map(|l| strip_cpu(l).trim_end()).find(|l| {
                    (l.starts_with("ok ") || l.starts_with("not ok ")) && (l.ends_with(&format!(" {shown}")) || l.contains(&format!(" {shown} #")))
                });
                match ok {
                    Some(l) if l.starts_with("not ok") => (Verdict::Fail(FailKind::Failed), format!("{l}"), false),
                    Some(l) if l.contains("# SKIP") => {
                        let why = seg.lines().map(|l| strip_cpu(l).trim_end()).find_map(|l| l.strip_prefix("# skip: ")).unwrap_or("");
                        (Verdict::Skip, why.to_string(), false)
                    }
                    Some(_) => (Verdict::Pass, String::new(), false),
                    None => (Verdict::Fail(FailKind::Failed), format!("the kernel exited without reporting `{shown}`"), false),
                }
            } else if seg.is_none() {
                (Verdict::Fail(FailKind::BootError), format!("the kernel failed before the test started: {}", first_line(report)), false)
            } else {
                let k = failed_kind(report);
                let line = first_line(report);
                let line = if line.is_empty() {
                    seg.and_then(|s| s.lines().rev().map(|l| strip_cpu(l).trim()).find(|l| l.starts_with("not ok")))
                        .unwrap_or("failure exit")
                        .to_string()
                } else {
                    line
                };
                (Verdict::Fail(k), line, false)
            }
        }
        Expect::Panic | Expect::Fatal => {
            let want = if t.expect == Expect::Panic { "panic" } else { "fatal error" };
            if o.status == Status::Pass {
                (Verdict::Fail(FailKind::Failed), format!("expected a {want} containing {:?}, but the test passed", t.expect_text), false)
            } else {
                match report {
                    Some(r) if t.expect == Expect::Panic && !strip_cpu(r).starts_with("panic: ") => (
                        Verdict::Fail(failed_kind(report)),
                        format!("expected a panic containing {:?}, got: {}", t.expect_text, first_line(report)),
                        false,
                    ),
                    Some(r) if r.contains(&t.expect_text) => (Verdict::Pass, format!("{want} as expected: {}", first_line(report)), true),
                    Some(_) => (
                        Verdict::Fail(failed_kind(report)),
                        format!("expected a {want} containing {:?}, got: {}", t.expect_text, first_line(report)),
                        false,
                    ),
                    None if o.serial.contains(&t.expect_text) && t.expect == Expect::Fatal => {
                        (Verdict::Pass, format!("failure exit with {:?} as expected", t.expect_text), true)
                    }
                    None => (
                        Verdict::Fail(FailKind::Failed),
                        format!("expected a {want} containing {:?}, got a failure exit without it", t.expect_text),
                        false,
                    ),
                }
            }
        }
    };
    if verdict == Verdict::Pass {
        // Isolated boots check the whole console (boot lines included); a suite boot's
        // member only its own part.
        if let Err(e) = check_output(t, trial.smp, trial.case.as_deref(), &o.serial) {
            return fail(FailKind::Failed, e);
        }
    }
    (verdict, msg, xfail)
}

/// Judge one member of a suite boot: `Some(result)` if its part of the console says it passed
/// or skipped, `None` if it must be run again alone.
fn judge_in_suite(trial: &Trial, o: &Outcome) -> Option<(Verdict, String)> {
    let shown = kernel_name(trial);
    let seg = segment(&o.serial, &shown)?;
    let ok = seg
        .lines()
        .map(|l| strip_cpu(l).trim_end())
        .find(|l| l.starts_with("ok ") && (l.ends_with(&format!(" {shown}")) || l.contains(&format!(" {shown} #"))))?;
    if ok.contains("# SKIP") {
        let why = seg.lines().map(|l| strip_cpu(l).trim_end()).find_map(|l| l.strip_prefix("# skip: ")).unwrap_or("");
        return Some((Verdict::Skip, why.to_string()));
    }
    match check_output(&trial.test, trial.smp, trial.case.as_deref(), seg) {
        Ok(()) => Some((Verdict::Pass, String::new())),
        Err(e) => Some((Verdict::Fail(FailKind::Failed), e)),
    }
}

/// Can a test share a suite boot? The kernel runs a glob's tests in one boot only if they are
/// plain: expected to pass, no cases, no own parameters or special machine (kernel/src/ktest.rs
/// applies the same rule and skips the others).
pub fn suite_eligible(t: &TestInfo) -> bool {
    t.expect == Expect::Pass
        && t.cases.is_empty()
        && t.params.is_empty()
        && t.skip_params.is_empty()
        && t.min_cpus <= 1
        && !t.exclusive
        && !t.smp_only
        && !t.uefi
        && t.mem.is_none()
}

/// The work of one boot.
#[derive(Debug, Clone)]
pub enum Job {
    One(usize),
    /// A trial that failed in a suite boot (why, and the serial tail), to run alone: if it
    /// passes alone it is FLAKY, not a pass.
    Alone(usize, String, String),
    /// Trials of one suite with the same core count and parameters.
    Suite(Vec<usize>),
}

/// Where the disk images are, per (ELF, uefi).
pub type Images = HashMap<(PathBuf, bool), PathBuf>;

/// The boot configuration of a trial (also used for a suite boot with `test=SUITE::*`).
pub fn boot_config(trial: &Trial, test_param: &str, timeout: Duration, opt: &Options) -> RunConfig {
    let mut params: Vec<(String, String)> = vec![("test".into(), test_param.into())];
    if let (Some(c), false) = (&trial.case, test_param.contains('*')) {
        params.push(("case".into(), c.clone()));
    }
    params.push(("seed".into(), trial.seed.to_string()));
    for w in &trial.params {
        if let Some((k, v)) = w.split_once('=') {
            params.retain(|(k2, _)| k2 != k);
            params.push((k.into(), v.into()));
        }
    }
    let mut cfg = RunConfig {
        bin: trial.test.bin.clone(),
        kernel_path: Some(trial.test.elf.clone()),
        smp: trial.smp,
        uefi: trial.test.uefi,
        release: opt.release,
        timeout: Some(timeout),
        params,
        ..RunConfig::default()
    };
    if let Some(m) = trial.test.mem {
        cfg.mem_mib = m;
    }
    cfg.extra_qemu_args = opt.qemu_args.clone();
    cfg.qemu = opt.qemu.clone();
    cfg.cpu = opt.cpu.clone();
    cfg.accel = opt.accel;
    cfg
}

/// Slots for concurrent QEMUs; an exclusive trial takes them all.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
    total: usize,
}

impl Slots {
    fn take(&self, n: usize) -> usize {
        let n = n.min(self.total);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < n {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= n;
        n
    }
    fn give(&self, n: usize) {
        *self.free.lock().unwrap_or_else(|p| p.into_inner()) += n;
        self.cv.notify_all();
    }
}

/// Boot one trial once (with record/replay when asked).
fn boot_once(trial: &Trial, images: &Images, opt: &Options, attempt: u32) -> (Outcome, Option<PathBuf>) {
    let cfg = boot_config(trial, &trial.test.name, trial.timeout, opt);
    let img = &images[&(trial.test.elf.clone(), trial.test.uefi)];
    let replay = super::record::plan_record(trial, opt, attempt);
    let cfg = match &replay {
        Some(r) => super::record::apply(cfg, img, r),
        None => cfg,
    };
    match crate::run_image(&cfg, img, false) {
        Ok(o) => (o, replay.map(|r| r.file)),
        Err(e) => (
            Outcome { status: Status::NoExit(-1), serial: String::new(), qemu_stderr: e.to_string(), elapsed: Duration::ZERO, command: String::new() },
            None,
        ),
    }
}

fn result_of(trial: &Trial, o: &Outcome, attempts: u32, replay: Option<PathBuf>) -> TrialResult {
    let (verdict, message, xfail) = judge(trial, o);
    let seg = segment(&o.serial, &kernel_name(trial)).unwrap_or("");
    TrialResult {
        trial: trial.clone(),
        verdict,
        message,
        attempts,
        elapsed: o.elapsed,
        logs: logs_of(seg),
        tail: crate::last_lines(&o.serial, TAIL),
        qemu: o.command.clone(),
        xfail,
        replay,
    }
}

/// Run one trial alone, with retries: a pass after a failure is FLAKY.
fn run_one(trial: &Trial, images: &Images, opt: &Options, prior: Option<(String, String)>) -> TrialResult {
    if let Some(why) = &trial.skip {
        return TrialResult {
            trial: trial.clone(),
            verdict: Verdict::Skip,
            message: why.clone(),
            attempts: 0,
            elapsed: Duration::ZERO,
            logs: Vec::new(),
            tail: String::new(),
            qemu: String::new(),
            xfail: false,
            replay: None,
        };
    }
    let mut first_failure: Option<TrialResult> = None;
    if let Some((why, tail)) = prior {
        first_failure = Some(TrialResult {
            trial: trial.clone(),
            verdict: Verdict::Fail(FailKind::Failed),
            message: format!("in its suite's boot: {why}"),
            attempts: 1,
            elapsed: Duration::ZERO,
            logs: Vec::new(),
            tail,
            qemu: String::new(),
            xfail: false,
            replay: None,
        });
    }
    for attempt in 0..=opt.retries {
        let (o, replay) = boot_once(trial, images, opt, attempt);
        let mut r = result_of(trial, &o, attempt + 1, replay);
        match r.verdict {
            Verdict::Fail(_) => {
                if attempt == opt.retries {
                    return r;
                }
                first_failure.get_or_insert(r);
            }
            Verdict::Pass if first_failure.is_some() => {
                let f = first_failure.take().unwrap();
                r.verdict = Verdict::Flaky;
                r.message = format!("passed on attempt {} after: {} {}", attempt + 1, status_word(f.verdict), f.message);
                r.tail = f.tail;
                return r;
            }
            _ => {
                if let Some(p) = &r.replay {
                    // A passing recording is of no use: keep only failures'.
                    let _ = std::fs::remove_file(p);
                    r.replay = None;
                }
                return r;
            }
        }
    }
    unreachable!("the loop returns on the last attempt")
}

pub fn status_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "ok",
        Verdict::Flaky => "FLAKY",
        Verdict::Skip => "skipped",
        Verdict::Fail(k) => k.word(),
    }
}

/// Run a suite boot; members not reported as passed or skipped run again alone.
fn run_suite(members: &[usize], trials: &[Trial], images: &Images, opt: &Options, out: &mpsc::Sender<TrialResult>, again: &Mutex<VecDeque<Job>>) {
    let first = &trials[members[0]];
    let timeout: Duration = members.iter().map(|&i| trials[i].timeout).sum();
    let pattern = format!("{}::*", first.test.suite);
    let cfg = boot_config(first, &pattern, timeout, opt);
    let img = &images[&(first.test.elf.clone(), first.test.uefi)];
    let o = match crate::run_image(&cfg, img, false) {
        Ok(o) => o,
        Err(e) => Outcome { status: Status::NoExit(-1), serial: String::new(), qemu_stderr: e.to_string(), elapsed: Duration::ZERO, command: String::new() },
    };
    for &i in members {
        let t = &trials[i];
        match judge_in_suite(t, &o) {
            Some((verdict, message)) => {
                let seg = segment(&o.serial, &kernel_name(t)).unwrap_or("");
                let _ = out.send(TrialResult {
                    trial: t.clone(),
                    verdict,
                    message,
                    attempts: 1,
                    elapsed: elapsed_in(seg).unwrap_or(o.elapsed / members.len() as u32),
                    logs: logs_of(seg),
                    tail: crate::last_lines(seg, TAIL),
                    qemu: o.command.clone(),
                    xfail: false,
                    replay: None,
                });
            }
            None => {
                // Started but never reported: it failed there. Never started: the boot
                // ended before its turn. Either way it runs again alone.
                let job = match segment(&o.serial, &kernel_name(t)) {
                    Some(seg) => {
                        let (v, m, _) = judge(t, &o);
                        Job::Alone(i, format!("{} {m}", status_word(v)), crate::last_lines(seg, TAIL))
                    }
                    None => Job::One(i),
                };
                again.lock().unwrap_or_else(|p| p.into_inner()).push_back(job);
            }
        }
    }
}

/// `test NAME: PASS (12 ms)` -> 12 ms.
fn elapsed_in(seg: &str) -> Option<Duration> {
    let l = seg.lines().map(|l| strip_cpu(l).trim_end()).find(|l| l.starts_with("test ") && l.contains(": PASS ("))?;
    let ms: u64 = l.rsplit_once('(')?.1.strip_suffix(" ms)")?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// The boots for a plan: with `--isolate suite`, suite-eligible trials of the same suite, core
/// count, parameters and iteration share a boot.
pub fn jobs_for(trials: &[Trial], suites: Option<&[String]>) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut groups: HashMap<(PathBuf, String, u32, Vec<String>, u32), usize> = HashMap::new();
    for t in trials {
        let grouped = suites.is_some_and(|s| s.is_empty() || s.contains(&t.test.suite));
        if grouped && t.skip.is_none() && suite_eligible(&t.test) {
            let key = (t.test.elf.clone(), t.test.suite.clone(), t.smp, t.params.clone(), t.iteration);
            if let Some(&j) = groups.get(&key) {
                if let Job::Suite(v) = &mut jobs[j] {
                    v.push(t.index);
                }
                continue;
            }
            groups.insert(key, jobs.len());
            jobs.push(Job::Suite(vec![t.index]));
        } else {
            jobs.push(Job::One(t.index));
        }
    }
    // A suite of one is just a trial.
    for j in jobs.iter_mut() {
        if let Job::Suite(v) = j {
            if v.len() == 1 {
                *j = Job::One(v[0]);
            }
        }
    }
    // Bigger boots first: they bound the wall time.
    jobs.sort_by_key(|j| match j {
        Job::Suite(v) => std::cmp::Reverse(v.len()),
        _ => std::cmp::Reverse(1),
    });
    jobs
}

/// Run every job with up to `opt.jobs` QEMUs at once; results arrive on `out` as they finish.
pub fn run_all(trials: Arc<Vec<Trial>>, images: Arc<Images>, opt: Arc<Options>, jobs: Vec<Job>, out: mpsc::Sender<TrialResult>) {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let slots = Arc::new(Slots { free: Mutex::new(opt.jobs), cv: Condvar::new(), total: opt.jobs });
    // Workers that are busy: a worker may only stop when the queue is empty and nobody can add
    // to it (a suite boot re-queues its failures).
    let busy = Arc::new(Mutex::new(0usize));
    let mut handles = Vec::new();
    for _ in 0..opt.jobs {
        let (queue, slots, busy, trials, images, opt, out) =
            (queue.clone(), slots.clone(), busy.clone(), trials.clone(), images.clone(), opt.clone(), out.clone());
        handles.push(std::thread::spawn(move || loop {
            let job = {
                let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                match q.pop_front() {
                    Some(j) => {
                        *busy.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        j
                    }
                    None => {
                        drop(q);
                        if *busy.lock().unwrap_or_else(|p| p.into_inner()) == 0 {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
            };
            match job {
                Job::One(_) | Job::Alone(..) => {
                    let (i, prior) = match job {
                        Job::Alone(i, why, tail) => (i, Some((why, tail))),
                        Job::One(i) => (i, None),
                        Job::Suite(_) => unreachable!(),
                    };
                    let t = &trials[i];
                    let n = if t.test.exclusive { slots.total } else { 1 };
                    let n = slots.take(if t.skip.is_some() { 0 } else { n });
                    let r = run_one(t, &images, &opt, prior);
                    slots.give(n);
                    let _ = out.send(r);
                }
                Job::Suite(members) => {
                    let n = slots.take(1);
                    run_suite(&members, &trials, &images, &opt, &out, &queue);
                    slots.give(n);
                }
            }
            *busy.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }));
    }
    drop(out);
    for h in handles {
        let _ = h.join();
    }
}

/// Build the disk images the trials need, once each.
pub fn images_for(trials: &[Trial]) -> Result<Images, crate::Error> {
    let mut images = Images::new();
    for t in trials {
        let key = (t.test.elf.clone(), t.test.uefi);
        if !images.contains_key(&key) {
            let img = crate::build_image(Path::new(&t.test.elf), t.test.uefi)?;
            images.insert(key, img);
        }
    }
    Ok(images)
}
