//! `gmpos-campaign`: the random campaign that hunts rare scheduler races.
//!
//! ```text
//! ./run-qemu.sh torture [--duration 30m] [--jobs 2] [--seed S] [--max-smp 8] [--out DIR]
//!                       [--smp N[,N...]] [--fuzz-params N] [--only NAME[,NAME...]]
//! ```
//!
//! It builds the testkernel once, then boots it again and again until the
//! duration is spent, `--jobs` QEMUs at a time (host contention is what
//! exposes races), each boot with a scenario drawn at random (the torture
//! scenario most often), a random core count from 1 to `--max-smp`, random
//! `schedrandom`, `hz`, `forcepreemptns` and `haltpoll`, and a random `seed`. Every
//! failure (a failed assertion, a fatal error, a hang, a triple fault) keeps
//! its serial log in the output folder with the one command that boots it
//! again. The summary counts boots, failures by kind and the longest run.
//!
//! `--fuzz-params N` adds N boots with random boot-parameter sets, valid and
//! invalid: each must end in a pass or in a failure whose output names the
//! bad parameter, never a hang, a triple fault or a silent failure.
//!
//! Exit status: 0 when every boot went as expected, 1 otherwise, 64 for bad
//! arguments, 3 when the kernel cannot be built.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boot::{strip_cpu, Outcome, RunConfig, Status};

const USAGE: &str = "usage: ./run-qemu.sh torture [--duration D] [--jobs N] [--seed S] [--max-smp N] [--smp LIST] [--out DIR] [--fuzz-params N] [--only NAMES]

Boots the testkernel's torture scenario and other scenarios again and again with random core
counts and scheduler settings, N QEMUs at a time, until D has passed.

  --duration D      how long to run: 90s, 30m, 1h (default 30m)
  --jobs N          QEMUs at a time (default 2)
  --seed S          the campaign's own seed (default: from the clock); printed, so a campaign
                    can be repeated with the same draws
  --max-smp N       largest core count drawn (default 8)
  --smp LIST        draw core counts only from this list (e.g. 3,8) instead of 1..=max-smp
  --out DIR         where failure logs and the summary go (default target/campaign/<time>)
  --fuzz-params N   also run N boots with random (valid and invalid) boot parameters
  --only NAMES      draw only these scenarios (comma-separated)

environment: GMPOS_QEMU (the QEMU program) and GMPOS_CPU (its -cpu model), as for the runner";

/// A scenario of the testkernel that passes under any scheduler settings
/// and any core count from `min_smp` up, with its weight in the draw.
struct Scenario {
    name: &'static str,
    weight: u32,
    min_smp: u32,
}

const SCENARIOS: &[Scenario] = &[
    Scenario { name: "torture::torture", weight: 12, min_smp: 1 },
    Scenario { name: "sched::spawn_storm", weight: 2, min_smp: 1 },
    Scenario { name: "sched::spawn_tree", weight: 1, min_smp: 1 },
    Scenario { name: "sched::yield_progress", weight: 1, min_smp: 1 },
    Scenario { name: "sched::parallelism", weight: 1, min_smp: 1 },
    Scenario { name: "sched::lock_os_thread", weight: 2, min_smp: 1 },
    Scenario { name: "sched::lock_os_thread_stw", weight: 2, min_smp: 1 },
    Scenario { name: "sched::gomaxprocs_churn", weight: 3, min_smp: 1 },
    Scenario { name: "preempt::many_sleepers", weight: 2, min_smp: 1 },
    Scenario { name: "preempt::syscall_handoff", weight: 2, min_smp: 1 },
    Scenario { name: "preempt::preempt_async", weight: 1, min_smp: 1 },
    Scenario { name: "preempt::check_under_preemption", weight: 1, min_smp: 1 },
    Scenario { name: "chan::*", weight: 2, min_smp: 1 },
    Scenario { name: "regress::stw_syscallblock", weight: 2, min_smp: 1 },
    Scenario { name: "regress::stw_wakep_churn", weight: 2, min_smp: 1 },
    Scenario { name: "regress::stw_entersyscall_aba", weight: 1, min_smp: 1 },
    // Locks a core and blocks until main sends: with one core nothing else
    // can run, which the runtime reports as a deadlock (README, LockOSThread).
    Scenario { name: "regress::locked_spinning_leak", weight: 1, min_smp: 2 },
    Scenario { name: "regress::syscall_locked", weight: 1, min_smp: 1 },
    Scenario { name: "regress::syscall_preempt", weight: 1, min_smp: 1 },
    Scenario { name: "regress::timer_order_exact", weight: 1, min_smp: 1 },
    // The labs' QEMU tests of the code behind the spinning-M protocol (lab 4), channels and
    // select (lab 6) and GOMAXPROCS with stop-the-world (lab 7): each checks its own result.
    Scenario { name: "lab4::wake_idle_cores", weight: 1, min_smp: 1 },
    Scenario { name: "lab6::*", weight: 1, min_smp: 1 },
    Scenario { name: "lab7::gomaxprocs_resize", weight: 1, min_smp: 1 },
];

