//! `gmpos-lab`: the OS course labs (`labs/README.md`).
//!
//! ```text
//! gmpos-lab gen LAB OUTDIR [--git]     write LAB's starter tree (regions become todo!())
//! gmpos-lab solve LAB TREE             put the reference solution (this checkout's regions) back
//! gmpos-lab grade LAB [OPTIONS]        grade a tree: one line per test, then Score: X/Y
//! gmpos-lab check LAB [--qemu]         the labs' own CI check (starter 0, solution and full
//!                                      tree 100, every mutant below)
//! gmpos-lab list                       the labs and their regions
//! ```
//!
//! `./run-qemu.sh grade LAB ...` is `gmpos-lab grade LAB ...`; `./run-qemu.sh lab ...` is
//! `gmpos-lab ...`.

mod grade;
mod regions;
mod spec;

use spec::Lab;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};
use std::time::Instant;

const USAGE: &str = "\
usage: gmpos-lab gen LAB OUTDIR [--git]
       gmpos-lab solve LAB TREE
       gmpos-lab grade LAB [--tree DIR] [--json FILE] [--hidden DIR] [--no-qemu] [--runs N]
                           [--target-dir DIR]
       gmpos-lab check LAB|all [--qemu] [--runs N]
       gmpos-lab list

LAB is lab1 ... lab8 (`list` shows them). The source tree is GMPOS_ROOT (cargo run sets it), else the
current directory. See labs/README.md.

