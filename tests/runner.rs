//! The runner as a user or a CI system meets it: signals, bad files, copied trees, stale images,
//! exit statuses. Each test runs the real `gmpos` binary (or the library) and checks what is left
//! behind. Waits poll with generous deadlines: the host may be a busy 2-core machine.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const GMPOS: &str = env!("CARGO_BIN_EXE_gmpos");

/// A fresh directory for one test, removed when dropped.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let d = std::env::temp_dir().join(format!("gmpos-runner-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TestDir(d)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    /// The names in the directory (a clean temp dir has none).
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.0)
            .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Poll `cond` every 20 ms until it holds or `secs` pass.
fn poll(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The children of `pid` (from /proc), with their command names.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else { return out };
    for e in dir.filter_map(|e| e.ok()) {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let Some(close) = stat.rfind(')') else { continue };
        let comm = stat[stat.find('(').map_or(0, |i| i + 1)..close].to_string();
        let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push((p, comm));
        }
    }
    out
}

/// Whether `pid` is alive (a zombie counts as gone).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn sigterm(pid: u32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

/// Wait for `child` with a deadline; kill it and fail if it does not end.
fn wait_for(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let mut st = None;
    poll(secs, || {
        st = child.try_wait().unwrap();
        st.is_some()
    });
    match st {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: gmpos did not end within {secs} s");
        }
    }
}

/// Run `gmpos ARGS` to the end; (status, stdout, stderr).
fn gmpos(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(GMPOS);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start gmpos");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut e = String::new();
    let _ = err.read_to_string(&mut e);
    let st = wait_for(&mut child, 300, &format!("gmpos {args:?}"));
    (st, t.join().unwrap(), e)
}

fn testkernel() -> PathBuf {
    common::kernel("testkernel")
}

// --- 2, 3: a signal leaves no process and no temp file -----------------------------------------

/// Start a UEFI run (it makes a per-run OVMF variable store), wait until QEMU runs, SIGTERM the
/// runner: QEMU must be gone, the runner must exit 128+15, and the temp dir must be empty.
#[test]
fn sigterm_during_a_run_leaves_no_process_and_no_temp_file() {
    let elf = testkernel();
    let tmp = TestDir::new("sigterm-run");
    let _permit = common::Permit::one();
    let mut child = Command::new(GMPOS)
        .args(["--kernel", elf.to_str().unwrap(), "--uefi", "--smp", "1", "--timeout", "0", "test=bringup::timer_rate"])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut qemu = None;
    let started = poll(240, || {
        qemu = children_of(pid).into_iter().find(|(_, c)| c.starts_with("qemu-system"));
        qemu.is_some() || child.try_wait().unwrap().is_some()
    });
    let Some((qemu_pid, _)) = qemu else {
        let _ = child.kill();
        let mut e = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut e);
        panic!("QEMU never started (started={started}); gmpos said:\n{e}");
    };
    // The OVMF variable store copy exists while QEMU runs: the cleanup has something to do.
    let leftovers_while_running = tmp.entries();
    assert!(!leftovers_while_running.is_empty(), "no private temp dir while QEMU runs");
    sigterm(pid);
    let st = wait_for(&mut child, 30, "SIGTERM");
    assert_eq!(st.code(), Some(128 + libc::SIGTERM), "gmpos exit status after SIGTERM: {st}");
    assert!(poll(10, || !alive(qemu_pid)), "QEMU (pid {qemu_pid}) outlived the runner");
    assert!(tmp.entries().is_empty(), "temp files left behind: {:?} (while running: {leftovers_while_running:?})", tmp.entries());
}

