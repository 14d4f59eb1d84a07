//! The gdb extension (`tools/gdb/gmpos.py`) against a live kernel.
//!
//! Boots the `gdbstate` scenario halted, as `--gdb` does (`-S`, with the gdb
//! stub on a free port instead of :1234 so that a developer's own session
//! does not collide), and runs gdb in batch mode: a breakpoint at
//! `gdbstate_stop_here`, where goroutines are parked on channels, in a
//! select, asleep, runnable in the local queue, in `runnext` and (preempted
//! asynchronously) in the global queue; then `info goroutines`, `goroutine
//! all bt`, `goroutine N frame K`, `info runq` and `info sched`. gdb then
//! detaches, and the kernel must run on to a PASS: the extension's register
//! switching must leave the cores as it found them.
//!
//! gdb is installed with apt when missing (as run-qemu.sh installs QEMU).
//! Hard timeouts: gdb is killed after 150 s, QEMU after 180 s; both are
//! killed on every path out of the test (a guard's Drop).
mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GDB_TIMEOUT: Duration = Duration::from_secs(150);
const QEMU_TIMEOUT: Duration = Duration::from_secs(180);

/// Kills the process when dropped (on success, failure and panic alike).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    /// Wait for the exit until `deadline`; kill it then.
    fn wait_until(&mut self, deadline: Instant) -> Option<std::process::ExitStatus> {
        loop {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn capture(mut src: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let h = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = src.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&chunk[..n]);
        }
    });
    (buf, h)
}

fn text(b: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

/// gdb, installed with apt if missing (CI runs as root on a fresh machine).
fn ensure_gdb() {
    let have = || Command::new("gdb").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if have() {
        return;
    }
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false);
    if !root {
        panic!("gdb is not installed; install it with: sudo apt-get update && sudo apt-get install -y gdb");
    }
    eprintln!("tests/gdb.rs: installing gdb with apt-get");
    let ok = Command::new("sh")
        .args(["-c", "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y gdb"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && have(), "could not install gdb with apt-get (sudo apt-get install -y gdb)");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    l.local_addr().expect("local addr").port()
}

/// The `gdbstate: goroutine N is ROLE` lines: role -> goid.
fn roles(serial: &str) -> std::collections::HashMap<String, u64> {
    let mut m = std::collections::HashMap::new();
    for l in serial.lines() {
        let l = common::strip_cpu(l);
        if let Some(rest) = l.strip_prefix("gdbstate: goroutine ") {
            let mut w = rest.split_whitespace();
            if let (Some(id), Some("is"), Some(role)) = (w.next(), w.next(), w.next()) {
                if let Ok(id) = id.parse() {
                    m.insert(role.to_string(), id);
                }
            }
        }
    }
    m
}

/// The `info goroutines` line of goroutine `id`.
fn goroutine_line<'a>(out: &'a str, id: u64) -> Option<&'a str> {
    out.lines().find(|l| {
        let mut w = l.trim_start_matches(['*', ' ']).split_whitespace();
        l.len() > 2 && (l.starts_with("* ") || l.starts_with("  ")) && w.next() == Some(&id.to_string())
    })
}