/// splitmix64: the campaign's draws. The state steps by the golden-ratio
/// increment and each draw is the finaliser `gmp_core::rand::mix64`, which
/// adds that increment itself before mixing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let z = gmp_core::rand::mix64(self.0);
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

struct Options {
    duration: Duration,
    jobs: usize,
    seed: u64,
    max_smp: u32,
    /// `--smp`: the core counts to draw from (empty: 1..=max_smp).
    smp: Vec<u32>,
    out: Option<PathBuf>,
    fuzz_params: u64,
    only: Vec<String>,
}

impl Options {
    /// The core counts drawn, as the summary prints them: `1..=8` or `3,8`.
    fn cores(&self) -> String {
        if self.smp.is_empty() {
            format!("1..={}", self.max_smp)
        } else {
            self.smp.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
        }
    }
}

/// `90s`, `30m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("--duration {s:?}: expected a number with s, m or h (e.g. 30m)"))?;
    if n == 0 {
        return Err(format!("--duration {s:?}: must be more than zero"));
    }
    n.checked_mul(mult)
        .filter(|&secs| secs <= 7 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("--duration {s:?}: at most 7 days"))
}

fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        duration: Duration::from_secs(1800),
        jobs: 2,
        seed: 0,
        max_smp: 8,
        smp: Vec::new(),
        out: None,
        fuzz_params: 0,
        only: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        let num = |name: &str, v: String, lo: u64, hi: u64| -> Result<u64, String> {
            match v.parse::<u64>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n),
                _ => Err(format!("{name} {v:?}: expected a number in {lo}..={hi}")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--duration" => o.duration = parse_duration(&value("--duration")?)?,
            "--jobs" => o.jobs = num("--jobs", value("--jobs")?, 1, 64)? as usize,
            "--seed" => o.seed = num("--seed", value("--seed")?, 0, u64::MAX)?,
            "--max-smp" => o.max_smp = num("--max-smp", value("--max-smp")?, 1, 64)? as u32,
            "--smp" => {
                let v = value("--smp")?;
                for n in v.split(',').filter(|n| !n.is_empty()) {
                    o.smp.push(num("--smp", n.to_string(), 1, 64)? as u32);
                }
                if o.smp.is_empty() {
                    return Err("--smp needs at least one core count (e.g. 3,8)".into());
                }
            }
            "--out" => o.out = Some(PathBuf::from(value("--out")?)),
            "--fuzz-params" => o.fuzz_params = num("--fuzz-params", value("--fuzz-params")?, 0, 1_000_000)?,
            "--only" => {
                let v = value("--only")?;
                for n in v.split(',').filter(|n| !n.is_empty()) {
                    if !SCENARIOS.iter().any(|s| s.name == n) {
                        let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                        return Err(format!("--only: unknown scenario {n:?} (known: {})", known.join(", ")));
                    }
                    o.only.push(n.to_string());
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let allowed = allowed_smp(&o);
    for n in &o.only {
        let sc = SCENARIOS.iter().find(|s| s.name == n).expect("checked above");
        if !allowed.iter().any(|&c| c >= sc.min_smp) {
            return Err(format!("--only {n}: it needs {} or more cores, and no allowed core count has that", sc.min_smp));
        }
    }
    Ok(Some(o))
}

/// One boot to make: a scenario (or a parameter-fuzz set) and its settings.
#[derive(Clone)]
struct Trial {
    scenario: String,
    smp: u32,
    params: Vec<(String, String)>,
    timeout: Duration,
    /// A parameter-fuzz boot: judged by `judge_fuzz`.
    fuzz: bool,
}

/// What every boot shares: the QEMU program and `-cpu` model from `GMPOS_QEMU` / `GMPOS_CPU`
/// (set once in `main`, before the first boot).
static QEMU: std::sync::OnceLock<(Option<PathBuf>, Option<String>)> = std::sync::OnceLock::new();

fn qemu_choice() -> &'static (Option<PathBuf>, Option<String>) {
    QEMU.get_or_init(|| (None, None))
}

impl Trial {
    fn command(&self) -> String {
        let mut s = format!("./run-qemu.sh --bin testkernel --smp {} --timeout {}", self.smp, self.timeout.as_secs());
        let (qemu, cpu) = qemu_choice();
        if let Some(q) = qemu {
            s += &format!(" --qemu {}", shell_quote(&q.display().to_string()));
        }
        if let Some(c) = cpu {
            s += &format!(" --cpu {}", shell_quote(c));
        }
        for (k, v) in &self.params {
            s += &format!(" {}", shell_quote(&format!("{k}={v}")));
        }
        s
    }
}

/// A word as the shell reads it back: quoted when it holds anything but
/// `[A-Za-z0-9_.=/-]`.
fn shell_quote(w: &str) -> String {
    if !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.=/-".contains(&b)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The core counts a trial may be drawn with: `--smp`'s list, or 1..=max_smp.
fn allowed_smp(o: &Options) -> Vec<u32> {
    if o.smp.is_empty() {
        (1..=o.max_smp).collect()
    } else {
        o.smp.clone()
    }
}

fn draw_trial(r: &mut Rng, o: &Options) -> Trial {
    let allowed = allowed_smp(o);
    let pool: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|s| o.only.is_empty() || o.only.iter().any(|n| n == s.name))
        .filter(|s| allowed.iter().any(|&n| n >= s.min_smp))
        .collect();
    let total: u64 = pool.iter().map(|s| s.weight as u64).sum();
    let mut x = r.below(total);
    let mut sc = pool[0];
    for s in &pool {
        if x < s.weight as u64 {
            sc = s;
            break;
        }
        x -= s.weight as u64;
    }
    let fits: Vec<u32> = allowed.iter().copied().filter(|&n| n >= sc.min_smp).collect();
    let smp = fits[r.below(fits.len() as u64) as usize];
    let mut params = vec![("test".to_string(), sc.name.to_string())];
    if r.below(2) == 0 {
        params.push(("schedrandom".into(), "1".into()));
    }
    if r.below(2) == 0 {
        params.push(("hz".into(), r.range(100, 4000).to_string()));
    }
    if r.below(2) == 0 {
        params.push(("forcepreemptns".into(), (r.range(1, 30) * 1_000_000 + r.below(1_000_000)).to_string()));
    }
    let seed = r.next() | 1;
    params.push(("seed".into(), seed.to_string()));
    // Half the boots park their cores with halt polling (lab 8's `haltpoll=1`). The choice is
    // the seed's second bit rather than a draw of its own, so that adding it kept the draws,
    // and so the seeds quoted in earlier campaigns' reports, unchanged.
    if seed & 2 != 0 {
        params.push(("haltpoll".into(), "1".into()));
    }
    let mut timeout = Duration::from_secs(240 + 30 * smp as u64);
    if sc.name == "torture::torture" {
        let d = r.range(8, 25);
        params.push(("duration".into(), d.to_string()));
        timeout += Duration::from_secs(d * 3);
    }
    Trial { scenario: sc.name.to_string(), smp, params, timeout, fuzz: false }
}

/// A random boot-parameter set: mostly valid keys, some bad values, some
/// unknown keys, some too many. Always boots the quick `smp_online`.
fn draw_fuzz_trial(r: &mut Rng) -> Trial {
    const KEYS: &[&str] = &[
        "gomaxprocs",
        "schedtrace",
        "scheddetail",
        "schedrandom",
        "heap",
        "forcepreemptns",
        "hz",
        "asyncpreemptoff",
        "seed",
        "duration",
        "bench",
        "haltpoll",
    ];
    let smp = r.range(1, 4) as u32;
    let mut params = vec![("test".to_string(), "bringup::smp_online".to_string())];
    for _ in 0..r.below(6) {
        let key = if r.below(10) == 0 {
            // An unknown key the runner accepts ([a-z0-9_]+).
            let len = r.range(1, 12);
            (0..len).map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789_"[r.below(37) as usize] as char).collect()
        } else {
            KEYS[r.below(KEYS.len() as u64) as usize].to_string()
        };
        let value = match r.below(8) {
            0 => r.next().to_string(),
            1 => r.below(20).to_string(),
            2 => (r.below(5000) * 1_000).to_string(),
            3 => format!("{}{}", r.below(2048), ["K", "M", "G", "k", "x", ""][r.below(6) as usize]),
            4 => ["0", "1", "2", "-1", "true", "", " 7 ", "0x10"][r.below(8) as usize].to_string(),
            5 => "9".repeat(r.range(1, 30) as usize),
            6 => (0..r.range(1, 20)).map(|_| (b'!' + r.below(90) as u8) as char).filter(|c| *c != ',').collect(),
            _ => r.range(1, 100_000_000).to_string(),
        };
        if key == "bench" || key == "heap" && r.below(3) != 0 {
            // Keep most boots bootable: a huge heap on a small guest
            // is a legitimate failure, but a boring one.
            continue;
        }
        params.push((key, value));
    }
    Trial { scenario: "fuzz-params".into(), smp, params, timeout: Duration::from_secs(120), fuzz: true }
}

/// The kind of a failure, for grouping: the status and the first fatal or
/// panic line, with numbers replaced by N.
fn failure_kind(o: &Outcome) -> String {
    let line = o
        .serial
        .lines()
        .map(strip_cpu)
        .find(|l| l.starts_with("fatal error:") || l.starts_with("panic:") || l.contains("unknown test"))
        .unwrap_or("");
    let mut k = String::new();
    let mut last_digit = false;
    for c in line.chars().take(120) {
        if c.is_ascii_digit() {
            if !last_digit {
                k.push('N');
            }
            last_digit = true;
        } else {
            k.push(c);
            last_digit = false;
        }
    }
    let status = match o.status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Timeout => "TIMEOUT",
        Status::NoExit(0) if boot::qemu_killed_by_signal(&o.qemu_stderr).is_some() => "QEMU stopped by a signal from outside",
        Status::NoExit(_) => "no debug exit (triple fault?)",
        Status::BootFailure(_) => "boot failure (before the kernel started)",
    };
    if k.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {k}")
    }
}