/// SIGTERM while the disk image is being built: the bootloader crate's FAT temp file (in the
/// runner's private temp dir) and the half-written image must both go.
#[test]
fn sigterm_during_the_image_build_leaves_no_temp_file() {
    let elf = testkernel();
    let tmp = TestDir::new("sigterm-build");
    let work = TestDir::new("sigterm-build-elf");
    let mut caught = false;
    for attempt in 0..4u8 {
        // A new ELF each time (one byte appended: still the same kernel), so the image is stale.
        let copy = work.path().join("k");
        let mut data = fs::read(&elf).unwrap();
        data.push(attempt);
        fs::write(&copy, &data).unwrap();
        let mut child = Command::new(GMPOS)
            .args(["--kernel", copy.to_str().unwrap(), "--smp", "1", "--timeout", "0", "test=bringup::timer_rate"])
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The image build has begun once the private temp dir holds a file.
        let private = tmp.path().join(format!("gmpos-{pid}"));
        let building = || fs::read_dir(&private).map(|mut d| d.next().is_some()).unwrap_or(false);
        poll(120, || building() || !children_of(pid).is_empty() || child.try_wait().unwrap().is_some());
        let in_build = building() && children_of(pid).is_empty();
        sigterm(pid);
        let st = wait_for(&mut child, 30, "SIGTERM during the image build");
        assert_eq!(st.code(), Some(128 + libc::SIGTERM), "exit status: {st}");
        assert!(tmp.entries().is_empty(), "temp files left behind: {:?}", tmp.entries());
        let left: Vec<String> = work.entries().into_iter().filter(|n| n.contains(".tmp-")).collect();
        assert!(left.is_empty(), "half-built images left next to the ELF: {left:?}");
        if in_build {
            caught = true;
            break;
        }
    }
    assert!(caught, "never caught the runner inside the image build in 4 attempts");
}

// --- 1: a copied tree builds its own kernel ----------------------------------------------------

