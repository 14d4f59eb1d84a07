//! Nothing outlives a run: child processes, temporary files, and what a signal does to both.
//!
//! ## The protocol
//!
//! Every child the runner starts (the nested `cargo build`, QEMU) is started through [`spawn`]
//! and every temporary file or directory it makes is made through [`create_temp`]. Both are
//! recorded in one registry (a mutex). The first [`spawn`] also starts a thread that waits for
//! SIGINT, SIGTERM and SIGHUP (the `signal-hook` crate). When one arrives, that thread:
//! 1. marks the registry interrupted (under the lock): from then on [`spawn`] and
//!    [`create_temp`] start and create nothing, and the thread that asked waits for the end;
//! 2. sends SIGTERM to every recorded child (QEMU; cargo as a whole process group, so its rustc
//!    children go too), and SIGKILL to those still recorded two seconds later. A child leaves
//!    the registry only when its owner has reaped it, so a signal never reaches a recycled pid;
//! 3. removes every recorded temporary path, including the runner's private temp directory
//!    (where the `bootloader` crate's FAT partition file is made, see [`private_tmp`]);
//! 4. ends the process with the signal's status (128 + signal number).
//!
//! A signal cannot be caught when it is SIGKILL, so each child is also started with
//! `PR_SET_PDEATHSIG`: the kernel kills it when the thread that started it dies. That thread is
//! always the one that waits for the child, so the child lives exactly as long as its waiter.
//!
//! A test binary is a child of `cargo test`, which forwards nothing: [`exit_with_parent`] makes
//! the test process itself receive SIGTERM when cargo dies, and the handler above does the rest.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

#[derive(Default)]
struct Registry {
    /// The signal being handled, once one arrived.
    interrupted: Option<i32>,
    next_id: u64,
    /// Live children: pid, and whether it leads its own process group.
    children: HashMap<u64, (u32, bool)>,
    /// Temporary files and directories to remove.
    temps: HashMap<u64, PathBuf>,
    /// Users of the private temp directory (it exists while this is non-zero).
    private_users: usize,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = registry();
    f(g.get_or_insert_with(Registry::default))
}

/// Whether a signal is being handled (the process is about to end).
pub fn interrupted() -> Option<i32> {
    with(|r| r.interrupted)
}

/// If a signal is being handled, wait here for the signal thread to end the process (it exits
/// with the signal's status); otherwise return. Call it before acting on the result of something
/// a signal may have cut short, so that a killed QEMU is not reported as a triple fault.
pub fn wait_if_interrupted() {
    if interrupted().is_some() {
        park_forever();
    }
}

fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// Start the signal thread (once per process).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("gmpos: warning: cannot handle SIGINT/SIGTERM ({e}); children may outlive a kill");
                return;
            }
        };
        let spawned = thread::Builder::new().name("gmpos-signals".into()).spawn(move || {
            if let Some(sig) = signals.forever().next() {
                shut_down(sig);
            }
        });
        if let Err(e) = spawned {
            eprintln!("gmpos: warning: cannot start the signal thread ({e})");
        }
    });
}

/// Steps 1-4 of the protocol in the module comment.
fn shut_down(sig: i32) -> ! {
    let first = with(|r| {
        let first = r.interrupted.is_none();
        r.interrupted.get_or_insert(sig);
        first
    });
    if first {
        signal_children(libc::SIGTERM);
        let all_gone = |limit: Duration| {
            let end = Instant::now() + limit;
            while Instant::now() < end {
                if with(|r| r.children.is_empty()) {
                    return true;
                }
                thread::sleep(Duration::from_millis(10));
            }
            false
        };
        if !all_gone(Duration::from_secs(2)) {
            signal_children(libc::SIGKILL);
            all_gone(Duration::from_secs(2));
        }
        remove_temps();
    }
    // 128 + signal is what a shell reports for a process killed by that signal.
    std::process::exit(128 + sig)
}

fn signal_children(sig: i32) {
    with(|r| {
        for &(pid, group) in r.children.values() {
            let target = if group { -(pid as i32) } else { pid as i32 };
            // SAFETY: kill(2) has no memory effects. The pid is live or a zombie (recorded
            // children leave the registry only after being reaped, under this lock).
            unsafe { libc::kill(target, sig) };
        }
    });
}

fn remove_temps() {
    let temps: Vec<PathBuf> = with(|r| r.temps.drain().map(|(_, p)| p).collect());
    for p in temps {
        remove_path(&p);
    }
}