/// Did a scenario boot go as it should? (None: yes; Some(kind): no.)
fn judge(t: &Trial, o: &Outcome) -> Option<String> {
    if t.fuzz {
        return judge_fuzz(t, o);
    }
    // One test prints `test NAME: PASS (..)`; a glob (a suite in one boot)
    // ends with `# ktest done: N run, 0 failed`.
    let passed = if t.scenario.contains('*') {
        o.serial.lines().any(|l| strip_cpu(l).starts_with("# ktest done: ") && l.ends_with(", 0 failed"))
    } else {
        o.serial.contains(&format!("test {}: PASS", t.scenario))
    };
    if o.status == Status::Pass && passed {
        None
    } else {
        Some(failure_kind(o))
    }
}

/// A parameter-fuzz boot must pass, or fail with a message that names a
/// parameter it was given; never hang, triple fault, or fail silently.
fn judge_fuzz(t: &Trial, o: &Outcome) -> Option<String> {
    match o.status {
        Status::Pass => None,
        Status::Fail => {
            let named = t.params.iter().any(|(k, _)| {
                o.serial.lines().any(|l| {
                    let l = strip_cpu(l);
                    (l.contains("boot parameter") || l.contains(&format!("{k}="))) && l.contains(k.as_str())
                })
            });
            // A legitimate runtime failure caused by a valid but extreme
            // setting (a tiny heap) is reported as a fatal error.
            let fatal = o.serial.lines().any(|l| strip_cpu(l).starts_with("fatal error: out of memory"));
            if named || fatal {
                None
            } else {
                Some(format!("fuzz-params: failed without naming a parameter: {}", failure_kind(o)))
            }
        }
        _ => Some(format!("fuzz-params: {}", failure_kind(o))),
    }
}

