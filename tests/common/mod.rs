//! Shared harness of the QEMU scenario tests.
//!
//! - Each kernel binary is built once per test process, and each disk image once; a build
//!   failure is remembered, so every test reports it instead of rebuilding.
//! - At most `GMPOS_QEMU_JOBS` (default 2) QEMU instances run at once across the test threads:
//!   the host has few cores and every vCPU is a host thread.
//! - `GMPOS_RELEASE=1` builds the kernels with `--release`; `GMPOS_ECHO=1` copies every serial
//!   console to stdout live (run with `--nocapture` / `--test-threads=1` to read it).
//!
//! Assertion helpers panic with the status, the QEMU command line and the last 60 serial lines.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

pub use boot::{Outcome, RunConfig, Status};

/// Lines of serial output shown when an assertion fails.
const TAIL: usize = 60;

fn env_flag(name: &str) -> bool {
    std::env::var(name).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

fn release() -> bool {
    env_flag("GMPOS_RELEASE")
}

type Cached = Arc<OnceLock<Result<PathBuf, String>>>;

/// Build results keyed by (bin, release, image kind); `None` kind = the ELF itself.
fn cache_slot(key: String) -> Cached {
    static CACHE: OnceLock<Mutex<HashMap<String, Cached>>> = OnceLock::new();
    let map = CACHE.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key).or_default().clone()
}

/// One build at a time: the host has only a couple of cores.
fn build_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kernel ELF for `bin`, built once per test process.
pub fn kernel(bin: &str) -> PathBuf {
    // A killed `cargo test` takes this process, its QEMUs and temp files with it.
    boot::cleanup::exit_with_parent();
    let slot = cache_slot(format!("{bin}/{}/elf", release()));
    let res = slot.get_or_init(|| {
        let _g = build_lock();
        boot::build_kernel(bin, release(), false).map_err(|e| e.to_string())
    });
    match res {
        Ok(p) => p.clone(),
        Err(e) => panic!("cannot build kernel `{bin}`:\n{e}"),
    }
}

/// The BIOS or UEFI image for `bin`, built once per test process.
pub fn image(bin: &str, uefi: bool) -> PathBuf {
    let elf = kernel(bin);
    let slot = cache_slot(format!("{bin}/{}/{}", release(), if uefi { "uefi" } else { "bios" }));
    let res = slot.get_or_init(|| {
        let _g = build_lock();
        boot::build_image(&elf, uefi).map_err(|e| e.to_string())
    });
    match res {
        Ok(p) => p.clone(),
        Err(e) => panic!("cannot build the {} image of `{bin}`:\n{e}", if uefi { "UEFI" } else { "BIOS" }),
    }
}

// ---------------------------------------------------------------------------------------------
// QEMU slots
// ---------------------------------------------------------------------------------------------

struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
    total: usize,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let total = std::env::var("GMPOS_QEMU_JOBS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(2);
        Slots { free: Mutex::new(total), cv: Condvar::new(), total }
    })
}

/// Permission to run `n` QEMU instances' worth of work; released on drop.
pub struct Permit(usize);

impl Permit {
    /// One slot (a normal test).
    pub fn one() -> Permit {
        Permit::take(1)
    }

    /// Every slot: nothing else boots meanwhile (for tests that measure emulated time).
    pub fn all() -> Permit {
        Permit::take(slots().total)
    }