/// The runner copied into another checkout (as a copied lab tree has it in its target/) must
/// build *that* tree's kernel: a fake `cargo` records the directory it was run in.
#[test]
fn a_copied_runner_builds_its_own_tree() {
    let tree = TestDir::new("copied-tree");
    let root = tree.path();
    fs::create_dir_all(root.join("kernel")).unwrap();
    fs::create_dir_all(root.join("target/debug")).unwrap();
    fs::write(root.join("Cargo.toml"), "[workspace]\n").unwrap();
    fs::write(root.join("kernel/Cargo.toml"), "[package]\nname = \"kernel\"\n").unwrap();
    let runner = root.join("target/debug/gmpos");
    fs::copy(GMPOS, &runner).unwrap();
    let log = root.join("cargo-cwd");
    let fake_cargo = root.join("fake-cargo");
    fs::write(&fake_cargo, format!("#!/bin/sh\npwd > '{}'\necho 'fake cargo: no build' >&2\nexit 1\n", log.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake_cargo, fs::Permissions::from_mode(0o755)).unwrap();

    let out = Command::new(&runner)
        .args(["--smp", "1"])
        .current_dir("/")
        .env_remove("GMPOS_ROOT")
        .env("CARGO", &fake_cargo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("kernel build failed") && stderr.contains("fake cargo: no build"), "{stderr}");
    let cwd = fs::read_to_string(&log).expect("the fake cargo ran");
    assert_eq!(Path::new(cwd.trim()).canonicalize().unwrap(), root.join("kernel").canonicalize().unwrap());

    // Outside any checkout, with nothing to go on: a clear error, exit 3.
    let lone = TestDir::new("lone-runner");
    fs::copy(GMPOS, lone.path().join("gmpos")).unwrap();
    let out = Command::new(lone.path().join("gmpos")).current_dir("/").env_remove("GMPOS_ROOT").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot find the gmpos repository root"), "{stderr}");
    // GMPOS_ROOT pointing elsewhere is an error too, not a guess.
    let out = Command::new(&runner).env("GMPOS_ROOT", "/").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GMPOS_ROOT=/ is not a gmpos checkout"));
}

// --- 4: --kernel must be a bootable ELF --------------------------------------------------------

#[test]
fn kernel_that_is_not_a_bootable_elf_is_refused_at_once() {
    let dir = TestDir::new("not-elf");
    let text = dir.path().join("notes.txt");
    fs::write(&text, "hello\n").unwrap();
    let empty = dir.path().join("empty");
    fs::write(&empty, "").unwrap();
    let random = dir.path().join("random");
    fs::write(&random, (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (text, "not an ELF file"),
        (empty, "the file is empty"),
        (random, "not an ELF file"),
        (PathBuf::from("/bin/true"), "program interpreter"),
        (dir.path().to_path_buf(), "is a directory, not a file"),
        (dir.path().join("missing"), "not found"),
    ];
    for (path, want) in cases {
        let start = Instant::now();
        let (st, _, err) = gmpos(&["--kernel", path.to_str().unwrap(), "--smp", "1"], &[]);
        assert_eq!(st.code(), Some(3), "{}: {err}", path.display());
        assert!(err.contains(want), "{}: expected {want:?} in:\n{err}", path.display());
        assert!(start.elapsed() < Duration::from_secs(60), "{}: took {:?}", path.display(), start.elapsed());
    }
}

// --- 5: a changed ELF gets a new image, whatever its mtime says --------------------------------

#[test]
fn image_is_rebuilt_when_the_elf_changes_even_with_an_older_mtime() {
    let elf = testkernel();
    let dir = TestDir::new("stale");
    let k = dir.path().join("k");
    fs::copy(&elf, &k).unwrap();
    let img = boot::build_image(&k, false).unwrap();
    let first = fs::read(&img).unwrap();
    let stamp1 = fs::read_to_string(boot::stamp_path(&img)).unwrap();
    // Unchanged ELF: the image is reused as is.
    assert_eq!(boot::build_image(&k, false).unwrap(), img);
    assert_eq!(fs::read(&img).unwrap(), first);
    // Another kernel copied over it with an older mtime (`cp -p`, a tar restore).
    let old = fs::metadata(&k).unwrap().modified().unwrap() - Duration::from_secs(3600);
    let mut data = fs::read(&elf).unwrap();
    data.extend_from_slice(b"another build");
    fs::write(&k, &data).unwrap();
    fs::File::options().write(true).open(&k).unwrap().set_modified(old).unwrap();
    assert!(fs::metadata(&img).unwrap().modified().unwrap() > old, "the image now looks newer than the ELF");
    boot::build_image(&k, false).unwrap();
    let stamp2 = fs::read_to_string(boot::stamp_path(&img)).unwrap();
    assert_ne!(stamp1, stamp2, "the stamp did not follow the new ELF");
    assert_ne!(fs::read(&img).unwrap(), first, "the stale image was kept");
}

// --- 6, 7, 8: refusals and exit statuses -------------------------------------------------------

#[test]
fn usage_errors_exit_64_before_anything_runs() {
    let elf = testkernel();
    let k = elf.to_str().unwrap();
    let many: Vec<String> = (0..=boot::MAX_PARAMS).map(|i| format!("k{i}=1")).collect();
    let mut args = vec!["--kernel", k];
    args.extend(many.iter().map(String::as_str));
    let (st, _, err) = gmpos(&args, &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    assert!(err.contains("boot parameters given; at most"), "{err}");

    let (st, _, err) = gmpos(&["--kernel", k, "--uefi", "--mem", "48"], &[]);
    assert_eq!(st.code(), Some(64), "{err}");
    assert!(err.contains("too little for a UEFI boot"), "{err}");

    let (st, _, err) = gmpos(&["--kernel", k, "--smp", "1"], &[("GMPOS_QEMU_ARGS", "-smp 2")]);
    assert_eq!(st.code(), Some(64), "{err}");
    assert!(err.contains("`-smp` is set by the runner") && err.contains("--smp N"), "{err}");

    let (st, _, err) = gmpos(&["--kernel", k], &[("GMPOS_QEMU_ARGS", "-name \"unbalanced")]);
    assert_eq!(st.code(), Some(64), "{err}");

    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"--sm\xffp");
    let out = Command::new(GMPOS).arg(bad).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));
}

