//! Kernel tests: `#[ktest]` functions, collected through a linker section
//! and run by name from the `test=` boot parameter.
//!
//! ```ignore
//! use kernel::ktest::{ktest, T};
//!
//! #[ktest(smp = [1, 2, 4], timeout = 30)]
//! fn goroutines_run(t: &mut T) {
//!     let wg = kernel::WaitGroup::new();
//!     ...
//!     t.log(format_args!("{} goroutines ran", n));
//! }
//! ```
//!
//! Any kernel binary (`kernel::main!`) is also a test binary: booted with
//! `test=NAME` (or a glob, `test=chan::*`) it runs the matching tests
//! instead of its `main`, and prints KTAP on the serial console:
//!
//! ```text
//! KTAP version 1
//! 1..2
//! # ktest start chan::sync_mutex
//! ... whatever the test prints; t.log() lines are `# ...` ...
//! ok 1 chan::sync_mutex
//! # ktest start chan::sync_once
//! ok 2 chan::sync_once # SKIP needs 2 cores
//! # ktest done
//! ```
//!
//! A test fails by panicking (or by a fatal error of the runtime), which
//! ends the boot: the host runner (`cargo run -- test`) sees the report on
//! the console and a failure exit, and compares them with what the test
//! declared (`should_panic = "..."`, `fatal = "..."`). The runner reads the
//! tests' settings from the ELF's `linkme_KTESTS` section without booting
//! (`cargo run -- test --list`); see `gmp_core::ktest` for the format.
use crate::println;
use core::fmt;
use gmp_core::ktest::{Meta, ENTRY_LEN, META_LEN};

pub use gmp_core::ktest::meta_bytes;
pub use ktest_macros::ktest;
pub use linkme;

/// One entry of the `KTESTS` section: plain metadata text, then the
/// function. Its layout is what the host runner reads from the ELF.
#[repr(C)]
pub struct KTest {
    /// NUL-padded `key:value` lines (`gmp_core::ktest`).
    pub meta: [u8; META_LEN],
    /// The test.
    pub run: fn(&mut T),
}

const _: () = assert!(core::mem::size_of::<KTest>() == ENTRY_LEN);

/// Every `#[ktest]` of the binary, in link order.
#[linkme::distributed_slice]
pub static KTESTS: [KTest];

/// What a running test can do: log, read its case, skip.
pub struct T {
    module: &'static str,
    func: &'static str,
    case: Option<&'static str>,
    skipped: bool,
    errors: u32,
}

impl T {
    /// The test's name (`module::function[case]`, without the crate).
    pub fn name(&self) -> impl fmt::Display {
        Shown(self.module, self.func, self.case)
    }

    /// The case of a parameterized test (`cases = [...]`), from the `case=`
    /// boot parameter; `None` for a plain test.
    pub fn case(&self) -> Option<&'static str> {
        self.case
    }

    /// A diagnostic line (Go's `t.Log`): printed as a KTAP `# ` line, shown
    /// in the runner's report.
    pub fn log(&self, msg: impl fmt::Display) {
        println!("# {msg}");
    }

    /// Record a failure but keep running (Go's `t.Error`); the test is
    /// reported as failed when it returns.
    pub fn error(&mut self, msg: impl fmt::Display) {
        println!("# error: {msg}");
        self.errors += 1;
    }

    /// Mark the test skipped (Go's `t.Skip`, KTAP's `# SKIP`); the test
    /// should return right after.
    pub fn skip(&mut self, reason: impl fmt::Display) {
        println!("# skip: {reason}");
        self.skipped = true;
    }
}

/// `log!(t, "x = {}", x)`: [`T::log`] with a format string.
#[macro_export]
macro_rules! ktest_log {
    ($t:expr, $($arg:tt)*) => { $t.log(format_args!($($arg)*)) };
}
pub use crate::ktest_log as log;

fn meta(k: &'static KTest) -> Option<Meta<'static>> {
    Meta::parse(&k.meta)
}

fn print_known() {
    for m in KTESTS.iter().filter_map(meta) {
        let module = m.module();
        if module.is_empty() {
            println!("  {}", m.func());
        } else {
            println!("  {module}::{}", m.func());
        }
    }
}

/// Is there any test in this binary?
pub fn any() -> bool {
    !KTESTS.is_empty()
}

/// Run every test matching `pattern` in link order (the boot parameter
/// `test=`), printing KTAP. Returns when all have passed or been skipped;
/// a test that fails ends the boot with a failure exit.
pub fn run(pattern: &str) {
    let n = KTESTS.iter().filter_map(meta).filter(|m| m.matches(pattern)).count();
    if n == 0 {
        println!("unknown test \"{pattern}\"; known tests:");
        print_known();
        crate::arch::x86_64::exit::exit_failure();
    }
    let case = crate::boot::params().case.as_ref().map(|c| c.as_str());
    let glob_mode = pattern.contains(['*', '?']);
    println!("KTAP version 1");
    println!("1..{n}");
    let mut failed = 0;
    let mut i = 0;
    for k in KTESTS.iter() {
        let Some(m) = meta(k) else { continue };
        if !m.matches(pattern) {
            continue;
        }
        i += 1;
        let shown = Shown(m.module(), m.func(), case);
        if glob_mode && !plain(&m) {
            // A glob runs a suite in one boot (the runner's --isolate suite): tests that
            // expect a failure or need their own boot settings run alone.
            println!("ok {i} {shown} # SKIP run alone (own settings)");
            continue;
        }
        let mut t = T { module: m.module(), func: m.func(), case, skipped: false, errors: 0 };
        println!("# ktest start {shown}");
        println!(
            "test {shown}: start (gomaxprocs={}, ncpu={})",
            crate::current_gomaxprocs(),
            crate::num_cpu()
        );
        let t0 = crate::nanotime();
        (k.run)(&mut t);
        let ms = (crate::nanotime() - t0) / 1_000_000;
        if t.errors > 0 {
            failed += 1;
            println!("not ok {i} {shown} # {} error(s)", t.errors);
        } else if t.skipped {
            println!("ok {i} {shown} # SKIP");
        } else {
            println!("test {shown}: PASS ({ms} ms)");
            println!("ok {i} {shown}");
        }
    }
    println!("# ktest done: {n} run, {failed} failed");
    if failed > 0 {
        crate::arch::x86_64::exit::exit_failure();
    }
}

/// May the test share a boot with others (the same rule as the runner's `suite_eligible`)?
fn plain(m: &Meta) -> bool {
    m.expect() == gmp_core::ktest::Expect::Pass
        && ["case", "params", "skip_params", "exclusive", "smp_only", "uefi", "mem"].iter().all(|k| m.get(k).is_none())
        && m.get("min_cpus").map_or(true, |c| c == "1")
}

/// `module::fn[case]` without allocating.
struct Shown(&'static str, &'static str, Option<&'static str>);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_empty() {
            write!(f, "{}::", self.0)?;
        }
        f.write_str(self.1)?;
        if let Some(c) = self.2 {
            write!(f, "[{c}]")?;
        }
        Ok(())
    }
}

static USER_MAIN: spin::Once<fn()> = spin::Once::new();

/// Called by `kernel::main!` before booting: remember the program's `main`.
pub fn set_main(main: fn()) {
    USER_MAIN.call_once(|| main);
}

/// Goroutine 1 of every kernel binary: the tests named by `test=` if the
/// binary has tests, else the program's `main`.
pub fn entry() {
    match crate::boot::params().test.as_ref() {
        Some(pattern) if any() => run(pattern.as_str()),
        _ => (USER_MAIN.get().expect("kernel::main! sets the main function"))(),
    }
}
