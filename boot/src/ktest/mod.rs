//! `cargo run -- test`: the kernel test runner.
//!
//! 1. Build the kernel binaries once (`testkernel` and the demo `kernel` by default).
//! 2. List their `#[ktest]`s from the ELFs' `linkme_KTESTS` section, without booting
//!    ([`list`]).
//! 3. Expand them into trials: test x core count x case x `--count` ([`plan`]).
//! 4. Boot one QEMU per trial (or per suite with `--isolate suite`), up to `--jobs` at once,
//!    through [`crate::run_image`], and judge each boot against what the test declared
//!    ([`exec`]).
//! 5. Report in libtest's style, as KTAP, as a JSON event stream, as JUnit XML ([`report`]).

pub mod exec;
pub mod list;
pub mod plan;
pub mod record;
pub mod report;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::Error;
use exec::{TrialResult, Verdict};
use list::TestInfo;
use plan::Trial;

pub const USAGE: &str = "\
usage: cargo run -- test [FILTER...] [OPTIONS] [key=value ...]

Builds the kernel once, lists its #[ktest] tests from the ELF, and boots one QEMU per trial
(test x core count x case), up to --jobs at once. FILTER selects tests or trials by name: a
substring, or a glob with * and ?; several filters are alternatives.

options:
  --list                 list the tests (read from the ELF, no boot) and exit
  --exact                filters must equal a test or trial name
  --skip PATTERN         leave out trials whose name matches (repeatable)
  --tags T1,T2           only tests with one of these tags;  --skip-tags T1,T2: leave them out
  --smp 1,3,8            core counts for every test, instead of each test's matrix (an
                         smp_only test is skipped, with the reason, at counts it does not list)
  --count N              run each trial N times
  --shuffle[=SEED]       run the trials in random order (the seed is printed)
  --seed S               pass seed=S to every trial (schedrandom's choices); default: a fresh seed
                         per trial, printed in failure reports
  --jobs N               QEMUs at once (default: the number of host cores)
  --timeout-multiplier X scale every timeout (slow machines, TCG vs KVM)
  --retries N            boot a failing trial again up to N times; a later pass is FLAKY
  --isolate test|suite[=S1,S2]  test (default): one boot per trial; suite: the plain tests of
                         a suite (of the named suites) that share a core count and parameters
                         run in one boot; a test that fails there runs again alone
  --format human|ktap|json   report on stdout (ktap/json: the human lines go to stderr)
  --junit FILE           also write JUnit XML
  --record               record single-core trials with QEMU record/replay; a failure keeps its
                         replay file and prints the command that replays it
  --replay FILE          replay a recording (with the trial named by --exact)
  --gdb                  with --replay: wait for gdb on :1234 (reverse-step works)
  --bin NAME             test this kernel binary (repeatable; default: testkernel and kernel)
  --example NAME         test the kernel example kernel/examples/NAME.rs (repeatable)
  --kernel PATH          test a prebuilt kernel ELF (repeatable)
  --release              build the kernels with --release
  --qemu PATH            the QEMU program (default: $GMPOS_QEMU, else qemu-system-x86_64)
  --cpu MODEL            QEMU -cpu MODEL for every trial (default: $GMPOS_CPU, else QEMU's)
  --accel tcg|kvm|auto   as the runner's --accel (default tcg; --record needs tcg)
  -v, --verbose          print every trial's log lines
  key=value              boot parameter added to every trial (e.g. schedrandom=1)

exit status: 0 all passed (flaky and skipped included), 1 a trial failed, 3 build error,
             64 bad arguments";

/// Report format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Ktap,
    Json,
}

/// The runner's options (see [`USAGE`]).
#[derive(Debug, Clone)]
pub struct Options {
    pub filters: Vec<String>,
    pub exact: bool,
    pub skip: Vec<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub list: bool,
    pub smp: Option<Vec<u32>>,
    pub count: u32,
    pub shuffle: Option<u64>,
    pub seed: Option<u64>,
    pub jobs: usize,
    pub timeout_multiplier: f64,
    pub retries: u32,
    /// `--isolate suite`: `Some(empty)` = every suite, `Some(names)` = these suites.
    pub isolate_suites: Option<Vec<String>>,
    /// No trial selected is not an error (the `cargo test` entry point: a filter meant for
    /// another test binary).
    pub allow_empty: bool,
    pub format: Format,
    pub junit: Option<PathBuf>,
    pub record: bool,
    pub replay: Option<PathBuf>,
    pub gdb: bool,
    pub bins: Vec<String>,
    pub examples: Vec<String>,
    pub kernels: Vec<PathBuf>,
    pub release: bool,
    pub verbose: bool,
    /// Boot parameters added to every trial (`key=value`).
    pub params: Vec<String>,
    /// Extra QEMU arguments (`GMPOS_QEMU_ARGS`).
    pub qemu_args: Vec<String>,
    /// `--qemu PATH` (or `GMPOS_QEMU`): the QEMU program; `None` = qemu-system-x86_64.
    pub qemu: Option<PathBuf>,
    /// `--cpu MODEL` (or `GMPOS_CPU`): QEMU's `-cpu`.
    pub cpu: Option<String>,
    /// `--accel`; `main` resolves `auto` once for the whole run.
    pub accel: crate::Accel,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            filters: Vec::new(),
            exact: false,
            skip: Vec::new(),
            tags: Vec::new(),
            skip_tags: Vec::new(),
            list: false,
            smp: None,
            count: 1,
            shuffle: None,
            seed: None,
            jobs: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            timeout_multiplier: 1.0,
            retries: 0,
            isolate_suites: None,
            allow_empty: false,
            format: Format::Human,
            junit: None,
            record: false,
            replay: None,
            gdb: false,
            bins: Vec::new(),
            examples: Vec::new(),
            kernels: Vec::new(),
            release: false,
            verbose: false,
            params: Vec::new(),
            qemu_args: Vec::new(),
            qemu: None,
            cpu: None,
            accel: crate::Accel::Tcg,
        }
    }
}