/// The `goroutine all bt` section of goroutine `id`: from its header to the blank line.
fn bt_section(out: &str, id: u64) -> Option<String> {
    let head = format!("goroutine {id} [");
    let start = out.lines().position(|l| l.starts_with(&head))?;
    Some(out.lines().skip(start).take_while(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n"))
}

#[test]
fn gdb_goroutines_runq_and_backtraces() {
    ensure_gdb();
    let elf = common::kernel("testkernel");
    let img = common::image("testkernel", false);
    let root_buf = boot::repo_dir().expect("the repository root");
    let root = root_buf.as_path();
    let script = root.join("tools/gdb/gmpos.py");
    let port = free_port();
    let cfg = common::RunConfig {
        bin: "testkernel".into(),
        smp: 2,
        params: vec![("test".into(), "gdbstate::gdbstate".into()), ("gomaxprocs".into(), "1".into())],
        // What --gdb does (-s -S), on a port of our own.
        extra_qemu_args: vec!["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()],
        ..common::RunConfig::default()
    };
    let _permit = common::Permit::one();
    let mut qcmd = boot::qemu_command(&cfg, &img, None, None);
    let qemu_line = boot::render_command(&qcmd);
    qcmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut qemu = KillOnDrop(qcmd.spawn().expect("start qemu-system-x86_64"));
    let qemu_start = Instant::now();
    let (serial, serial_h) = capture(qemu.0.stdout.take().unwrap());
    let (qerr, qerr_h) = capture(qemu.0.stderr.take().unwrap());

    // Wait (bounded) for the stub to listen.
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "QEMU's gdb stub did not listen on {port}: {}", text(&qerr));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Goroutine ids are handed out in spawn order from P0's batch (the
    // scenario runs with one P); checked against the serial log below.
    let (main, recv, send, select, sleep, hog, queued, next) = (1, 2, 3, 4, 5, 6, 7, 8);
    let cmds = [
        "set pagination off".to_string(),
        "set confirm off".to_string(),
        format!("source {}", script.display()),
        format!("target remote 127.0.0.1:{port}"),
        "break gdbstate_stop_here".to_string(),
        "continue".to_string(),
        "echo ==== before\\n".to_string(),
        "printf \"rip=%#lx rsp=%#lx rbp=%#lx rbx=%#lx\\n\", $rip, $rsp, $rbp, $rbx".to_string(),
        "echo ==== info goroutines\\n".to_string(),
        "info goroutines".to_string(),
        "echo ==== goroutine all bt\\n".to_string(),
        "goroutine all bt".to_string(),
        "echo ==== goroutine frame\\n".to_string(),
        format!("goroutine {recv} frame function testkernel::gdbstate::gdbstate_receiver"),
        "echo ==== info runq\\n".to_string(),
        "info runq".to_string(),
        "echo ==== info sched\\n".to_string(),
        "info sched".to_string(),
        "echo ==== check\\n".to_string(),
        "info gmpos check".to_string(),
        format!("source {}", root.join("tests/gdb/corrupt.py").display()),
        format!("python corrupt({send}, {select}, {queued})"),
        "echo ==== corrupt\\n".to_string(),
        "info goroutines".to_string(),
        format!("goroutine {send} bt"),
        "info runq".to_string(),
        "python restore()".to_string(),
        "echo ==== after\\n".to_string(),
        "printf \"rip=%#lx rsp=%#lx rbp=%#lx rbx=%#lx\\n\", $rip, $rsp, $rbp, $rbx".to_string(),
        "delete".to_string(),
        "detach".to_string(),
    ];
    let mut gcmd = Command::new("gdb");
    gcmd.args(["-nx", "-batch"]);
    for c in &cmds {
        gcmd.arg("-ex").arg(c);
    }
    gcmd.arg(&elf).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let gdb_line = format!("gdb {}", cmds.iter().map(|c| format!("-ex '{c}'")).collect::<Vec<_>>().join(" "));
    let mut gdb = KillOnDrop(gcmd.spawn().expect("start gdb"));
    let (gout, gout_h) = capture(gdb.0.stdout.take().unwrap());
    let (gerr, gerr_h) = capture(gdb.0.stderr.take().unwrap());
    let gdb_status = gdb.wait_until(Instant::now() + GDB_TIMEOUT);
    let _ = (gout_h.join(), gerr_h.join());
    let out = text(&gout);
    let err = text(&gerr);
    // After detach the kernel runs on and must pass.
    let qemu_status = qemu.wait_until(qemu_start + QEMU_TIMEOUT);
    let _ = (serial_h.join(), qerr_h.join());
    let serial = text(&serial);

    let report = |what: &str| -> String {
        format!(
            "{what}\n--- gdb ({gdb_status:?}): {gdb_line}\n{out}\n--- gdb stderr\n{err}\n--- QEMU ({qemu_status:?}): {qemu_line}\n{}\n--- serial\n{serial}",
            text(&qerr)
        )
    };
    let check = |cond: bool, what: &str| {
        if !cond {
            panic!("{}", report(what));
        }
    };

    check(gdb_status.is_some(), "gdb did not finish within its timeout (killed)");
    check(out.contains("Breakpoint 1, ") && out.contains("gdbstate_stop_here"), "gdb did not stop at gdbstate_stop_here");
    let ids = roles(&serial);
    for (role, id) in [("main", main), ("recv", recv), ("send", send), ("select", select), ("sleep", sleep), ("hog", hog), ("queued", queued), ("next", next)] {
        check(ids.get(role) == Some(&id), &format!("the scenario's {role} goroutine is not goroutine {id} (serial: {ids:?})"));
    }
    check(!out.contains("Traceback") && !err.contains("Traceback"), "the extension raised a Python exception");
    let clean = &out[..out.find("==== corrupt").unwrap_or(out.len())];
    check(!clean.lines().any(|l| l.starts_with("gmpos: ") && !l.starts_with("gmpos: loaded")), "the extension reported an error");

    // info goroutines: ids, statuses, wait reasons, where.
    let section = |name: &str| -> String {
        let start = out.find(&format!("==== {name}\n")).unwrap_or_else(|| panic!("{}", report(&format!("no {name} section"))));
        let rest = &out[start + name.len() + 6..];
        rest[..rest.find("\n==== ").unwrap_or(rest.len())].to_string()
    };
    let ig = section("info goroutines");
    let expect = [
        (main, "running", "", "gdbstate_stop_here"),
        (recv, "waiting", "chan receive", "gdbstate_receiver"),
        (send, "waiting", "chan send", "gdbstate_sender"),
        (select, "waiting", "select", "gdbstate_selector"),
        (sleep, "waiting", "sleep", "gdbstate_sleeper"),
        (hog, "runnable", "preempted (async)", "gdbstate_hog"),
        (queued, "runnable", "P0 runq[1]", "not started"),
        (next, "runnable", "P0 runnext", "not started"),
    ];
    for (id, status, reason, wherein) in expect {
        let line = goroutine_line(&ig, id).unwrap_or_else(|| panic!("{}", report(&format!("info goroutines has no goroutine {id}"))));
        let words: Vec<&str> = line.trim_start_matches(['*', ' ']).split_whitespace().collect();
        check(words.get(1) == Some(&status), &format!("goroutine {id}: status is not {status}: {line:?}"));
        check(line.contains(reason), &format!("goroutine {id}: no {reason:?} in {line:?}"));
        check(line.contains(wherein), &format!("goroutine {id}: where is not {wherein:?}: {line:?}"));
        check(line.starts_with('*') == (id == main), &format!("goroutine {id}: `*` must mark exactly the running one: {line:?}"));
    }
    // Preempted into the global queue, then moved to P0's local queue with
    // main by globrunqget's batch, behind main.
    check(goroutine_line(&ig, hog).is_some_and(|l| l.contains("P0 runq[0]")), "the hog must be first in P0's local queue");

    // goroutine all bt: the parked ones name the function that parked them.
    let bts = section("goroutine all bt");
    for (id, head, func) in [
        (recv, "[chan receive", "gdbstate_receiver"),
        (send, "[chan send", "gdbstate_sender"),
        (select, "[select", "gdbstate_selector"),
        (sleep, "[sleep", "gdbstate_sleeper"),
        (hog, "[runnable", "gdbstate_hog"),
        (main, "[running", "gdbstate_stop_here"),
    ] {
        let bt = bt_section(&bts, id).unwrap_or_else(|| panic!("{}", report(&format!("no backtrace of goroutine {id}"))));
        check(bt.lines().next().is_some_and(|l| l.contains(head)), &format!("goroutine {id}: header is not {head:?}:\n{bt}"));
        check(bt.contains(func), &format!("goroutine {id}: backtrace does not name {func}:\n{bt}"));
        check(!bt.contains("backtrace stopped"), &format!("goroutine {id}: backtrace cut short:\n{bt}"));
        if id != main {
            check(bt.contains("goexit"), &format!("goroutine {id}: backtrace does not reach goexit:\n{bt}"));
        }
    }
    let recv_bt = bt_section(&bts, recv).unwrap();
    check(recv_bt.contains("gopark") && recv_bt.contains("chanrecv"), &format!("the receiver's backtrace lacks gopark/chanrecv:\n{recv_bt}"));
    check(bt_section(&bts, hog).unwrap().contains("preempted asynchronously"), "the hog's backtrace is not from its interrupt frame");

    // goroutine N frame K: gdb's own unwinder on the goroutine's registers.
    let fr = section("goroutine frame");
    // gdb picks the receiver's physical frame, or the receive inlined into it.
    check(fr.contains("restored afterwards") && fr.lines().any(|l| l.starts_with('#') && (l.contains("gdbstate_receiver") || l.contains("::recv"))),
        "goroutine N frame function gdbstate_receiver did not select the receiver's frame");

    // info runq: P0's queues in order, its timer, the global queue, the Ms.
    let rq = section("info runq");
    for needle in [
        "P0: status=running m=M0".to_string(),
        format!("runnext: G{next}"),
        "local queue (2, ".to_string(),
        format!("[G{hog} G{queued}]"),
        format!("ready G{sleep}"),
        "global queue: runqsize=0: []".to_string(),
        format!("curg=G{main}"),
        "M1: cpu1".to_string(),
    ] {
        check(rq.contains(&needle), &format!("info runq lacks {needle:?}"));
    }
    let sc = section("info sched");
    check(sc.contains("SCHED (from memory): gomaxprocs=1 ") && sc.contains(&format!("G{recv}: status=4(chan receive)")),
        "info sched lacks the SCHED line or a G line");
    check(section("check").contains("gmpos gdb extension: OK"), "info gmpos check found problems");
    // A broken state: each bad item is one readable error, the rest prints.
    let bad = section("corrupt");
    for needle in [
        format!("goroutine {select}: status 77 is not a goroutine status"),
        "g 0xdead0000: cannot read".to_string(),
        "g 0x40: cannot read".to_string(),
        "is on a queue or core but not in allgs".to_string(),
        "frame pointer 0x12345678 is outside the goroutine's stack".to_string(),
        format!("runnext: g 0x40 (cannot read"),
    ] {
        check(bad.contains(&needle), &format!("with a corrupted state, no {needle:?}"));
    }
    for id in [main, recv, send, sleep, hog, queued] {
        check(goroutine_line(&bad, id).is_some(), &format!("with a corrupted state, goroutine {id} is not listed"));
    }
    // The registers are back as they were before `goroutine N frame`.
    let (before, after) = (section("before"), section("after"));
    let first = |s: &str| s.lines().next().unwrap_or("").to_string();
    check(before.contains("rip=0x") && first(&before) == first(&after), "the core's registers were not restored after `goroutine N frame`");

    // Detached, the kernel finishes the scenario.
    check(qemu_status.is_some(), "QEMU did not exit after gdb detached (killed at the timeout)");
    check(serial.contains("test gdbstate::gdbstate: PASS"), "the kernel did not pass after gdb detached");
    check(boot::Status::from_qemu_exit(qemu_status.unwrap()) == boot::Status::Pass, "QEMU's exit status is not a pass");
}