struct Record {
    trial: Trial,
    status: String,
    elapsed: Duration,
    failure: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(a) => a,
        Err(bad) => {
            eprintln!("gmpos-campaign: argument {bad:?} is not valid UTF-8");
            return ExitCode::from(64);
        }
    };
    let o = match parse_options(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gmpos-campaign: {e}\n{}", USAGE.lines().next().unwrap_or_default());
            return ExitCode::from(64);
        }
    };
    // GMPOS_QEMU / GMPOS_CPU, as for the runner.
    let mut base = RunConfig::default();
    if let Err(e) = boot::apply_qemu_env(&mut base) {
        eprintln!("gmpos-campaign: {e}");
        return ExitCode::from(64);
    }
    let _ = QEMU.set((base.qemu, base.cpu));
    let seed = if o.seed != 0 {
        o.seed
    } else {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
    };
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let out = match (&o.out, boot::repo_dir()) {
        (Some(d), _) => d.clone(),
        (None, Ok(root)) => root.join("target").join("campaign").join(started.to_string()),
        (None, Err(e)) => {
            eprintln!("gmpos-campaign: {e}");
            return ExitCode::from(3);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("gmpos-campaign: cannot create {}: {e}", out.display());
        return ExitCode::from(3);
    }
    eprintln!(
        "gmpos-campaign: seed {seed}, {} s, {} QEMUs at a time, {} cores, {} parameter-fuzz boots; logs in {}",
        o.duration.as_secs(),
        o.jobs,
        o.cores(),
        o.fuzz_params,
        out.display()
    );
    let image = match boot::build_kernel("testkernel", false, true).and_then(|elf| boot::build_image(&elf, false)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gmpos-campaign: cannot build the testkernel: {e}");
            return ExitCode::from(3);
        }
    };

    // The draws are made up front from the seed, in order, so that the same
    // seed gives the same sequence of trials (which ones run depends on time).
    let rng = Arc::new(Mutex::new(Rng(seed)));
    let fuzz_left = Arc::new(AtomicU64::new(o.fuzz_params));
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let boots = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let opts = Arc::new(o);
    let mut handles = Vec::new();
    for _ in 0..opts.jobs {
        let (rng, fuzz_left, records, boots, opts, image, out) =
            (rng.clone(), fuzz_left.clone(), records.clone(), boots.clone(), opts.clone(), image.clone(), out.clone());
        handles.push(std::thread::spawn(move || loop {
            let trial = {
                let mut r = rng.lock().unwrap();
                // Parameter fuzzing first (it is bounded), then scenarios
                // until the time is spent.
                let take_fuzz = fuzz_left.load(Ordering::SeqCst) > 0;
                if take_fuzz {
                    // Under the rng lock: the only writer.
                    fuzz_left.fetch_sub(1, Ordering::SeqCst);
                    draw_fuzz_trial(&mut r)
                } else if t0.elapsed() < opts.duration {
                    draw_trial(&mut r, &opts)
                } else {
                    return;
                }
            };
            let n = boots.fetch_add(1, Ordering::SeqCst) + 1;
            let rec = run_trial(&trial, &image, n, &out);
            let line = match &rec.failure {
                None => format!("ok   {:>6.1} s", rec.elapsed.as_secs_f64()),
                Some(k) => format!("FAIL {:>6.1} s  {k}", rec.elapsed.as_secs_f64()),
            };
            eprintln!("[{n:>4} {:>5} s] {line}  ({})", t0.elapsed().as_secs(), trial.command());
            records.lock().unwrap().push(rec);
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    let records = std::mem::take(&mut *records.lock().unwrap());
    let summary = summarize(&records, seed, t0.elapsed(), &opts);
    println!("{summary}");
    let _ = std::fs::write(out.join("summary.txt"), &summary);
    let failed = records.iter().filter(|r| r.failure.is_some()).count();
    println!("{} passed, {} failed", records.len() - failed, failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_trial(t: &Trial, image: &Path, n: u64, out: &Path) -> Record {
    let cfg = RunConfig {
        bin: "testkernel".into(),
        smp: t.smp,
        timeout: Some(t.timeout),
        params: t.params.clone(),
        qemu: qemu_choice().0.clone(),
        cpu: qemu_choice().1.clone(),
        ..RunConfig::default()
    };
    match boot::run_image(&cfg, image, false) {
        Ok(o) => {
            let failure = judge(t, &o);
            if let Some(kind) = &failure {
                let safe: String = t.scenario.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
                let log = out.join(format!("fail-{n:04}-{safe}.log"));
                let text = format!(
                    "# {kind}\n# status: {}\n# elapsed: {:.1} s\n# reproduce: {}\n# qemu: {}\n{}\n--- serial ---\n{}",
                    o.status,
                    o.elapsed.as_secs_f64(),
                    t.command(),
                    o.command,
                    o.qemu_stderr,
                    o.serial
                );
                let _ = std::fs::write(&log, text);
                eprintln!("gmpos-campaign: failure log {}\n{}", log.display(), o.last_lines(25));
            }
            Record { trial: t.clone(), status: o.status.to_string(), elapsed: o.elapsed, failure }
        }
        // A parameter set the runner refuses with a message naming the
        // parameter is a correct outcome of parameter fuzzing.
        Err(e) if t.fuzz && t.params.iter().any(|(k, _)| e.0.contains(k.as_str())) => {
            Record { trial: t.clone(), status: format!("refused by the runner: {e}"), elapsed: Duration::ZERO, failure: None }
        }
        Err(e) => Record {
            trial: t.clone(),
            status: "boot error".into(),
            elapsed: Duration::ZERO,
            failure: Some(format!("boot error: {e}")),
        },
    }
}

fn summarize(records: &[Record], seed: u64, wall: Duration, o: &Options) -> String {
    let mut s = String::new();
    let failed: Vec<&Record> = records.iter().filter(|r| r.failure.is_some()).collect();
    s += &format!(
        "campaign summary: seed {seed}, {} boots in {:.0} s ({} QEMUs at a time, {} cores), {} failed\n",
        records.len(),
        wall.as_secs_f64(),
        o.jobs,
        o.cores(),
        failed.len()
    );
    let mut by_scenario: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for r in records {
        let e = by_scenario.entry(r.trial.scenario.as_str()).or_default();
        e.0 += 1;
        if r.failure.is_some() {
            e.1 += 1;
        }
    }
    s += "boots by scenario (failed):";
    for (k, (n, f)) in &by_scenario {
        s += &format!(" {k}={n}({f})");
    }
    s += "\n";
    let mut by_smp: BTreeMap<u32, u32> = BTreeMap::new();
    for r in records {
        *by_smp.entry(r.trial.smp).or_default() += 1;
    }
    s += "boots by core count:";
    for (k, n) in &by_smp {
        s += &format!(" {k}:{n}");
    }
    s += "\n";
    if let Some(l) = records.iter().max_by_key(|r| r.elapsed) {
        s += &format!("longest run: {:.1} s ({}), {}\n", l.elapsed.as_secs_f64(), l.status, l.trial.command());
    }
    let mut kinds: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in &failed {
        kinds.entry(r.failure.as_deref().unwrap_or("")).or_default().push(r);
    }
    for (k, rs) in kinds {
        s += &format!("failure x{}: {k}\n  reproduce: {}\n", rs.len(), rs[0].trial.command());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999h").is_err());
        assert!(parse_duration("5 m").is_err());
    }

    #[test]
    fn options() {
        let a = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let o = parse_options(&a("--duration 2m --jobs=3 --seed 7 --max-smp 5 --only torture::torture,sched::spawn_tree")).unwrap().unwrap();
        assert_eq!((o.duration.as_secs(), o.jobs, o.seed, o.max_smp), (120, 3, 7, 5));
        assert_eq!(o.only, vec!["torture::torture", "sched::spawn_tree"]);
        assert!(parse_options(&a("--jobs 0")).is_err());
        assert!(parse_options(&a("--jobs")).err().unwrap().contains("needs a value"));
        assert!(parse_options(&a("--only nope")).err().unwrap().contains("unknown scenario"));
        assert!(parse_options(&a("--frobnicate")).is_err());
        let o = parse_options(&a("--smp 3,8")).unwrap().unwrap();
        assert_eq!(o.smp, vec![3, 8]);
        let mut r = Rng(1);
        for _ in 0..100 {
            assert!([3, 8].contains(&draw_trial(&mut r, &o).smp));
        }
        assert!(parse_options(&a("--smp 0")).is_err());
        assert!(parse_options(&a("--smp ,")).err().unwrap().contains("at least one"));
        // A scenario that needs 2 cores is never drawn at 1, and asking for it alone at 1 is an error.
        let o = parse_options(&a("--max-smp 2")).unwrap().unwrap();
        let mut r = Rng(3);
        for _ in 0..2000 {
            let t = draw_trial(&mut r, &o);
            assert!(t.scenario != "regress::locked_spinning_leak" || t.smp >= 2);
        }
        assert!(parse_options(&a("--max-smp 1 --only regress::locked_spinning_leak")).err().unwrap().contains("needs 2 or more cores"));
        assert!(parse_options(&a("--smp 1,3 --only regress::locked_spinning_leak")).is_ok());
        assert!(parse_options(&a("--help")).unwrap().is_none());
    }

    #[test]
    fn draws_are_reproducible_and_in_range() {
        let o = parse_options(&[]).unwrap().unwrap();
        let (mut a, mut b) = (Rng(42), Rng(42));
        let mut polled = 0;
        for _ in 0..500 {
            let (x, y) = (draw_trial(&mut a, &o), draw_trial(&mut b, &o));
            assert_eq!(x.command(), y.command());
            assert!((1..=8).contains(&x.smp));
            let has = |key: &str| x.params.iter().any(|(k, _)| k == key);
            polled += has("haltpoll") as u32;
            for (k, v) in &x.params {
                boot::validate_param_key(k).unwrap();
                boot::validate_param_value(k, v).unwrap();
            }
            let f = draw_fuzz_trial(&mut a);
            assert_eq!(f.command(), draw_fuzz_trial(&mut b).command());
            assert!(f.params.len() <= 8);
            for (k, v) in &f.params {
                boot::validate_param_key(k).unwrap_or_else(|e| panic!("{k}: {e}"));
                // Values may be rejected by the runner (a comma never is
                // drawn); the boot then fails with the runner's message.
                let _ = v;
            }
        }
        // About half the boots poll before they halt (the seed's second bit).
        assert!((150..=350).contains(&polled), "{polled} of 500 boots drew haltpoll=1");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("hz=100"), "hz=100");
        assert_eq!(shell_quote("asyncpreemptoff= 7 "), "'asyncpreemptoff= 7 '");
        assert_eq!(shell_quote("k=a'b"), "'k=a'\\''b'");
    }

    #[test]
    fn failure_kinds_group_by_message() {
        let o = |status, serial: &str| Outcome {
            status,
            serial: serial.into(),
            qemu_stderr: String::new(),
            elapsed: Duration::ZERO,
            command: String::new(),
        };
        let a = failure_kind(&o(Status::Fail, "[cpu1] x\n[cpu1] fatal error: casgstatus: goroutine 18 bad\n"));
        let b = failure_kind(&o(Status::Fail, "[cpu3] fatal error: casgstatus: goroutine 7 bad\n"));
        assert_eq!(a, b);
        assert_eq!(a, "fail: fatal error: casgstatus: goroutine N bad");
        assert_eq!(failure_kind(&o(Status::Timeout, "")), "TIMEOUT");
    }
}