    fn take(n: usize) -> Permit {
        let s = slots();
        let n = n.min(s.total);
        let mut free = s.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < n {
            free = s.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= n;
        Permit(n)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let s = slots();
        *s.free.lock().unwrap_or_else(|p| p.into_inner()) += self.0;
        s.cv.notify_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Booting
// ---------------------------------------------------------------------------------------------

/// How to boot one scenario.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    pub bin: &'a str,
    pub smp: u32,
    /// Boot parameters as "key=value".
    pub params: &'a [&'a str],
    pub timeout_s: u64,
    pub uefi: bool,
    /// Take every QEMU slot (timing-sensitive scenarios).
    pub exclusive: bool,
    /// Guest memory in MiB (None: the runner's default).
    pub mem_mib: Option<u32>,
}

impl<'a> Boot<'a> {
    pub fn new(bin: &'a str, smp: u32, params: &'a [&'a str], timeout_s: u64) -> Self {
        Boot { bin, smp, params, timeout_s, uefi: false, exclusive: false, mem_mib: None }
    }

    pub fn run(&self) -> Outcome {
        let params = self
            .params
            .iter()
            .map(|p| boot::parse_param(p).unwrap_or_else(|e| panic!("bad test parameter: {e}")))
            .collect();
        let cfg = RunConfig {
            bin: self.bin.to_string(),
            smp: self.smp,
            uefi: self.uefi,
            release: release(),
            timeout: Some(Duration::from_secs(self.timeout_s)),
            params,
            ..RunConfig::default()
        };
        let mut cfg = RunConfig { mem_mib: self.mem_mib.unwrap_or(cfg.mem_mib), ..cfg };
        // GMPOS_QEMU / GMPOS_CPU: the whole suite can run on another QEMU or CPU model.
        boot::apply_qemu_env(&mut cfg).unwrap_or_else(|e| panic!("{e}"));
        // Build before taking a slot, so that a build never holds up running QEMUs.
        let img = image(self.bin, self.uefi);
        let _permit = if self.exclusive { Permit::all() } else { Permit::one() };
        boot::run_image(&cfg, &img, env_flag("GMPOS_ECHO")).unwrap_or_else(|e| panic!("cannot boot `{}`: {e}", self.bin))
    }
}

/// Boot `bin` in BIOS mode with `smp` cores and `params` ("key=value"), killed after `timeout_s`.
pub fn boot(bin: &str, smp: u32, params: &[&str], timeout_s: u64) -> Outcome {
    Boot::new(bin, smp, params, timeout_s).run()
}

/// Timeout for a scenario: 120 s with 4 or more cores, 90 s otherwise.
pub fn timeout_for(smp: u32) -> u64 {
    if smp >= 4 {
        120
    } else {
        90
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// The failure report: what went wrong, the status, the command and the serial tail.
pub fn report(o: &Outcome, what: &str) -> String {
    let mut s = format!(
        "{what}\n  status:  {}\n  elapsed: {:.1} s\n  command: {}\n",
        o.status,
        o.elapsed.as_secs_f64(),
        o.command
    );
    if !o.qemu_stderr.trim().is_empty() {
        s += &format!("  QEMU stderr:\n{}\n", o.qemu_stderr.trim_end());
    }
    s += &format!("--- last {TAIL} lines of serial output ---\n{}\n--- end of serial output ---", o.last_lines(TAIL));
    s
}

/// Fail the test with the run's report.
pub fn fail(o: &Outcome, what: &str) -> ! {
    panic!("{}", report(o, what))
}

/// Assert the kernel exited with success (0x10).
pub fn expect_pass(o: &Outcome) {
    if o.status != Status::Pass {
        fail(o, "expected the kernel to PASS");
    }
}

/// Assert the kernel exited with failure (0x11): not a pass, not a timeout, not a triple fault.
pub fn expect_fail(o: &Outcome) {
    if o.status != Status::Fail {
        fail(o, "expected the kernel to FAIL (exit 0x11)");
    }
}

/// Assert the kernel failed (0x11) and its serial output contains `needle`.
pub fn expect_fail_with(o: &Outcome, needle: &str) {
    expect_fail(o);
    expect_contains(o, needle);
}

/// Assert the serial output contains `needle`.
pub fn expect_contains(o: &Outcome, needle: &str) {
    if !o.serial.contains(needle) {
        fail(o, &format!("serial output does not contain {needle:?}"));
    }
}

pub use boot::strip_cpu;

/// All serial lines that start with `prefix` (after the `[cpuN] ` prefix
/// every kernel line has, and leading whitespace), trimmed.
pub fn lines_with<'o>(o: &'o Outcome, prefix: &str) -> Vec<&'o str> {
    o.serial.lines().map(|l| strip_cpu(l).trim()).filter(|l| l.starts_with(prefix)).collect()
}

/// The first serial line that starts with `prefix` (after leading whitespace), trimmed.
pub fn expect_line<'o>(o: &'o Outcome, prefix: &str) -> &'o str {
    match lines_with(o, prefix).first() {
        Some(l) => l,
        None => fail(o, &format!("no serial line starts with {prefix:?}")),
    }
}

/// The value of a `key=value` word in a line, parsed.
pub fn field<T: std::str::FromStr>(o: &Outcome, line: &str, key: &str) -> T {
    let want = format!("{key}=");
    let word = line.split_whitespace().find_map(|w| w.strip_prefix(want.as_str()));
    match word.and_then(|v| v.parse::<T>().ok()) {
        Some(v) => v,
        None => fail(o, &format!("line {line:?}: no parsable `{key}=` field")),
    }
}

/// The goroutine a failure report names: the `N` of the first
/// `goroutine N [...]:` header. Fails unless the report has one.
pub fn reported_goroutine(o: &Outcome) -> u64 {
    let line = expect_line(o, "goroutine ");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| fail(o, &format!("bad goroutine header {line:?}")))
}

/// Boot the `testkernel` with `test=NAME` plus `extra` parameters, and
/// require that it passes and says so (`test NAME: PASS`).
pub fn pass_scenario(test: &str, smp: u32, extra: &[&str]) -> Outcome {
    let t = format!("test={test}");
    let mut params = vec![t.as_str()];
    params.extend_from_slice(extra);
    let o = boot("testkernel", smp, &params, timeout_for(smp));
    expect_pass(&o);
    expect_contains(&o, &format!("test {test}: PASS"));
    o
}
