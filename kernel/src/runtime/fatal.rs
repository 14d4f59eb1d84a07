//! Failure reports, in Go's words, then a failure exit of QEMU.
//!
//! | what | first line |
//! |---|---|
//! | `panic!` in a goroutine | `panic: <message>` |
//! | runtime invariant broken, misuse, OOM | `fatal error: <message>` |
//! | deadlock (`checkdead`) | `fatal error: all goroutines are asleep - deadlock!` |
//! | stack overflow (guard page) | `runtime: goroutine stack exceeds ...` + `fatal error: stack overflow` |
//! | CPU exception | `fatal error: unexpected <exception> ...` |
//!
//! followed by a blank line and `goroutine N [status]:` for the goroutine
//! that failed, as Go's traceback begins. Only the first failure is
//! reported: a second core failing at the same moment halts and waits for
//! the exit; a fault on the reporting core itself while it prints ends the
//! run at once with a failure exit.
use super::runtime2::{gstatus_name, G, G_WAITING};
use crate::arch::x86_64::{exit, percpu, serial};
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The core printing the failure report, or NOBODY. Set once by the first
/// failure (CAS in `begin`); read by a later failure on any core.
static REPORTER: AtomicUsize = AtomicUsize::new(NOBODY);
const NOBODY: usize = usize::MAX;

macro_rules! eprintln {
    ($($arg:tt)*) => (serial::emergency(format_args!("{}\n", format_args!($($arg)*))));
}

fn begin() {
    x86_64::instructions::interrupts::disable();
    let me = percpu::cpu_id();
    match REPORTER.compare_exchange(NOBODY, me, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        // This core failed again while printing its own report (a fault in
        // a panic message's Display, in the backtrace, ...): that report
        // will never finish, so end the run now. Halting here, as every
        // other core does, left no one to exit QEMU: a hang until timeout.
        Err(r) if r == me => {
            serial::emergency(format_args!("fatal error: fault while printing the failure report above\n"));
            exit::exit_failure()
        }
        // Another core is reporting; let it finish and exit.
        Err(_) => crate::arch::x86_64::halt_forever(),
    }
}

/// After the report: write the execution tracer's flight recorder (if
/// tracing is on), then a failure exit.
fn die() -> ! {
    super::tracer::dump(super::tracer::END_FATAL);
    super::profiler::dump();
    exit::exit_failure()
}

/// The goroutine running on this core, if any.
pub fn current_g() -> Option<&'static G> {
    let g = percpu::curg_raw() as *const G;
    // SAFETY: curg is null or points to a live G (Gs are never freed).
    unsafe { g.as_ref() }
}

fn goroutine_header(g: Option<&G>) {
    match g {
        Some(g) => {
            let st = g.status();
            // SAFETY: diagnostic read of owner fields of a G that is not
            // going anywhere (the world is ending).
            let (reason, startfn, parent) = unsafe { (g.waitreason.get(), g.startfn.get(), g.parent_goid.get()) };
            if st == G_WAITING {
                eprintln!("goroutine {} [{}]:", g.id(), reason.as_str());
            } else {
                eprintln!("goroutine {} [{}]:", g.id(), gstatus_name(st));
            }
            eprintln!("\tentry {startfn}");
            if parent != 0 {
                eprintln!("\tcreated by goroutine {parent}");
            }
        }
        None => eprintln!("(on the scheduler stack g0 of cpu{}, no goroutine)", percpu::cpu_id()),
    }
}