/// Kernel binaries tested when none is named.
pub const DEFAULT_BINS: &[&str] = &["testkernel", "kernel"];

fn bad<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

/// `None` for `--help`.
pub fn parse_args<I, S>(args: I) -> Result<Option<Options>, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut o = Options::default();
    let mut args = args.into_iter().map(Into::into);
    let list = |v: &str| v.split(',').filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, Error> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => bad(format!("{name} needs a value ({what})")),
            }
        };
        let num = |v: &str, min: u64, max: u64| -> Result<u64, Error> {
            match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => bad(format!("{name}: `{v}` is not a number from {min} to {max}")),
            }
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--list" => o.list = true,
            "--exact" => o.exact = true,
            "--skip" => o.skip.push(value("pattern")?),
            "--tags" => o.tags.extend(list(&value("tags")?)),
            "--skip-tags" => o.skip_tags.extend(list(&value("tags")?)),
            "--cpu" => {
                let v = value("QEMU CPU model, e.g. max")?;
                if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == ',') {
                    return bad(format!("--cpu names a QEMU CPU model (-cpu {v}?); core counts are --smp {v}"));
                }
                crate::check_cpu_model(&v, "--cpu")?;
                o.cpu = Some(v);
            }
            "--qemu" => {
                let v = value("path to a qemu-system-x86_64")?;
                if v.is_empty() {
                    return bad("--qemu needs a path (or a program name in PATH)");
                }
                o.qemu = Some(PathBuf::from(v));
            }
            "--accel" => o.accel = crate::Accel::parse(&value("tcg, kvm or auto")?)?,
            "--smp" => {
                let v = value("core counts, e.g. 1,3,8")?;
                let mut counts = Vec::new();
                for c in v.split(',') {
                    counts.push(num(c, 1, crate::MAX_SMP as u64)? as u32);
                }
                o.smp = Some(counts);
            }
            "--count" => o.count = num(&value("N")?, 1, 1_000_000)? as u32,
            "--shuffle" => {
                o.shuffle = Some(match &inline {
                    Some(v) if v != "on" => num(v, 0, u64::MAX)?,
                    _ => random_seed(),
                })
            }
            "--seed" => o.seed = Some(num(&value("seed")?, 0, u64::MAX)?),
            "--jobs" | "-j" => o.jobs = num(&value("N")?, 1, 256)? as usize,
            "--timeout-multiplier" => {
                let v = value("factor")?;
                o.timeout_multiplier = match v.parse::<f64>() {
                    Ok(x) if x > 0.0 && x <= 1000.0 => x,
                    _ => return bad(format!("--timeout-multiplier: `{v}` is not a factor in (0, 1000]")),
                };
            }
            "--retries" => o.retries = num(&value("N")?, 0, 100)? as u32,
            "--isolate" => {
                let v = value("test or suite")?;
                match v.split_once('=') {
                    _ if v == "test" => o.isolate_suites = None,
                    _ if v == "suite" => o.isolate_suites = Some(Vec::new()),
                    Some(("suite", names)) => o.isolate_suites = Some(list(names)),
                    _ => return bad(format!("--isolate: `{v}` is not test, suite or suite=NAME,...")),
                }
            }
            "--format" => {
                o.format = match value("human, ktap or json")?.as_str() {
                    "human" => Format::Human,
                    "ktap" => Format::Ktap,
                    "json" => Format::Json,
                    v => return bad(format!("--format: `{v}` is not human, ktap or json")),
                }
            }
            "--json" => o.format = Format::Json,
            "--junit" => o.junit = Some(PathBuf::from(value("file")?)),
            "--record" => o.record = true,
            "--replay" => o.replay = Some(PathBuf::from(value("replay file")?)),
            "--gdb" => o.gdb = true,
            "--bin" => o.bins.push(value("kernel binary")?),
            "--example" => o.examples.push(value("example name")?),
            "--kernel" => o.kernels.push(PathBuf::from(value("kernel ELF")?)),
            "--release" => o.release = true,
            "-v" | "--verbose" => o.verbose = true,
            "--allow-empty" => o.allow_empty = true,
            _ if arg.starts_with('-') => return bad(format!("unknown option `{arg}` (see test --help)")),
            _ if arg.contains('=') && !arg.contains(['*', '?', ':', '[']) => {
                let (k, v) = crate::parse_param(&arg)?;
                if matches!(k.as_str(), "test" | "case" | "seed") {
                    return bad(format!("`{arg}`: test=, case= and seed= are set by the runner (use a FILTER or --seed)"));
                }
                o.params.push(format!("{k}={v}"));
            }
            _ => o.filters.push(arg),
        }
    }
    if o.gdb && o.replay.is_none() {
        return bad("--gdb replays a recording: use it with --replay FILE (and --exact NAME)");
    }
    if o.accel == crate::Accel::Kvm && (o.record || o.replay.is_some()) {
        return bad("--record and --replay need TCG (record/replay counts instructions): not with --accel kvm");
    }
    Ok(Some(o))
}