fn remove_path(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

// ---------------------------------------------------------------------------------------------
// Children
// ---------------------------------------------------------------------------------------------

/// A child started by [`spawn`]: recorded until reaped, killed and reaped when dropped.
pub struct Guarded {
    child: Child,
    id: u64,
    reaped: bool,
}

/// Start `cmd` as a recorded child that dies with the calling thread (`PR_SET_PDEATHSIG`).
/// With `own_group`, the child leads a new process group and is signalled as a group (for
/// `cargo build`, whose rustc processes should go with it). Once a signal is being handled this
/// does not return (see [`wait_if_interrupted`]).
pub fn spawn(cmd: &mut Command, own_group: bool) -> io::Result<Guarded> {
    install();
    // SAFETY: getpid(2) is async-signal-safe and has no memory effects.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe calls (prctl, getppid, raise); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody would ever kill us.
            if libc::getppid() != parent {
                libc::raise(libc::SIGKILL);
            }
            Ok(())
        });
    }
    if own_group {
        cmd.process_group(0);
    }
    let mut g = registry();
    if g.as_ref().is_some_and(|r| r.interrupted.is_some()) {
        drop(g);
        park_forever();
    }
    let r = g.get_or_insert_with(Registry::default);
    // Spawn under the lock: the signal thread either sees this child recorded or has already
    // marked the registry interrupted (and we did not start it).
    let child = cmd.spawn()?;
    let id = r.next_id;
    r.next_id += 1;
    r.children.insert(id, (child.id(), own_group));
    Ok(Guarded { child, id, reaped: false })
}

impl Guarded {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself (to take its pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    fn forget(&mut self) {
        self.reaped = true;
        let id = self.id;
        with(|r| r.children.remove(&id));
    }

    /// `Child::try_wait`, and the child leaves the registry once reaped.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let st = self.child.try_wait()?;
        if st.is_some() {
            self.forget();
        }
        Ok(st)
    }

    /// `Child::wait`, and the child leaves the registry.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let st = self.child.wait()?;
        self.forget();
        Ok(st)
    }

    /// Kill (SIGKILL; the whole group for a group leader) and reap.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(st) = self.try_wait()? {
            return Ok(st);
        }
        let group = with(|r| r.children.get(&self.id).is_some_and(|&(_, g)| g));
        if group {
            // SAFETY: kill(2) on our own live (unreaped) child's group.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        } else {
            let _ = self.child.kill();
        }
        self.wait()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Temporary files
// ---------------------------------------------------------------------------------------------

/// A recorded temporary path, removed when dropped (and by the signal thread).
pub struct TempPath {
    path: PathBuf,
    id: u64,
}

impl TempPath {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let id = self.id;
        with(|r| r.temps.remove(&id));
        remove_path(&self.path);
    }
}

/// Record `path` as temporary and create it with `make`, under the registry lock (so that the
/// signal thread either removes what was made or runs before anything is made).
pub fn create_temp(path: PathBuf, make: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<TempPath> {
    install();
    let mut g = registry();
    if g.as_ref().is_some_and(|r| r.interrupted.is_some()) {
        drop(g);
        park_forever();
    }
    let r = g.get_or_insert_with(Registry::default);
    make(&path)?;
    let id = r.next_id;
    r.next_id += 1;
    r.temps.insert(id, path.clone());
    Ok(TempPath { path, id })
}

/// The runner's private temp directory, `$TMPDIR/gmpos-PID`, which exists while a
/// [`PrivateTmp`] guard is alive. The `tempfile` crate is told to make its files there (the
/// `bootloader` crate builds the FAT partition in a `NamedTempFile`, which a signal would
/// otherwise leave behind: 9 MiB each time).
pub fn private_tmp_path() -> PathBuf {
    std::env::temp_dir().join(format!("gmpos-{}", std::process::id()))
}

/// Keeps the private temp directory alive; the last guard removes it.
pub struct PrivateTmp(());

/// Make (or share) the private temp directory, recorded for removal.
pub fn private_tmp() -> io::Result<PrivateTmp> {
    install();
    static OVERRIDE: Once = Once::new();
    OVERRIDE.call_once(|| {
        // Fails only if something set it before; then it is that directory, also fine.
        let _ = tempfile::env::override_temp_dir(&private_tmp_path());
    });
    let dir = private_tmp_path();
    let mut g = registry();
    if g.as_ref().is_some_and(|r| r.interrupted.is_some()) {
        drop(g);
        park_forever();
    }
    let r = g.get_or_insert_with(Registry::default);
    if r.private_users == 0 {
        std::fs::create_dir_all(&dir)?;
        r.temps.insert(u64::MAX, dir);
    }
    r.private_users += 1;
    Ok(PrivateTmp(()))
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        with(|r| {
            r.private_users -= 1;
            if r.private_users == 0 {
                if let Some(dir) = r.temps.remove(&u64::MAX) {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Test processes
// ---------------------------------------------------------------------------------------------

/// Make this process receive SIGTERM when its parent dies, and handle it as above (kill the
/// QEMUs, remove the temp files, exit). For the test binaries, whose parent is `cargo test`: a
/// killed cargo no longer leaves a test binary starting new QEMUs on its own.
pub fn exit_with_parent() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install();
        // SAFETY: getppid, prctl(PR_SET_PDEATHSIG) and raise have no memory effects.
        unsafe {
            let parent = libc::getppid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
            if libc::getppid() != parent {
                // The parent died before the prctl took effect (we were re-parented).
                libc::raise(libc::SIGTERM);
            }
        }
    });
}
