//! The grader: runs a lab's graded tests on a tree and prints one line per test, then
//! `Score: X/Y` (as xv6's gradelib does).

use crate::spec::{Counters, Kind, Lab, RatioRun};
use regex::Regex;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    /// The tree to grade.
    pub tree: PathBuf,
    pub json: Option<PathBuf>,
    pub hidden: Option<PathBuf>,
    /// Skip the QEMU tests (their points count as lost, and the line says so).
    pub no_qemu: bool,
    /// Runs of each QEMU test (default: the lab's).
    pub runs: Option<u32>,
    /// Target directory of the host and loom builds (default: the tree's `target`).
    pub target_dir: Option<PathBuf>,
    /// Target directory of the loom build (default: the host one's `loom`).
    pub loom_target_dir: Option<PathBuf>,
    /// Less output (for `check`): no per-test lines.
    pub quiet: bool,
}

pub struct Outcome {
    pub score: u32,
    pub max: u32,
    /// Per graded line: (name, points, max, ok, note).
    pub lines: Vec<(String, u32, u32, bool, String)>,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// A command that runs cargo in `tree`: the build variables of the environment removed, and
/// `GMPOS_ROOT` set to the tree. (Cargo's `[env]` in the tree's `.cargo/config.toml` does not
/// override a `GMPOS_ROOT` inherited from the cargo that started this grader, so without it the
/// runner in the tree would build and boot *this* checkout's kernel.)
fn in_tree<'a>(cmd: &'a mut Command, tree: &Path) -> &'a mut Command {
    for v in boot::SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    let abs = tree.canonicalize().unwrap_or_else(|_| tree.to_path_buf());
    cmd.current_dir(tree).env(boot::root::ROOT_ENV, abs)
}

/// Runs `cmd` with stdout and stderr into `log`, killing it (its whole process group) after
/// `timeout`. Returns (exit ok, timed out, the log's text).
fn run_logged(cmd: &mut Command, log: &Path, timeout: Duration) -> (bool, bool, String) {
    let f = match File::create(log) {
        Ok(f) => f,
        Err(e) => return (false, false, format!("cannot create {}: {e}", log.display())),
    };
    let f2 = f.try_clone().expect("dup log file");
    cmd.stdin(Stdio::null()).stdout(Stdio::from(f)).stderr(Stdio::from(f2));
    let mut child = match boot::cleanup::spawn(cmd, true) {
        Ok(c) => c,
        Err(e) => return (false, false, format!("cannot start {cmd:?}: {e}")),
    };
    let t0 = Instant::now();
    let (ok, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(st)) => break (st.success(), false),
            Ok(None) if t0.elapsed() > timeout => {
                let _ = child.kill();
                break (false, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break (false, false),
        }
    };
    boot::cleanup::wait_if_interrupted();
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    (ok, timed_out, text)
}

/// libtest's per-test verdicts from its output: `test NAME ... ok|FAILED|ignored`.
fn verdicts(out: &str) -> Vec<(String, bool)> {
    let re = Regex::new(r"(?m)^test (\S+) \.\.\. (ok|FAILED|ignored)").unwrap();
    re.captures_iter(out).map(|c| (c[1].to_string(), &c[2] == "ok")).collect()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("    | {l}\n")).collect()
}

fn nonce() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b = (t.as_nanos() as u64 ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    u64::from_le_bytes(b).max(1)
}

pub fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum").arg(path).output().map_err(|e| format!("sha256sum: {e}"))?;
    if !out.status.success() {
        return Err(format!("sha256sum {} failed", path.display()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string())
}

/// The manifest a starter carries: `HASH  PATH` lines of the protected files.
pub fn manifest_path(lab: &Lab) -> String {
    format!("labs/{}/MANIFEST.sha256", lab.name())
}

pub fn protected(lab: &Lab) -> Vec<&'static str> {
    lab.protected.iter().chain(crate::spec::GRADER).copied().collect()
}