/// `--icount` makes the guest's clock count instructions: two boots print the same serial
/// output, down to the boot time in microseconds that the kernel measures with that clock
/// (without it the figure moves with the host's load).
#[test]
fn icount_boots_are_identical() {
    let elf = testkernel();
    let k = elf.to_str().unwrap();
    let _permit = common::Permit::one();
    let run = || {
        let (st, out, err) = gmpos(&["--icount", "--kernel", k, "--smp", "1", "test=bringup::smp_online"], &[]);
        assert_eq!(st.code(), Some(0), "{out}\n{err}");
        assert!(err.contains("--icount: guest time counts instructions"), "the banner says so: {err}");
        out
    };
    let (a, b) = (run(), run());
    assert!(a.contains("cores online in"), "{a}");
    assert_eq!(a, b, "two --icount boots differ");
}

#[test]
fn qemu_errors_exit_3_and_quoted_qemu_args_work() {
    let elf = testkernel();
    let k = elf.to_str().unwrap();
    let _permit = common::Permit::one();
    // QEMU cannot give the guest 1 TiB: QEMU's error, exit 3, not "triple fault" (2).
    let (st, _, err) = gmpos(&["--kernel", k, "--smp", "1", "--mem", "1048576", "test=bringup::smp_online"], &[]);
    assert_eq!(st.code(), Some(3), "{err}");
    assert!(err.contains("QEMU failed"), "{err}");
    // No QEMU on PATH: exit 3 with the install hint.
    let (st, _, err) = gmpos(&["--kernel", k, "--smp", "1", "test=bringup::smp_online"], &[("PATH", "/nonexistent")]);
    assert_eq!(st.code(), Some(3), "{err}");
    assert!(err.contains("qemu-system-x86_64 not found"), "{err}");
    // A quoted argument with a space reaches QEMU as one word.
    let (st, out, err) = gmpos(&["--kernel", k, "--smp", "1", "test=bringup::smp_online"], &[("GMPOS_QEMU_ARGS", "-name \"my vm\"")]);
    assert_eq!(st.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("'my vm'") || out.contains("smp_online: 1 cores online"), "{out}\n{err}");
}