fn random_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    plan::mix(t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32))
}

/// Build (or find) every kernel the options name and list their tests.
pub fn collect_tests(opt: &Options, echo: bool) -> Result<Vec<Arc<TestInfo>>, Error> {
    let mut elfs: Vec<(String, PathBuf)> = Vec::new();
    for k in &opt.kernels {
        if !k.is_file() {
            return bad(format!("kernel ELF {} not found", k.display()));
        }
        let name = k.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        elfs.push((name, k.clone()));
    }
    for e in &opt.examples {
        elfs.push((e.clone(), build_example(e, opt.release, echo)?));
    }
    let bins: Vec<String> = if opt.bins.is_empty() && opt.examples.is_empty() && opt.kernels.is_empty() {
        DEFAULT_BINS.iter().map(|s| s.to_string()).collect()
    } else {
        opt.bins.clone()
    };
    for b in &bins {
        elfs.push((b.clone(), crate::build_kernel(b, opt.release, echo)?));
    }
    let mut tests = Vec::new();
    for (bin, elf) in &elfs {
        let mut listed = list::list_elf(elf, bin)?;
        // Declaration order (the linker's is arbitrary).
        listed.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        for t in listed {
            if let Some(prev) = tests.iter().find(|p: &&Arc<TestInfo>| p.name == t.name) {
                return bad(format!(
                    "test `{}` is declared twice: {}:{} ({}) and {}:{} ({})",
                    t.name, prev.file, prev.line, prev.bin, t.file, t.line, t.bin
                ));
            }
            tests.push(Arc::new(t));
        }
    }
    Ok(tests)
}