/// Checks the protected files against the tree's manifest. Ok(None): no manifest (the full
/// tree, which is its own reference).
fn check_manifest(lab: &Lab, tree: &Path) -> Result<Option<usize>, String> {
    let m = tree.join(manifest_path(lab));
    let Ok(text) = fs::read_to_string(&m) else { return Ok(None) };
    let mut bad = Vec::new();
    let mut n = 0;
    for want in protected(lab) {
        let line = text.lines().find(|l| l.split_whitespace().nth(1) == Some(want));
        let Some(line) = line else {
            bad.push(format!("{want} (not in the manifest)"));
            continue;
        };
        let hash = line.split_whitespace().next().unwrap_or("");
        match sha256(&tree.join(want)) {
            Ok(h) if h == hash => n += 1,
            Ok(_) => bad.push(format!("{want} (changed)")),
            Err(_) => bad.push(format!("{want} (missing)")),
        }
    }
    if bad.is_empty() {
        Ok(Some(n))
    } else {
        Err(bad.join(", "))
    }
}

struct Report<'a> {
    opts: &'a Options,
    out: Outcome,
}

impl Report<'_> {
    fn line(&mut self, name: String, got: u32, max: u32, note: String) {
        let ok = got == max;
        if !self.opts.quiet {
            let dots = ".".repeat(62usize.saturating_sub(name.len()).max(2));
            println!("{name} {dots} {} {got:>3}/{max}{}", if ok { "OK  " } else { "FAIL" }, if note.is_empty() { String::new() } else { format!("  ({note})") });
        }
        self.out.score += got;
        self.out.max += max;
        self.out.lines.push((name, got, max, ok, note));
    }
}