grade: --tree DIR  the tree to grade (default: this checkout); --json FILE  per-test points;
       --hidden DIR  instructor tests (DIR/labN/*.rs or DIR/*.rs, integration tests of gmp-core,
       points per test in DIR[/labN]/points); --no-qemu  host and loom tests only; --runs N  runs
       of each QEMU test (default 3); --target-dir DIR  for the host and loom builds (default:
       the tree's target; never one another checkout uses: cargo names gmp-core's artifacts by
       its path inside the workspace, so two checkouts would overwrite each other's). Exit
       status 0 only with full marks.
check: in target/lab-check/LAB: generate the starter (must score 0, boot to one of its stubs,
       and score full on the other labs' host and loom tests), put the solution back (must be
       byte-identical to this tree and score full marks), apply each labs/LAB/mutants/*.patch
       (each must score less). Without --qemu the QEMU tests are left out, except the one boot
       of the starter (what CI runs). Checks share target/lab-check: run one at a time.
       `check all` checks every lab, one after another, and fails if any fails.";

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("gmpos-lab: {msg}");
    exit(2)
}

fn root() -> PathBuf {
    let cands = [std::env::var_os("GMPOS_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from), std::env::current_dir().ok()];
    for c in cands.into_iter().flatten() {
        let mut d = c.as_path();
        loop {
            if d.join("Cargo.toml").is_file() && d.join("kernel/Cargo.toml").is_file() {
                return d.to_path_buf();
            }
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
    }
    die("not inside a gmpos checkout (no Cargo.toml with kernel/Cargo.toml); set GMPOS_ROOT")
}

fn lab_arg(a: Option<&String>) -> &'static Lab {
    let a = a.unwrap_or_else(|| die(format!("which lab?\n{USAGE}")));
    spec::find(a).unwrap_or_else(|| {
        die(format!("unknown lab {a:?}; the labs: {}", spec::LABS.iter().map(|l| l.name()).collect::<Vec<_>>().join(", ")))
    })
}

/// The tracked files of the checkout at `root` (`git ls-files`), or, outside git (a starter
/// copied without its .git), every file under it except build output.
fn tracked(root: &Path) -> Vec<String> {
    let out = Command::new("git").current_dir(root).args(["ls-files", "-z"]).output();
    if let Ok(o) = out {
        if o.status.success() {
            return String::from_utf8_lossy(&o.stdout).split('\0').filter(|s| !s.is_empty()).map(str::to_string).collect();
        }
    }
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

/// Writes `lab`'s starter tree of `root` into `out`. Returns the regions stubbed, as
/// `path:line name`.
fn generate(root: &Path, lab: &Lab, out: &Path) -> Vec<String> {
    let mut stubbed = Vec::new();
    for rel in tracked(root) {
        if spec::instructor_only(&rel) || rel == grade::manifest_path(lab) {
            continue;
        }
        let src = root.join(&rel);
        if !src.is_file() {
            continue; // deleted in the work tree
        }
        let dst = out.join(&rel);
        fs::create_dir_all(dst.parent().unwrap()).unwrap_or_else(|e| die(format!("{}: {e}", dst.display())));
        let bytes = fs::read(&src).unwrap_or_else(|e| die(format!("{}: {e}", src.display())));
        let text = std::str::from_utf8(&bytes).ok().filter(|t| rel.ends_with(".rs") && regions::has_markers(t));
        match text {
            Some(t) => {
                let rs = regions::parse(t, lab.number).unwrap_or_else(|e| die(format!("{rel}: {e}")));
                let (s, _) = regions::stub(t, lab.number).unwrap_or_else(|e| die(format!("{rel}: {e}")));
                stubbed.extend(rs.iter().map(|r| format!("{rel}:{} {}", r.begin + 1, r.name)));
                fs::write(&dst, s).unwrap_or_else(|e| die(format!("{}: {e}", dst.display())));
                fs::set_permissions(&dst, fs::metadata(&src).unwrap().permissions()).ok();
            }
            None => {
                fs::copy(&src, &dst).unwrap_or_else(|e| die(format!("{}: {e}", dst.display())));
            }
        }
    }
    if stubbed.is_empty() {
        die(format!("no //~ {} regions in {}", lab.name(), root.display()));
    }
    let mut manifest = String::new();
    for p in grade::protected(lab) {
        let h = grade::sha256(&out.join(p)).unwrap_or_else(|e| die(format!("{p}: {e}")));
        manifest.push_str(&format!("{h}  {p}\n"));
    }
    let m = out.join(grade::manifest_path(lab));
    fs::create_dir_all(m.parent().unwrap()).unwrap_or_else(|e| die(e));
    fs::write(&m, manifest).unwrap_or_else(|e| die(e));
    stubbed
}

/// Puts `lab`'s regions of `root` back into the starter `tree`. Returns how many.
fn solve(root: &Path, lab: &Lab, tree: &Path) -> usize {
    let mut n = 0;
    for rel in tracked(root) {
        if !rel.ends_with(".rs") {
            continue;
        }
        let (Ok(src), Ok(dst)) = (fs::read_to_string(root.join(&rel)), fs::read_to_string(tree.join(&rel))) else { continue };
        if regions::parse(&dst, lab.number).map_or(true, |r| r.is_empty()) {
            continue;
        }
        let (s, k) = regions::solve(&dst, &src, lab.number).unwrap_or_else(|e| die(format!("{rel}: {e}")));
        fs::write(tree.join(&rel), s).unwrap_or_else(|e| die(e));
        n += k;
    }
    n
}

struct Flags {
    rest: Vec<String>,
    opts: Vec<(String, Option<String>)>,
}

fn flags(args: &[String], with_value: &[&str], bare: &[&str]) -> Flags {
    let mut f = Flags { rest: Vec::new(), opts: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if with_value.contains(&a.as_str()) {
            let v = it.next().unwrap_or_else(|| die(format!("{a} needs a value")));
            f.opts.push((a.clone(), Some(v.clone())));
        } else if bare.contains(&a.as_str()) {
            f.opts.push((a.clone(), None));
        } else if a.starts_with("--") {
            die(format!("unknown option {a}\n{USAGE}"));
        } else {
            f.rest.push(a.clone());
        }
    }
    f
}

impl Flags {
    fn get(&self, k: &str) -> Option<&str> {
        self.opts.iter().rev().find(|(n, _)| n == k).and_then(|(_, v)| v.as_deref())
    }
    fn has(&self, k: &str) -> bool {
        self.opts.iter().any(|(n, _)| n == k)
    }
}

fn main() {
    boot::cleanup::install();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let rest = &args[args.len().min(1)..];
    match cmd {
        "gen" => {
            let f = flags(rest, &[], &["--git"]);
            let lab = lab_arg(f.rest.first());
            let out = PathBuf::from(f.rest.get(1).unwrap_or_else(|| die("gen LAB OUTDIR: where?")));
            if out.exists() && fs::read_dir(&out).map(|mut d| d.next().is_some()).unwrap_or(true) {
                die(format!("{} exists and is not empty", out.display()));
            }
            let root = root();
            let stubbed = generate(&root, lab, &out);
            println!("{} starter written to {}; the regions now todo!():", lab.name(), out.display());
            for s in &stubbed {
                println!("  {s}");
            }
            if f.has("--git") {
                let git = |a: &[&str]| {
                    let ok = Command::new("git").current_dir(&out).args(a).status().is_ok_and(|s| s.success());
                    if !ok {
                        die(format!("git {} failed in {}", a.join(" "), out.display()));
                    }
                };
                git(&["init", "-q"]);
                git(&["add", "-A"]);
                let msg = format!("{}: starter", lab.name());
                git(&["-c", "user.name=gmpos-lab", "-c", "user.email=gmpos-lab@localhost", "commit", "-q", "-m", &msg]);
                println!("a git repository with one commit ({msg:?}), ready to push as a template");
            }
            println!("next: cd {} && ./run-qemu.sh grade {}", out.display(), lab.name());
        }
        "solve" => {
            let f = flags(rest, &[], &[]);
            let lab = lab_arg(f.rest.first());
            let tree = PathBuf::from(f.rest.get(1).unwrap_or_else(|| die("solve LAB TREE: which tree?")));
            let n = solve(&root(), lab, &tree);
            if n == 0 {
                die(format!("no {} regions in {}", lab.name(), tree.display()));
            }
            println!("{}: {n} regions of {} filled in with the reference solution", tree.display(), lab.name());
        }
        "grade" => {
            let f = flags(rest, &["--tree", "--json", "--hidden", "--runs", "--target-dir"], &["--no-qemu"]);
            let lab = lab_arg(f.rest.first());
            if f.rest.len() > 1 {
                die(format!("unexpected {:?}\n{USAGE}", f.rest[1]));
            }
            let tree = f.get("--tree").map(PathBuf::from).unwrap_or_else(root);
            let tree = fs::canonicalize(&tree).unwrap_or_else(|e| die(format!("{}: {e}", tree.display())));
            let opts = grade::Options {
                tree,
                json: f.get("--json").map(PathBuf::from),
                hidden: f.get("--hidden").map(|h| fs::canonicalize(h).unwrap_or_else(|e| die(format!("{h}: {e}")))),
                no_qemu: f.has("--no-qemu"),
                runs: f.get("--runs").map(|r| r.parse().unwrap_or_else(|_| die("--runs N"))),
                target_dir: f.get("--target-dir").map(PathBuf::from),
                loom_target_dir: None,
                quiet: false,
            };
            let o = grade::grade(lab, &opts);
            exit(if o.max > 0 && o.score == o.max { 0 } else { 1 });
        }
        "check" => {
            let f = flags(rest, &["--runs"], &["--qemu"]);
            let runs = f.get("--runs").map(|r| r.parse().unwrap_or_else(|_| die("--runs N")));
            if f.rest.first().is_some_and(|a| a == "all") {
                // Every lab, one after another (they share target/lab-check), then a summary.
                let root = root();
                let failed: Vec<String> =
                    spec::LABS.iter().filter(|lab| check(&root, lab, f.has("--qemu"), runs) != 0).map(|l| l.name()).collect();
                if failed.is_empty() {
                    println!("check all: {} labs OK", spec::LABS.len());
                    exit(0);
                }
                println!("check all: FAILED: {}", failed.join(", "));
                exit(1);
            }
            let lab = lab_arg(f.rest.first());
            exit(check(&root(), lab, f.has("--qemu"), runs));
        }
        "list" => {
            let root = root();
            for lab in spec::LABS {
                println!("{}: {} ({} points)", lab.name(), lab.title, lab.max());
                for rel in tracked(&root).iter().filter(|r| r.ends_with(".rs")) {
                    let Ok(t) = fs::read_to_string(root.join(rel)) else { continue };
                    if !regions::has_markers(&t) {
                        continue;
                    }
                    for r in regions::parse(&t, lab.number).unwrap_or_else(|e| die(format!("{rel}: {e}"))) {
                        println!("  {rel}:{}-{} {}: {}", r.begin + 1, r.end + 1, r.name, r.hint.join(" "));
                    }
                }
            }
        }
        "-h" | "--help" | "help" => println!("{USAGE}"),
        _ => die(format!("unknown command {cmd:?}\n{USAGE}")),
    }
}

/// The labs' own check (see USAGE). Returns the exit status.
fn check(root: &Path, lab: &Lab, qemu: bool, runs: Option<u32>) -> i32 {
    let t0 = Instant::now();
    let work = root.join("target").join("lab-check").join(lab.name());
    let tree = work.join("tree");
    if tree.exists() {
        fs::remove_dir_all(&tree).unwrap_or_else(|e| die(format!("{}: {e}", tree.display())));
    }
    let stubbed = generate(root, lab, &tree);
    // A target dir of the checks' own, the same for every variant and every lab: gmp-core is
    // rebuilt for each variant anyway (its source differs), and the dependencies are built
    // once for all labs. Not this checkout's `target`: cargo names a workspace member's
    // artifacts by its path inside the workspace, so the copy's gmp-core and this one's would
    // overwrite each other. (Labs checked at once take turns on its lock.)
    let target = root.join("target").join("lab-check").join("target");
    let opts = |t: &Path| grade::Options {
        tree: t.to_path_buf(),
        json: None,
        hidden: None,
        no_qemu: !qemu,
        runs,
        target_dir: Some(target.clone()),
        loom_target_dir: None,
        quiet: true,
    };
    let mut failures = Vec::new();
    let expect = |failures: &mut Vec<String>, what: &str, o: &grade::Outcome, ok: bool, want: &str| {
        let lost: Vec<_> = o.lines.iter().filter(|l| !l.3 && !l.4.contains("--no-qemu")).map(|l| l.0.as_str()).collect();
        println!(
            "check {}: {what}: {}/{} ({want}){} [{:.0} s]",
            lab.name(),
            o.score,
            o.max,
            if ok { "" } else { " <-- WRONG" },
            t0.elapsed().as_secs_f64()
        );
        if !lost.is_empty() && o.score > 0 {
            println!("    lost: {}", lost.join("; "));
        }
        if !ok {
            failures.push(what.to_string());
        }
    };
    let full = if qemu { lab.max_with_runs(runs.unwrap_or(lab.qemu_runs)) } else { graded_without_qemu(lab) };

    println!("check {}: starter in {} ({} regions stubbed)", lab.name(), tree.display(), stubbed.len());
    // The kernel's own target dir (`kernel/target`, where the runner builds the testkernel),
    // shared by every check like `target` above, so that its dependencies are built once.
    let ktarget = root.join("target").join("lab-check").join("kernel-target");
    let _ = fs::create_dir_all(&ktarget);
    if let Err(e) = std::os::unix::fs::symlink(&ktarget, tree.join("kernel").join("target")) {
        die(format!("cannot link {}/kernel/target: {e}", tree.display()));
    }
    let o = grade::grade(lab, &opts(&tree));
    expect(&mut failures, "starter", &o, o.score == 0, "want 0");
    // The starter builds and boots, and its QEMU test stops at one of the lab's stubs (with
    // --qemu the grading above has booted it already, every run).
    if !qemu {
        match grade::boot_starter(lab, &tree, &target) {
            None => {}
            Some(Ok(line)) => println!("check {}: starter boots and stops at a stub: {line}", lab.name()),
            Some(Err(e)) => {
                println!("check {}: starter boot: {e} <-- WRONG", lab.name());
                failures.push("starter boot".into());
            }
        }
    }
    // The labs it does not touch: their host and loom tests score full on this starter (their
    // QEMU tests need the whole kernel, which this starter's stubs stop).
    for other in spec::LABS.iter().filter(|l| l.number != lab.number) {
        let full = graded_without_qemu(other);
        if full == 0 {
            continue;
        }
        if other.uses.contains(&lab.number) {
            println!("check {}: starter, graded as {}: skipped ({}'s tests run {}'s regions too)", lab.name(), other.name(), other.name(), lab.name());
            continue;
        }
        let mut o = opts(&tree);
        o.no_qemu = true;
        let g = grade::grade(other, &o);
        expect(&mut failures, &format!("starter, graded as {} (host and loom)", other.name()), &g, g.score == full, &format!("want {full}"));
    }

    let n = solve(root, lab, &tree);
    let mut diff = Vec::new();
    for rel in tracked(root) {
        if spec::instructor_only(&rel) || !root.join(&rel).is_file() {
            continue;
        }
        if fs::read(root.join(&rel)).ok() != fs::read(tree.join(&rel)).ok() {
            diff.push(rel);
        }
    }
    println!(
        "check {}: starter + reference solution ({n} regions) {}",
        lab.name(),
        if diff.is_empty() { "is byte-identical to the full tree (so it grades as the full tree)".to_string() } else { format!("differs from the full tree in {diff:?} <-- WRONG") }
    );
    if !diff.is_empty() {
        failures.push("solution differs from the full tree".into());
    }
    let o = grade::grade(lab, &opts(&tree));
    expect(&mut failures, "starter + reference solution = full tree", &o, o.score == full, &format!("want {full}"));

    let mdir = root.join("labs").join(lab.name()).join("mutants");
    let mut mutants: Vec<PathBuf> = fs::read_dir(&mdir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "patch")).collect())
        .unwrap_or_default();
    mutants.sort();
    if mutants.len() < 2 {
        println!("check {}: fewer than 2 mutants in {} <-- WRONG", lab.name(), mdir.display());
        failures.push("mutants".into());
    }
    for m in &mutants {
        let name = m.file_stem().unwrap().to_string_lossy().into_owned();
        // A mutant only the QEMU tests can catch (its paragraph says "QEMU only") scores full
        // marks on the host and loom tests: it is checked with --qemu only.
        let text = fs::read_to_string(m).unwrap_or_default();
        let header = text.lines().take_while(|l| !l.starts_with("--- ") && !l.starts_with("diff ")).collect::<Vec<_>>().join(" ");
        if !qemu && header.contains("QEMU only") {
            println!("check {}: mutant {name}: caught by the QEMU tests only, skipped (check with --qemu)", lab.name());
            continue;
        }
        let apply = |rev: bool| {
            // GIT_CEILING_DIRECTORIES: the tree is inside this checkout's (ignored) target dir;
            // without it git would take this checkout for the tree's repository.
            let mut c = Command::new("git");
            c.current_dir(&tree).env("GIT_CEILING_DIRECTORIES", &work).arg("apply");
            if rev {
                c.arg("-R");
            }
            c.arg(m).status().is_ok_and(|s| s.success())
        };
        if !apply(false) {
            println!("check {}: mutant {name}: does not apply to the full tree <-- WRONG", lab.name());
            failures.push(name);
            continue;
        }
        if full == 0 {
            // A lab graded only in QEMU (its regions are kernel code): without --qemu there is
            // nothing a mutant could lose; it must still apply and revert.
            println!("check {}: mutant {name}: applies (graded only with --qemu)", lab.name());
        } else {
            let o = grade::grade(lab, &opts(&tree));
            expect(&mut failures, &format!("mutant {name}"), &o, o.score < full, &format!("want < {full}"));
        }
        if !apply(true) {
            die(format!("cannot revert {}", m.display()));
        }
    }
    if failures.is_empty() {
        println!(
            "check {}: OK in {:.0} s{}",
            lab.name(),
            t0.elapsed().as_secs_f64(),
            if qemu { "" } else { " (host and loom tests; the QEMU tests with --qemu)" }
        );
        0
    } else {
        println!("check {}: FAILED: {}", lab.name(), failures.join(", "));
        1
    }
}

fn graded_without_qemu(lab: &Lab) -> u32 {
    lab.tests.iter().filter(|t| t.kind.boots().is_none()).map(|t| t.points).sum()
}