/// `gmpos ... 2>&1 | head -3`: the reader goes away early; the run still ends with the kernel's
/// verdict (0), not a panic (101).
#[test]
fn a_closed_output_pipe_does_not_change_the_verdict() {
    let elf = testkernel();
    let _permit = common::Permit::one();
    let mut child = Command::new(GMPOS)
        .args(["--kernel", elf.to_str().unwrap(), "--smp", "1", "test=bringup::smp_online"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, then close both pipes.
    let mut buf = [0u8; 16];
    let _ = child.stderr.as_mut().unwrap().read(&mut buf);
    drop(child.stdout.take());
    drop(child.stderr.take());
    let st = wait_for(&mut child, 300, "closed pipes");
    assert_eq!(st.code(), Some(0), "{st}");
}

// --- 6: a bootloader that gives up is reported at once ------------------------------------------

/// A kernel whose bootloader configuration has a bad version byte passes the runner's ELF check
/// but makes the bootloader's UEFI stage panic: the runner must see the panic on the console and
/// stop (exit 2 with the reason) instead of waiting for the timeout.
#[test]
fn uefi_bootloader_panic_is_a_boot_failure_not_a_timeout() {
    use object::{Object, ObjectSection};
    let elf = testkernel();
    let dir = TestDir::new("bad-config");
    let mut data = fs::read(&elf).unwrap();
    let (offset, _) = {
        let file = object::File::parse(&*data).unwrap();
        let sec = file.section_by_name(".bootloader-config").expect("testkernel has a bootloader config");
        sec.file_range().expect("config has file contents")
    };
    // Byte 22 is the "pre-release" flag, which must be 0 or 1.
    data[offset as usize + 22] = 7;
    let k = dir.path().join("k");
    fs::write(&k, &data).unwrap();
    let _permit = common::Permit::one();
    let start = Instant::now();
    let (st, _out, err) = gmpos(&["--kernel", k.to_str().unwrap(), "--uefi", "--smp", "1", "--timeout", "240"], &[]);
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("the bootloader panicked"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(200), "took {:?}: waited for the timeout", start.elapsed());
}

// --- 2: a test binary dies with its parent (a killed `cargo test`) -----------------------------

/// Not a test on its own: the child process of `a_test_binary_dies_with_its_parent`, which sets
/// `GMPOS_RUNNER_HELPER`. It boots a UEFI kernel through the shared harness, as any QEMU test
/// does.
#[test]
#[ignore = "helper process of a_test_binary_dies_with_its_parent"]
fn helper_boot_until_killed() {
    if std::env::var_os("GMPOS_RUNNER_HELPER").is_none() {
        return;
    }
    let o = common::Boot { uefi: true, ..common::Boot::new("testkernel", 1, &["test=bringup::timer_rate"], 600) }.run();
    eprintln!("helper: the boot ended: {}", o.status);
}

/// `cargo test` forwards no signal to its test binary; killing it (here: a shell standing in for
/// it, killed with SIGKILL) must still end the test binary and its QEMU, and leave no temp file.
#[test]
fn a_test_binary_dies_with_its_parent() {
    testkernel(); // built here, not in the helper
    let tmp = TestDir::new("dies-with-parent");
    let me = std::env::current_exe().unwrap();
    let _permit = common::Permit::one();
    // `sh` stays the parent: a command follows the test binary.
    let mut sh = Command::new("sh")
        .args(["-c", "\"$0\" --ignored --exact helper_boot_until_killed --nocapture; echo ended"])
        .arg(&me)
        .env("GMPOS_RUNNER_HELPER", "1")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sh_pid = sh.id();
    let mut found = None;
    poll(240, || {
        found = children_of(sh_pid)
            .into_iter()
            .find_map(|(t, _)| children_of(t).into_iter().find(|(_, c)| c.starts_with("qemu-system")).map(|(q, _)| (t, q)));
        found.is_some()
    });
    let Some((test_pid, qemu_pid)) = found else {
        let _ = sh.kill();
        panic!("the helper never started QEMU");
    };
    sh.kill().unwrap(); // SIGKILL: the parent cannot pass anything on
    sh.wait().unwrap();
    assert!(poll(30, || !alive(test_pid)), "the test binary (pid {test_pid}) outlived its parent");
    assert!(poll(10, || !alive(qemu_pid)), "its QEMU (pid {qemu_pid}) outlived it");
    assert!(tmp.entries().is_empty(), "temp files left behind: {:?}", tmp.entries());
}

// --- 2, 8: run-qemu.sh is the runner's process, also through a symlink -------------------------

/// `run-qemu.sh` run through a symlink (it used to fail to find rust-toolchain.toml), then
/// SIGTERM to the script's PID: it `exec`s the runner, so the runner gets the signal, stops
/// QEMU and removes its temp files.
#[test]
fn sigterm_to_run_qemu_sh_through_a_symlink_stops_everything() {
    let elf = testkernel();
    let tmp = TestDir::new("run-qemu-sh");
    let links = TestDir::new("run-qemu-sh-link");
    let root = boot::repo_dir().unwrap();
    let link = links.path().join("rq");
    std::os::unix::fs::symlink(root.join("run-qemu.sh"), &link).unwrap();
    let _permit = common::Permit::one();
    let mut child = Command::new(&link)
        .args(["--kernel", elf.to_str().unwrap(), "--smp", "1", "--timeout", "0", "test=bringup::timer_rate"])
        .current_dir(links.path())
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut qemu = None;
    poll(240, || {
        qemu = children_of(pid).into_iter().find(|(_, c)| c.starts_with("qemu-system"));
        qemu.is_some() || child.try_wait().unwrap().is_some()
    });
    let Some((qemu_pid, _)) = qemu else {
        let _ = child.kill();
        let mut e = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut e);
        panic!("QEMU never started as a child of run-qemu.sh's PID; it said:\n{e}");
    };
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("gmpos"), "run-qemu.sh's PID runs {} (not exec'd?)", exe.display());
    sigterm(pid);
    let st = wait_for(&mut child, 30, "SIGTERM to run-qemu.sh");
    assert_eq!(st.code(), Some(128 + libc::SIGTERM), "{st}");
    assert!(poll(10, || !alive(qemu_pid)), "QEMU outlived run-qemu.sh");
    assert!(tmp.entries().is_empty(), "temp files left behind: {:?}", tmp.entries());
}