/// Grades `lab` on `opts.tree`.
pub fn grade(lab: &Lab, opts: &Options) -> Outcome {
    let tree = &opts.tree;
    let logs = tree.join("target").join("grade").join(lab.name());
    let _ = fs::create_dir_all(&logs);
    let target = opts.target_dir.clone().unwrap_or_else(|| tree.join("target"));
    let mut r = Report { opts, out: Outcome { score: 0, max: 0, lines: Vec::new() } };
    if !opts.quiet {
        println!("== {}: {} ==", lab.name(), lab.title);
        println!("grading {} (logs in {})", tree.display(), logs.display());
    }

    // Test files unchanged, or nothing counts.
    match check_manifest(lab, tree) {
        Ok(Some(n)) if !opts.quiet => println!("test files: {n} unchanged ({})", manifest_path(lab)),
        Ok(_) => {}
        Err(bad) => {
            println!("test files were modified: {bad}");
            println!("restore them (e.g. `git checkout -- FILE`) and grade again; nothing is graded meanwhile");
            r.line("test files unchanged".into(), 0, lab.max(), bad);
            return finish(lab, opts, r.out);
        }
    }

    // Host tests: one cargo run, verdicts per test.
    let host: Vec<_> = lab.tests.iter().filter(|t| matches!(t.kind, Kind::Host(_))).collect();
    if !host.is_empty() {
        let t0 = Instant::now();
        let mut cmd = Command::new(cargo());
        in_tree(&mut cmd, tree).args(["test", "-p", "gmp-core", "--lib", "--target-dir"]).arg(&target);
        // Exactly the graded tests: others (such as the two-thread handshake of
        // sched_local_queue_empty) may hang on a `todo!()`.
        cmd.args(["--", "--exact", "--test-threads", "2"]);
        cmd.args(host.iter().map(|t| if let Kind::Host(p) = t.kind { p } else { unreachable!() }));
        let (_, timed_out, text) = run_logged(&mut cmd, &logs.join("host.log"), Duration::from_secs(600));
        let v = verdicts(&text);
        let secs = t0.elapsed().as_secs_f64();
        if v.is_empty() && !opts.quiet {
            println!("host tests did not run{} ({:.0} s); the end of {}:", if timed_out { " (timeout)" } else { "" }, secs, logs.join("host.log").display());
            print!("{}", tail(&text, 15));
        }
        for t in host {
            let Kind::Host(path) = t.kind else { unreachable!() };
            let ok = v.iter().any(|(n, ok)| n == path && *ok);
            let note = if ok { String::new() } else if v.iter().any(|(n, _)| n == path) { "see host.log".into() } else { "did not run".into() };
            r.line(format!("host: {}", t.title), if ok { t.points } else { 0 }, t.points, note);
        }
    }

    // Loom models: one nested cargo under --cfg loom (as tests/loom.rs).
    let loom: Vec<_> = lab.tests.iter().filter(|t| matches!(t.kind, Kind::Loom(_))).collect();
    if !loom.is_empty() {
        let mut cmd = Command::new(cargo());
        in_tree(&mut cmd, tree).env("RUSTFLAGS", "--cfg loom");
        cmd.args(["test", "-p", "gmp-core", "--release", "--lib", "--target-dir"]).arg(opts.loom_target_dir.clone().unwrap_or_else(|| target.join("loom")));
        cmd.args(["--", "--exact", "--test-threads", "2"]);
        cmd.args(loom.iter().map(|t| if let Kind::Loom(p) = t.kind { p } else { unreachable!() }));
        let (_, timed_out, text) = run_logged(&mut cmd, &logs.join("loom.log"), Duration::from_secs(900));
        let v = verdicts(&text);
        if v.is_empty() && !opts.quiet {
            println!("loom models did not run{}; the end of {}:", if timed_out { " (timeout)" } else { "" }, logs.join("loom.log").display());
            print!("{}", tail(&text, 15));
        }
        for t in loom {
            let Kind::Loom(path) = t.kind else { unreachable!() };
            let ok = v.iter().any(|(n, ok)| n == path && *ok);
            let note = if ok { String::new() } else if v.iter().any(|(n, _)| n == path) { "see loom.log".into() } else { "did not run".into() };
            r.line(format!("loom: {}", t.title.trim_start_matches("loom: ")), if ok { t.points } else { 0 }, t.points, note);
        }
    }

    // QEMU: each test `runs` times, a fresh nonce each, the expected line recomputed here.
    let runs = opts.runs.unwrap_or(lab.qemu_runs);
    for t in lab.tests {
        let Some((test, smp, params, expect)) = t.kind.qemu() else { continue };
        let mut shown = false;
        for run in 1..=runs {
            let name = format!("{}, smp={smp}, run {run}", t.title);
            if opts.no_qemu {
                r.line(name, 0, t.points, "skipped (--no-qemu)".into());
                continue;
            }
            let seed = nonce();
            let want = expect(seed);
            let log = logs.join(format!("qemu-{}-smp{smp}-run{run}.log", test.replace("::", "-")));
            let mut cmd = Command::new(cargo());
            in_tree(&mut cmd, tree).args(["run", "-q", "--bin", "gmpos", "--target-dir"]).arg(&target);
            cmd.args(["--", "--bin", "testkernel", "--smp", &smp.to_string(), "--timeout", "180"]);
            cmd.arg(format!("test={test}")).arg(format!("seed={seed}"));
            cmd.args(params.split_whitespace());
            let t0 = Instant::now();
            let (ok, timed_out, text) = run_logged(&mut cmd, &log, Duration::from_secs(1800));
            let found = text.lines().any(|l| l.trim_end().ends_with(&want) && l.trim_end().strip_suffix(&want).is_some_and(|p| p.is_empty() || p.ends_with("] ")));
            let pass = ok && found;
            let note = if pass {
                format!("{:.1} s", t0.elapsed().as_secs_f64())
            } else if timed_out {
                "timeout".into()
            } else if ok {
                "passed but without the expected checksum line".into()
            } else {
                format!("failed, see {}", log.display())
            };
            // The end of the console of the first failing run of each test (the others' are
            // in their logs).
            if !pass && !opts.quiet && !shown {
                print!("{}", tail(&text, 12));
                shown = true;
            }
            r.line(name, if pass { t.points } else { 0 }, t.points, note);
        }
    }

    ratio_tests(lab, opts, runs, &target, &logs, &mut r);

    if let Some(dir) = &opts.hidden {
        hidden(lab, opts, dir, &target, &logs, &mut r);
    }
    finish(lab, opts, r.out)
}