/// Print a frame-pointer backtrace of the current stack (return addresses).
fn backtrace() {
    let mut bp: u64;
    // SAFETY: reading rbp has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) bp) };
    let mut line = [0u64; 12];
    let mut n = 0;
    while n < line.len() && bp != 0 && bp % 8 == 0 && crate::mem::is_mapped_unlocked(bp) && crate::mem::is_mapped_unlocked(bp + 8) {
        // SAFETY: both words were checked to be mapped; a frame-pointer
        // chain is [saved rbp, return address].
        let (next, ret) = unsafe { (*(bp as *const u64), *((bp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        line[n] = ret;
        n += 1;
        if next <= bp {
            break;
        }
        bp = next;
    }
    if n > 0 {
        // The kernel is position-independent; print ELF addresses (minus
        // the load offset), one less than the return address so that
        // `addr2line -f -C -e <kernel ELF> ADDR...` names the call site.
        let off = crate::boot::KERNEL_IMAGE_OFFSET.load(Ordering::Relaxed);
        let mut buf = [0u8; 256];
        let mut w = Buf { b: &mut buf, n: 0 };
        for r in &line[..n] {
            let _ = core::fmt::Write::write_fmt(&mut w, format_args!(" {:#x}", r.wrapping_sub(off) - 1));
        }
        let len = w.n;
        eprintln!("backtrace (addr2line -f -C -e <kernel ELF>):{}", core::str::from_utf8(&buf[..len]).unwrap_or(""));
    }
}

struct Buf<'a> {
    b: &'a mut [u8],
    n: usize,
}
impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let k = s.len().min(self.b.len() - self.n);
        self.b[self.n..self.n + k].copy_from_slice(&s.as_bytes()[..k]);
        self.n += k;
        Ok(())
    }
}

/// A fatal runtime error (Go's `throw`/`fatal`): report and exit.
pub fn fatal(msg: fmt::Arguments) -> ! {
    begin();
    eprintln!("fatal error: {msg}");
    eprintln!("");
    goroutine_header(current_g());
    backtrace();
    die()
}

/// Go's `throw`: a broken runtime invariant.
pub fn throw(msg: &str) -> ! {
    fatal(format_args!("{msg}"))
}

/// `fatal error: all goroutines are asleep - deadlock!`, listing every
/// goroutine that is not dead.
pub fn deadlock() -> ! {
    deadlock_because(None)
}

/// The deadlock report when goroutines are runnable but every core is
/// locked (LockOSThread) to a goroutine that waits: nothing can run them.
pub fn deadlock_locked_cores(locked: u32) -> ! {
    deadlock_because(Some(format_args!(
        "runtime: every core ({locked}) is locked (LockOSThread) to a goroutine that waits, so the runnable goroutines below can never run"
    )))
}

fn deadlock_because(why: Option<core::fmt::Arguments>) -> ! {
    begin();
    eprintln!("fatal error: all goroutines are asleep - deadlock!");
    if let Some(why) = why {
        eprintln!("{why}");
    }
    if crate::boot::PARAMS.get().map(|p| p.scheddetail).unwrap_or(false) {
        // The scheduler's state, as scheddetail prints it (no lock this
        // path holds is taken by it: checkdead holds only sched.lock).
        super::trace::schedtrace(true);
    }
    super::proc::for_each_g_unlocked(|g| {
        if g.status() != super::runtime2::G_DEAD && g.status() != super::runtime2::G_IDLE {
            eprintln!("");
            goroutine_header(Some(g));
        }
    });
    die()
}

/// The Rust panic handler: Go's `panic: <msg>` report.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    begin();
    eprintln!("panic: {}", info.message());
    eprintln!("");
    goroutine_header(current_g());
    if let Some(loc) = info.location() {
        eprintln!("\t{}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    backtrace();
    die()
}

/// A CPU exception the kernel cannot handle.
pub fn exception(desc: &str, vector: u8, code: Option<u64>, rip: u64, rsp: u64, cr2: u64) -> ! {
    begin();
    match code {
        Some(c) => eprintln!(
            "fatal error: unexpected {desc} (vector {vector}, error code {c:#x}) at rip={rip:#x} rsp={rsp:#x} cr2={cr2:#x} on cpu{}",
            percpu::cpu_id()
        ),
        None => eprintln!(
            "fatal error: unexpected {desc} (vector {vector}) at rip={rip:#x} rsp={rsp:#x} cr2={cr2:#x} on cpu{}",
            percpu::cpu_id()
        ),
    }
    if vector == 14 {
        eprintln!("page fault: {} address {cr2:#x}", if cr2 < 4096 { "nil pointer dereference at" } else { "unmapped or protected" });
    }
    eprintln!("");
    goroutine_header(current_g());
    die()
}

/// A goroutine ran into its guard page.
/// A page fault in the stack of a dead goroutine: a pointer to a local
/// that outlived its goroutine (mem::stack's live bits). Names the
/// goroutine that made the access.
pub fn dead_stack(addr: u64, lo: u64, rip: u64) -> ! {
    begin();
    let g = current_g();
    eprintln!(
        "fatal error: unexpected page fault at {addr:#x} (rip={rip:#x}) in the stack [{lo:#x}, {:#x}) of a dead goroutine on cpu{}: a pointer into a goroutine's stack outlived the goroutine",
        lo + crate::mem::stack::STACK_SIZE,
        percpu::cpu_id()
    );
    eprintln!("");
    goroutine_header(g);
    die()
}

pub fn stack_overflow(addr: u64, lo: u64, rip: u64) -> ! {
    begin();
    let g = current_g();
    if g.map(|g| g.stack_lo) != Some(lo) {
        // Not this goroutine's own guard page: a wild pointer into another
        // stack's guard (or a fault on g0), not an overflow of this one.
        eprintln!(
            "fatal error: unexpected page fault at {addr:#x} (rip={rip:#x}) in the guard page of another goroutine's stack [{lo:#x}, {:#x}) on cpu{}",
            lo + crate::mem::stack::STACK_SIZE,
            percpu::cpu_id()
        );
        eprintln!("");
        goroutine_header(g);
        exit::exit_failure()
    }
    let hi = g.map(|g| g.stack_hi).unwrap_or(0);
    eprintln!("runtime: goroutine stack exceeds {}-byte limit", crate::mem::stack::STACK_SIZE);
    eprintln!("runtime: page fault at {addr:#x} in the guard page below stack=[{lo:#x}, {hi:#x}] (rip={rip:#x})");
    eprintln!("fatal error: stack overflow");
    eprintln!("");
    goroutine_header(g);
    die()
}