/// Build `kernel/examples/NAME.rs` for the kernel target; its ELF path.
pub fn build_example(name: &str, release: bool, echo: bool) -> Result<PathBuf, Error> {
    if name.is_empty() || name.contains(['/', '\\']) {
        return bad(format!("invalid example name `{name}`"));
    }
    let kdir = crate::kernel_dir()?;
    let mut cmd = crate::kernel_build_command(&kdir, "kernel", release);
    // kernel_build_command builds `--bin kernel`; build the example instead.
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut c = std::process::Command::new(cmd.get_program());
    c.current_dir(&kdir);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--bin" {
            skip = true;
            c.args(["--example", name]);
            continue;
        }
        c.arg(a);
    }
    cmd = c;
    let out = if echo { cmd.status().map(|s| (s, Vec::new())) } else { cmd.output().map(|o| (o.status, o.stderr)) }
        .map_err(|e| Error(format!("cannot run cargo: {e}")))?;
    if !out.0.success() {
        return bad(format!("building example {name} failed:\n{}", String::from_utf8_lossy(&out.1)));
    }
    let elf = kdir
        .join("target")
        .join(crate::KERNEL_TARGET)
        .join(if release { "release" } else { "debug" })
        .join("examples")
        .join(name);
    if !elf.is_file() {
        return bad(format!("example {name} built, but {} does not exist", elf.display()));
    }
    Ok(elf)
}

/// The command that replays a recording under the runner.
pub fn replay_command(t: &Trial, file: &Path, opt: &Options) -> String {
    format!("{} --replay {} [--gdb]", report::rerun_command(t, opt), file.display())
}

/// What a run produced.
pub struct RunSummary {
    pub results: Vec<TrialResult>,
    pub counts: report::Counts,
    pub elapsed: Duration,
}