/// One boot of `test`: (passed with the expected line, the console text, a note on failure).
fn boot_once(tree: &Path, target: &Path, log: &Path, test: &str, smp: u32, params: &str, seed: u64, want: &str) -> (bool, String, String) {
    let mut cmd = Command::new(cargo());
    in_tree(&mut cmd, tree).args(["run", "-q", "--bin", "gmpos", "--target-dir"]).arg(target);
    cmd.args(["--", "--bin", "testkernel", "--smp", &smp.to_string(), "--timeout", "180"]);
    cmd.arg(format!("test={test}")).arg(format!("seed={seed}"));
    cmd.args(params.split_whitespace());
    let (ok, timed_out, text) = run_logged(&mut cmd, log, Duration::from_secs(1800));
    let found = text.lines().any(|l| l.trim_end().ends_with(want) && l.trim_end().strip_suffix(want).is_some_and(|p| p.is_empty() || p.ends_with("] ")));
    let note = if ok && found {
        String::new()
    } else if timed_out {
        format!("timeout, see {}", log.display())
    } else if ok {
        format!("passed but without the expected checksum line, see {}", log.display())
    } else {
        format!("failed, see {}", log.display())
    };
    (ok && found, text, note)
}

/// The [`Kind::Ratio`] tests: each run boots the reference and the student's parameters with
/// one nonce; tests with the same boots share them; each is scored once over all runs.
fn ratio_tests(lab: &Lab, opts: &Options, runs: u32, target: &Path, logs: &Path, r: &mut Report) {
    type Key = (&'static str, u32, &'static str, &'static str);
    let mut done: Vec<(Key, Vec<RatioRun>)> = Vec::new();
    for t in lab.tests {
        let Kind::Ratio { test, smp, reference, params, expect, counters, score } = t.kind else { continue };
        let name = format!("{}, smp={smp}, {runs} run{}", t.title, if runs == 1 { "" } else { "s" });
        if opts.no_qemu {
            r.line(name, 0, t.points, "skipped (--no-qemu)".into());
            continue;
        }
        let key: Key = (test, smp, reference, params);
        if !done.iter().any(|(k, _)| *k == key) {
            let mut rr = Vec::new();
            let mut shown = false;
            for run in 1..=runs {
                let seed = nonce();
                let want = expect(seed);
                let mut one = |which: &str, p: &str| {
                    let log = logs.join(format!("qemu-{}-smp{smp}-{which}-run{run}.log", test.replace("::", "-")));
                    let (pass, text, note) = boot_once(&opts.tree, target, &log, test, smp, p, seed, &want);
                    let c = if pass { Counters::find(&text, counters) } else { None };
                    if !opts.quiet {
                        match &c {
                            Some(c) => println!("  {test} {which} ({p}) run {run}: {}", c.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")),
                            None => println!("  {test} {which} ({p}) run {run}: no counters ({})", if note.is_empty() { "no counters line" } else { &note }),
                        }
                        if !pass && !shown {
                            print!("{}", tail(&text, 12));
                            shown = true;
                        }
                    }
                    c
                };
                let reference = one("reference", reference);
                let student = one("student", params);
                rr.push(RatioRun { reference, student });
            }
            done.push((key, rr));
        }
        let rr = &done.iter().find(|(k, _)| *k == key).unwrap().1;
        let (frac, note) = score(rr);
        let got = (frac.clamp(0.0, 1.0) * t.points as f64).round() as u32;
        r.line(name, got, t.points, note);
    }
}

/// Boots a starter tree's first QEMU test once (`-smp 2`): the starter must build and boot,
/// and the run must stop at one of the lab's `todo!()` stubs, whose panic names the lab
/// (`not yet implemented: lab N: REGION`). Returns that panic line, or why not. `None` if the
/// lab has no QEMU test.
pub fn boot_starter(lab: &Lab, tree: &Path, target: &Path) -> Option<Result<String, String>> {
    let (test, _, params) = lab.tests.iter().find_map(|t| t.kind.boots())?;
    let logs = tree.join("target").join("grade").join(lab.name());
    if let Err(e) = fs::create_dir_all(&logs) {
        return Some(Err(format!("{}: {e}", logs.display())));
    }
    let log = logs.join("starter-boot.log");
    let mut cmd = Command::new(cargo());
    in_tree(&mut cmd, tree).args(["run", "-q", "--bin", "gmpos", "--target-dir"]).arg(target);
    cmd.args(["--", "--bin", "testkernel", "--smp", "2", "--timeout", "120"]);
    cmd.arg(format!("test={test}")).arg(format!("seed={}", nonce()));
    cmd.args(params.split_whitespace());
    let (ok, timed_out, text) = run_logged(&mut cmd, &log, Duration::from_secs(1800));
    let stub = format!("not yet implemented: lab {}: ", lab.number);
    Some(match text.lines().find(|l| l.contains(&stub)) {
        Some(l) if !ok => Ok(l.trim().to_string()),
        _ if timed_out => Err(format!("timed out; see {}", log.display())),
        _ if ok => Err(format!("{test} passed on the starter; see {}", log.display())),
        _ => Err(format!("{test} failed without reaching a stub; see {}\n{}", log.display(), tail(&text, 12))),
    })
}

/// Instructor tests: `DIR/labN/*.rs` (or `DIR/*.rs`), each an integration test of `gmp-core`
/// (its public API), copied into the tree's `kernel/core/tests/` for the run and removed
/// after. Each `#[test]` is worth 5 points, or what `DIR[/labN]/points` says (`NAME POINTS`
/// lines).
fn hidden(lab: &Lab, opts: &Options, dir: &Path, target: &Path, logs: &Path, r: &mut Report) {
    let dir = if dir.join(lab.name()).is_dir() { dir.join(lab.name()) } else { dir.to_path_buf() };
    let points: Vec<(String, u32)> = fs::read_to_string(dir.join("points"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect();
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "rs")).collect())
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        r.line(format!("hidden tests in {}", dir.display()), 0, 0, "none found".into());
        return;
    }
    let tests_dir = opts.tree.join("kernel/core/tests");
    for f in files {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let name = format!("lab_hidden_{stem}");
        let dst = tests_dir.join(format!("{name}.rs"));
        struct Remove(PathBuf, bool);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = fs::remove_file(&self.0);
                if self.1 {
                    let _ = fs::remove_dir(self.0.parent().unwrap());
                }
            }
        }
        let made_dir = !tests_dir.exists();
        if dst.exists() || fs::create_dir_all(&tests_dir).and_then(|_| fs::copy(&f, &dst)).is_err() {
            r.line(format!("hidden: {stem}"), 0, 0, format!("cannot install it as {}", dst.display()));
            continue;
        }
        let _guard = Remove(dst, made_dir);
        let mut cmd = Command::new(cargo());
        in_tree(&mut cmd, &opts.tree).args(["test", "-p", "gmp-core", "--test", &name, "--target-dir"]).arg(target);
        let (_, _, text) = run_logged(&mut cmd, &logs.join(format!("hidden-{stem}.log")), Duration::from_secs(600));
        // The test list comes from the file itself, so a test that does not compile counts.
        let src = fs::read_to_string(&f).unwrap_or_default();
        let fns = Regex::new(r"#\[test\]\s*(?:#\[[^\]]*\]\s*)*fn\s+([A-Za-z0-9_]+)").unwrap();
        let v = verdicts(&text);
        for c in fns.captures_iter(&src) {
            let t = &c[1];
            let max = points.iter().find(|(n, _)| n == t).map_or(5, |p| p.1);
            let ok = v.iter().any(|(n, ok)| (n == t || n.ends_with(&format!("::{t}"))) && *ok);
            r.line(format!("hidden: {stem}::{t}"), if ok { max } else { 0 }, max, String::new());
        }
    }
}

fn finish(lab: &Lab, opts: &Options, out: Outcome) -> Outcome {
    if !opts.quiet {
        println!("Score: {}/{}", out.score, out.max);
    }
    if let Some(path) = &opts.json {
        let tests: Vec<_> = out
            .lines
            .iter()
            .map(|(n, p, m, ok, note)| serde_json::json!({"name": n, "points": p, "max": m, "ok": ok, "note": note}))
            .collect();
        let j = serde_json::json!({"lab": lab.name(), "score": out.score, "max": out.max, "tests": tests});
        if let Err(e) = fs::write(path, serde_json::to_string_pretty(&j).unwrap() + "\n") {
            eprintln!("gmpos-lab: cannot write {}: {e}", path.display());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn libtest_verdicts() {
        let v = super::verdicts("running 2 tests\ntest a::b ... ok\ntest a::c ... FAILED\ntest d has been running\n");
        assert_eq!(v, [("a::b".to_string(), true), ("a::c".to_string(), false)]);
    }
}