/// Run the options' trials, printing as they finish. `out` gets the human lines (or the
/// machine format), `err` what goes to stderr.
pub fn run(opt: Options, out: &mut dyn Write, err: &mut dyn Write) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let tests = collect_tests(&opt, false)?;
    if opt.list {
        for t in &tests {
            let mut s = format!("{}: smp={}", t.name, t.smp.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
            if t.smp_only {
                s += " smp_only";
            }
            for (c, p) in &t.also {
                s += &format!(" +[smp={c} {}]", p.join(" "));
            }
            if !t.cases.is_empty() {
                s += &format!(" cases={}", t.cases.iter().map(|c| c.0.as_str()).collect::<Vec<_>>().join(","));
            }
            if !t.params.is_empty() {
                s += &format!(" params=\"{}\"", t.params.join(" "));
            }
            match t.expect {
                gmp_core::ktest::Expect::Pass => {}
                gmp_core::ktest::Expect::Panic => s += &format!(" should_panic={:?}", t.expect_text),
                gmp_core::ktest::Expect::Fatal => s += &format!(" fatal={:?}", t.expect_text),
            }
            if !t.tags.is_empty() {
                s += &format!(" tags={}", t.tags.join(","));
            }
            s += &format!(" ({} {}:{})", t.bin, t.file, t.line);
            let _ = writeln!(out, "{s}");
        }
        let trials = plan::plan(&tests, &opt, 0);
        let _ = writeln!(out, "{} tests, {} trials", tests.len(), trials.len());
        return Ok(RunSummary { results: Vec::new(), counts: report::Counts::default(), elapsed: start.elapsed() });
    }
    let base_seed = opt.seed.unwrap_or_else(random_seed);
    let trials = plan::plan(&tests, &opt, base_seed);
    if trials.is_empty() && opt.allow_empty {
        let _ = writeln!(out, "\nrunning 0 trials\n\n0 passed, 0 failed");
        return Ok(RunSummary { results: Vec::new(), counts: report::Counts::default(), elapsed: start.elapsed() });
    }
    if trials.is_empty() {
        return bad(format!(
            "no test matches{} ({} tests in {}; see --list)",
            if opt.filters.is_empty() { String::new() } else { format!(" {}", opt.filters.join(" ")) },
            tests.len(),
            tests.iter().map(|t| t.bin.as_str()).collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(file) = &opt.replay {
        return replay(&opt, &trials, file, out, err);
    }
    let images = exec::images_for(&trials)?;
    // People read `human`; machines read `machine` (stdout in `main`).
    let mut sink = std::io::sink();
    let (human, machine): (&mut dyn Write, &mut dyn Write) =
        if opt.format == Format::Human { (out, &mut sink) } else { (err, out) };
    let _ = writeln!(
        human,
        "\nrunning {} trials of {} tests ({} at a time{}{})",
        trials.len(),
        tests.len(),
        opt.jobs,
        match opt.shuffle {
            Some(s) => format!(", shuffled with --shuffle={s}"),
            None => String::new(),
        },
        match opt.seed {
            Some(s) => format!(", seed {s}"),
            None => String::new(),
        }
    );
    let jobs = exec::jobs_for(&trials, opt.isolate_suites.as_deref());
    let (tx, rx) = mpsc::channel();
    let opt = Arc::new(opt);
    let trials = Arc::new(trials);
    let runner = {
        let (trials, opt) = (trials.clone(), opt.clone());
        let images = Arc::new(images);
        std::thread::spawn(move || exec::run_all(trials, images, opt, jobs, tx))
    };
    let mut results: Vec<TrialResult> = Vec::new();
    if opt.format == Format::Json {
        let _ = writeln!(machine, "{}", report::json_event("start", None, None, None));
    }
    for r in rx {
        let _ = writeln!(human, "{}", report::human_line(&r));
        if opt.verbose {
            for l in &r.logs {
                let _ = writeln!(human, "    # {l}");
            }
        }
        let _ = human.flush();
        if opt.format == Format::Json {
            // Events stream as trials finish.
            for e in report::json_trial(&r) {
                let _ = writeln!(machine, "{e}");
            }
            let _ = machine.flush();
        }
        results.push(r);
    }
    let _ = runner.join();
    results.sort_by_key(|r| r.trial.index);
    let counts = report::Counts::of(&results);
    let elapsed = start.elapsed();

    let failures: Vec<&TrialResult> = results.iter().filter(|r| matches!(r.verdict, Verdict::Fail(_) | Verdict::Flaky)).collect();
    if !failures.is_empty() {
        let _ = writeln!(human, "\nfailures:\n");
        for r in &failures {
            let _ = writeln!(human, "{}", report::failure_details(r, &opt));
        }
        let _ = writeln!(human, "failures:");
        for r in &failures {
            let _ = writeln!(human, "    {} ({})", r.trial.name, exec::status_word(r.verdict));
        }
    }
    match opt.format {
        Format::Ktap => {
            let _ = write!(machine, "{}", report::ktap(&results));
        }
        Format::Json => {
            let action = if counts.failed > 0 { "fail" } else { "pass" };
            let _ = writeln!(machine, "{}", report::json_event(action, None, Some(elapsed), None));
        }
        Format::Human => {}
    }
    if let Some(path) = &opt.junit {
        std::fs::write(path, report::junit(&results, elapsed))
            .map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
    }
    let _ = writeln!(
        human,
        "\ntest result: {}. {}; finished in {:.1} s\n{}",
        if counts.failed > 0 { "FAILED" } else { "ok" },
        counts.line(),
        elapsed.as_secs_f64(),
        counts.line()
    );
    let _ = human.flush();
    let _ = machine.flush();
    Ok(RunSummary { results, counts, elapsed })
}

/// `--replay FILE`: boot the one selected trial in replay mode.
fn replay(opt: &Options, trials: &[Trial], file: &Path, out: &mut dyn Write, _err: &mut dyn Write) -> Result<RunSummary, Error> {
    let start = Instant::now();
    if trials.len() != 1 || trials[0].smp != 1 {
        return bad(format!(
            "--replay needs exactly one single-core trial (use --exact NAME[...,smp=1]); {} selected",
            trials.len()
        ));
    }
    let t = &trials[0];
    let images = exec::images_for(trials)?;
    let img = &images[&(t.test.elf.clone(), t.test.uefi)];
    let mut cfg = exec::boot_config(t, &t.test.name, t.timeout * 4, opt);
    cfg.record_replay = Some(record::rr_args(img, file, "replay"));
    cfg.gdb = opt.gdb;
    if opt.gdb {
        cfg.timeout = None;
        let _ = writeln!(out, "gmpos: replaying {} under gdb; attach with:", file.display());
        let _ = writeln!(out, "gmpos:   gdb {} -ex 'target remote :1234'   (reverse-stepi / reverse-continue work)", t.test.elf.display());
    }
    let o = crate::run_image(&cfg, img, true)?;
    let (verdict, message, _) = exec::judge(t, &o);
    let _ = writeln!(out, "\nreplay of {}: {} {}", t.name, exec::status_word(verdict), message);
    let r = TrialResult {
        trial: t.clone(),
        verdict,
        message,
        attempts: 1,
        elapsed: o.elapsed,
        logs: Vec::new(),
        tail: String::new(),
        qemu: o.command,
        xfail: false,
        replay: None,
    };
    let results = vec![r];
    let counts = report::Counts::of(&results);
    let _ = writeln!(out, "{}", counts.line());
    Ok(RunSummary { results, counts, elapsed: start.elapsed() })
}

/// The `test` subcommand: returns the process exit code.
pub fn main<I: IntoIterator<Item = String>>(args: I) -> u8 {
    let mut opt = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("gmpos test: {e}");
            return 64;
        }
    };
    if let Ok(extra) = std::env::var("GMPOS_QEMU_ARGS") {
        opt.qemu_args.extend(extra.split_whitespace().map(String::from));
    }
    // The QEMU program (--qemu, else GMPOS_QEMU), the -cpu model (--cpu, else GMPOS_CPU) and
    // the accelerator, checked once before anything is built.
    let mut q = crate::RunConfig {
        cpu: opt.cpu.take(),
        accel: opt.accel,
        record_replay: (opt.record || opt.replay.is_some()).then(Vec::new),
        ..Default::default()
    };
    let checked = match opt.qemu.take() {
        Some(p) => crate::check_qemu_program(&p, "--qemu").map(Some),
        None => Ok(None),
    };
    match checked.and_then(|p| {
        q.qemu = p;
        crate::apply_qemu_env(&mut q)
    }) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("gmpos test: {e}");
            return 64;
        }
    }
    match crate::resolve_accel(&q) {
        Ok((accel, note)) => {
            if let Some(note) = note {
                eprintln!("gmpos test: {note}");
            }
            opt.accel = accel;
        }
        Err(e) => {
            eprintln!("gmpos test: error: {e}");
            return 3;
        }
    }
    (opt.qemu, opt.cpu) = (q.qemu, q.cpu);
    if opt.qemu.is_some() || opt.cpu.is_some() || opt.accel != crate::Accel::Tcg {
        eprintln!(
            "gmpos test: QEMU {}{}{}",
            opt.qemu.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| crate::DEFAULT_QEMU.into()),
            opt.cpu.as_deref().map(|c| format!(", -cpu {c}")).unwrap_or_default(),
            if opt.accel == crate::Accel::Kvm { ", KVM" } else { "" }
        );
    }
    if !opt.list {
        eprintln!("gmpos test: building the kernel(s)...");
    }
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    match run(opt, &mut stdout, &mut stderr) {
        Ok(s) => u8::from(s.counts.failed > 0),
        Err(e) => {
            eprintln!("gmpos test: error: {e}");
            3
        }
    }
}

#[cfg(test)]
mod tests;
