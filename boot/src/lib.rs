//! Host side of the GMP kernel: build a kernel ELF, wrap it in a BIOS or UEFI disk image with the
//! `bootloader` crate, and boot it in QEMU with the devices the kernel expects.
//!
//! The contract with the kernel:
//! - serial port COM1 is the console; QEMU sends it to our stdout (`-serial stdio`), we capture it;
//! - the kernel ends the run by writing to the `isa-debug-exit` device at port `0xf4`:
//!   `0x10` = success (QEMU exits with 33), `0x11` = failure (QEMU exits with 35);
//!   anything else (a triple fault with `-no-reboot` makes QEMU exit with 0) is "did not exit";
//! - boot parameters `key=value` are passed as fw_cfg files `opt/gmp/KEY` whose content is `VALUE`.
//!
//! `cargo run -- --help` (the `gmpos` binary) is the command-line front end; the integration tests
//! in `tests/` use [`run`] and the builders directly.
//!
//! The checkout to build is found at run time ([`root`]); children and temporary files are
//! recorded so that a signal leaves nothing behind ([`cleanup`]); a `--kernel` file is checked
//! before it is imaged ([`elf`]).

pub mod benchchart;
pub mod cleanup;
pub mod elf;
pub mod ktest;
pub mod root;

use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub mod trace;

pub use root::{kernel_dir, repo_dir};

/// The directory this runner was *compiled* in. Do not use it to find the tree to build: a
/// copied or moved checkout keeps the old value. [`repo_dir`] finds the root at run time.
#[deprecated(note = "compile-time path; use boot::repo_dir()")]
pub const REPO_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// `REPO_DIR/kernel`, with the same problem; use [`kernel_dir`].
#[deprecated(note = "compile-time path; use boot::kernel_dir()")]
pub const KERNEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kernel");

/// Target triple the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// Default kernel binary: the demo.
pub const DEFAULT_BIN: &str = "kernel";
/// Prefix of the fw_cfg files that carry boot parameters.
pub const FW_CFG_PREFIX: &str = "opt/gmp/";
/// QEMU's limit on a fw_cfg file name, including the terminating NUL.
const FW_CFG_MAX_NAME: usize = 56;
/// Most boot parameters one run can pass: the kernel's own limit, which QEMU's fw_cfg directory
/// also fits (one file more than QEMU's slots aborts QEMU with an assertion).
pub const MAX_PARAMS: usize = gmp_core::bootparam::MAX_PARAMS;
/// Smallest guest memory for a UEFI boot: below it OVMF drops to the EFI shell (32-44 MiB) or
/// the bootloader's UEFI stage panics (48 MiB). BIOS boots work from the runner's minimum, 32.
pub const UEFI_MIN_MEM_MIB: u32 = 64;

/// QEMU exit status when the kernel writes 0x10 to the isa-debug-exit port: `(0x10 << 1) | 1`.
pub const QEMU_EXIT_PASS: i32 = 33;
/// QEMU exit status when the kernel writes 0x11 to the isa-debug-exit port: `(0x11 << 1) | 1`.
pub const QEMU_EXIT_FAIL: i32 = 35;

/// Environment variables an outer cargo (or the user's shell) may set that must not leak into the
/// nested kernel build: they would apply host flags/targets/dirs to a `no_std` x86_64-unknown-none
/// build (e.g. `RUSTFLAGS="--cfg loom"` from the loom run, or a `CARGO_TARGET_DIR` that would
/// move the kernel ELF away from `kernel/target`).
pub const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTC_WORKSPACE_WRAPPER",
    "__CARGO_FIX_PLZ",
    "__CARGO_DEFAULT_LIB_METADATA",
];

/// An error of the host side (build, image, QEMU launch, bad argument). Just a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err<T>(msg: impl Into<String>) -> Result<T, Error> {
    Err(Error(msg.into()))
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Kernel binary of the kernel package (`kernel`, `testkernel`, `benchkernel`).
    pub bin: String,
    /// A prebuilt kernel ELF; when set, `bin` and `release` are not used to build anything.
    pub kernel_path: Option<PathBuf>,
    /// Number of vCPUs (`-smp`).
    pub smp: u32,
    /// Guest memory in MiB (`-m`).
    pub mem_mib: u32,
    /// Boot through OVMF from a GPT image instead of SeaBIOS from an MBR image.
    pub uefi: bool,
    /// Build the kernel with `--release`.
    pub release: bool,
    /// Start QEMU's gdb stub on :1234 and wait for the debugger (`-s -S`).
    pub gdb: bool,
    /// Kill QEMU after this long (measured from its launch); `None` = wait forever.
    pub timeout: Option<Duration>,
    /// Boot parameters, each passed as fw_cfg `opt/gmp/KEY` = `VALUE`.
    pub params: Vec<(String, String)>,
    /// Extra QEMU arguments appended at the end (from `GMPOS_QEMU_ARGS` in the CLI).
    pub extra_qemu_args: Vec<String>,
    /// `--trace FILE` / `--profile FILE`: where the debug console (trace, profile) goes.
    pub debugcon: Option<PathBuf>,
    /// Record/replay (`ktest::record`): QEMU arguments that replace the boot disk's `-drive`
    /// (the disk goes behind a `blkreplay` driver, with `-icount`); TCG then runs single-threaded,
    /// as `-icount` requires.
    pub record_replay: Option<Vec<String>>,
    /// `--icount`: the guest's clock counts instructions (`-icount shift=5`: one instruction is
    /// 32 ns of guest time), so a benchmark's figure is an instruction count, the same on every
    /// run whatever the host is doing. TCG runs single-threaded, as `-icount` requires.
    pub icount: bool,
    /// `--qemu PATH` / `GMPOS_QEMU`: the QEMU program; `None` = [`DEFAULT_QEMU`] from `PATH`.
    pub qemu: Option<PathBuf>,
    /// `--cpu MODEL`: QEMU's `-cpu MODEL`; `None` = QEMU's default model (with KVM: `host`).
    pub cpu: Option<String>,
    /// `--accel`: TCG (default), KVM, or KVM when `/dev/kvm` can be used. [`run_image`] resolves
    /// `Auto` (and checks `/dev/kvm` for `Kvm`) before it starts QEMU: see [`resolve_accel`].
    pub accel: Accel,
}

/// The QEMU program used when neither `--qemu` nor `GMPOS_QEMU` names one (found in `PATH`).
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// Which QEMU accelerator runs the guest (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// QEMU's emulator, one host thread per vCPU (`-accel tcg,thread=multi`). The default.
    #[default]
    Tcg,
    /// The host CPU through `/dev/kvm` (`-accel kvm`, and `-cpu host` unless `--cpu` says
    /// otherwise).
    Kvm,
    /// KVM when `/dev/kvm` opens read-write, else TCG.
    Auto,
}

impl Accel {
    /// Parse `tcg`, `kvm` or `auto`.
    pub fn parse(v: &str) -> Result<Accel, Error> {
        match v {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            "auto" => Ok(Accel::Auto),
            _ => err(format!("--accel: `{v}` is not tcg, kvm or auto")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
            Accel::Auto => "auto",
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            bin: DEFAULT_BIN.to_string(),
            kernel_path: None,
            smp: 4,
            mem_mib: 256,
            uefi: false,
            release: false,
            gdb: false,
            timeout: Some(Duration::from_secs(300)),
            params: Vec::new(),
            extra_qemu_args: Vec::new(),
            debugcon: None,
            record_replay: None,
            icount: false,
            qemu: None,
            cpu: None,
            accel: Accel::Tcg,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The kernel wrote 0x10 to isa-debug-exit (QEMU status 33).
    Pass,
    /// The kernel wrote 0x11 to isa-debug-exit (QEMU status 35).
    Fail,
    /// QEMU exited some other way: 0 after a triple fault (with `-no-reboot`), 1 for a QEMU
    /// error, another debug-exit value, or `128 + signal` when QEMU was killed by a signal.
    NoExit(i32),
    /// The run exceeded its timeout and QEMU was killed.
    Timeout,
    /// The firmware or the bootloader failed before the kernel started (OVMF fell to the EFI
    /// shell, the bootloader panicked): QEMU was stopped at once instead of waiting for the
    /// timeout. The text says what was seen.
    BootFailure(&'static str),
}

impl Status {
    /// Map QEMU's exit status to a [`Status`].
    pub fn from_qemu_exit(status: ExitStatus) -> Status {
        match status.code() {
            Some(code) => Status::from_code(code),
            None => {
                #[cfg(unix)]
                {
                    use std::os::unix::process::ExitStatusExt;
                    Status::NoExit(128 + status.signal().unwrap_or(0))
                }
                #[cfg(not(unix))]
                {
                    Status::NoExit(-1)
                }
            }
        }
    }

    /// Map a numeric QEMU exit code to a [`Status`].
    pub fn from_code(code: i32) -> Status {
        match code {
            QEMU_EXIT_PASS => Status::Pass,
            QEMU_EXIT_FAIL => Status::Fail,
            other => Status::NoExit(other),
        }
    }

    /// The runner's own process exit code: 0 pass, 1 fail, 2 no debug-exit (or the boot
    /// failed before the kernel), 124 timeout.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::NoExit(_) | Status::BootFailure(_) => 2,
            Status::Timeout => 124,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Pass => f.write_str("PASS (kernel exited with 0x10, QEMU status 33)"),
            Status::Fail => f.write_str("FAIL (kernel exited with 0x11, QEMU status 35)"),
            Status::NoExit(s) => write!(
                f,
                "kernel did not exit through isa-debug-exit (status {s}): triple fault or QEMU error"
            ),
            Status::Timeout => f.write_str("TIMEOUT"),
            Status::BootFailure(why) => write!(f, "the boot failed before the kernel started: {why}"),
        }
    }
}

/// The line QEMU prints when a signal (not the guest) ended it, e.g. `qemu-system-x86_64:
/// terminating on signal 15 from pid 123 (...)`: a QEMU killed from outside exits 0, which
/// would otherwise read as the guest's triple fault (`-no-reboot`).
pub fn qemu_killed_by_signal(qemu_stderr: &str) -> Option<&str> {
    qemu_stderr.lines().find(|l| l.contains("terminating on signal")).map(str::trim)
}

/// The result of one QEMU run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// Everything the kernel wrote to the serial console (lossily decoded as UTF-8).
    pub serial: String,
    /// What QEMU itself wrote to stderr (warnings, option errors).
    pub qemu_stderr: String,
    /// Wall time from QEMU's launch to its exit (or kill).
    pub elapsed: Duration,
    /// The QEMU command line, shell-quoted, for error messages and reproduction.
    pub command: String,
}

impl Outcome {
    /// The last `n` lines of the serial output.
    pub fn last_lines(&self, n: usize) -> String {
        last_lines(&self.serial, n)
    }
}

/// A serial line without the kernel's `[cpuN] ` prefix.
pub fn strip_cpu(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix("[cpu") {
        if let Some(i) = rest.find("] ") {
            if rest[..i].bytes().all(|b| b.is_ascii_digit()) {
                return &rest[i + 2..];
            }
        }
    }
    t
}

/// The last `n` lines of `text`, joined with '\n'.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Boot parameters
// ---------------------------------------------------------------------------------------------

/// Check a boot parameter key: `[a-z0-9_]+`, short enough for a fw_cfg name.
pub fn validate_param_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return err("boot parameter with an empty key (expected key=value)");
    }
    if let Some(c) = key.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_')) {
        return err(format!(
            "boot parameter key `{key}`: invalid character {c:?} (keys are [a-z0-9_]+)"
        ));
    }
    let max = FW_CFG_MAX_NAME - 1 - FW_CFG_PREFIX.len();
    if key.len() > max {
        return err(format!("boot parameter key `{key}` is longer than {max} characters (fw_cfg name limit)"));
    }
    Ok(())
}

/// Check a boot parameter value: non-empty (QEMU rejects an empty fw_cfg string), no control
/// characters, no comma (QEMU's option syntax would split it).
pub fn validate_param_value(key: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return err(format!("boot parameter `{key}` has an empty value (QEMU cannot pass an empty fw_cfg string)"));
    }
    if value.contains(',') {
        return err(format!(
            "boot parameter `{key}={value}`: commas are not allowed in values (QEMU's -fw_cfg syntax \
             splits on them); pass several key=value words instead"
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return err(format!("boot parameter `{key}`: control characters are not allowed in the value"));
    }
    Ok(())
}

/// Parse and validate one `key=value` word.
pub fn parse_param(word: &str) -> Result<(String, String), Error> {
    let Some((key, value)) = word.split_once('=') else {
        return err(format!("`{word}` is not a boot parameter (expected key=value)"));
    };
    validate_param_key(key)?;
    validate_param_value(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// The `-fw_cfg` argument for one boot parameter.
pub fn fw_cfg_arg(key: &str, value: &str) -> String {
    format!("name={FW_CFG_PREFIX}{key},string={value}")
}

// ---------------------------------------------------------------------------------------------
// Building the kernel and the disk images
// ---------------------------------------------------------------------------------------------

/// Where `cargo build --bin BIN [--release] --target x86_64-unknown-none` puts the kernel ELF,
/// in the kernel project `kernel_dir` (see [`kernel_dir`]).
pub fn kernel_elf_path(kernel_dir: &Path, bin: &str, release: bool) -> PathBuf {
    kernel_dir.join("target").join(KERNEL_TARGET).join(if release { "release" } else { "debug" }).join(bin)
}

/// The nested `cargo build` command for a kernel binary (current dir `kernel_dir`, leaking
/// variables in [`SCRUBBED_ENV`] removed).
pub fn kernel_build_command(kernel_dir: &Path, bin: &str, release: bool) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(kernel_dir).args(["build", "--bin", bin, "--target", KERNEL_TARGET]);
    if release {
        cmd.arg("--release");
    }
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Build a kernel binary of this checkout ([`kernel_dir`]) and return the ELF path.
///
/// With `echo`, cargo's progress goes to our stderr; otherwise it is captured and returned in
/// the error on failure (what the tests want). Cargo runs in its own process group, recorded
/// with [`cleanup`]: a signal to the runner stops it and its rustc processes.
pub fn build_kernel(bin: &str, release: bool, echo: bool) -> Result<PathBuf, Error> {
    if bin.is_empty() || bin.contains(['/', '\\']) {
        return err(format!("invalid kernel binary name `{bin}`"));
    }
    let kdir = kernel_dir()?;
    let mut cmd = kernel_build_command(&kdir, bin, release);
    let shown = format!(
        "(cd {} && cargo build --bin {bin} --target {KERNEL_TARGET}{})",
        kdir.display(),
        if release { " --release" } else { "" }
    );
    cmd.stdin(Stdio::null());
    if !echo {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = cleanup::spawn(&mut cmd, true)
        .map_err(|e| Error(format!("cannot run cargo for the kernel build in {}: {e}", kdir.display())))?;
    let (out, errs) = if echo {
        (None, None)
    } else {
        let c = child.child_mut();
        let out = c.stdout.take().map(|r| thread::spawn(move || read_all(r)));
        let errs = c.stderr.take().map(|r| thread::spawn(move || read_all(r)));
        (out, errs)
    };
    let status = child.wait().map_err(|e| Error(format!("waiting for cargo failed: {e}")))?;
    let _ = out.map(|t| t.join());
    let stderr = errs.and_then(|t| t.join().ok()).unwrap_or_default();
    cleanup::wait_if_interrupted();
    if !status.success() {
        return err(format!("kernel build failed ({status}): {shown}\n{}", String::from_utf8_lossy(&stderr)));
    }
    let elf = kernel_elf_path(&kdir, bin, release);
    if !elf.is_file() {
        return err(format!("kernel build succeeded but {} does not exist", elf.display()));
    }
    Ok(elf)
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    v
}

/// The bootloader configuration used for every image: the bootloader's own logging is off, so
/// the serial console shows only the kernel (and no time is spent drawing log text).
pub fn boot_config() -> bootloader::BootConfig {
    let mut cfg = bootloader::BootConfig::default();
    cfg.serial_logging = false;
    cfg.frame_buffer_logging = false;
    cfg
}

/// What [`boot_config`] sets, for the image stamp (the config type has no `Debug`).
const BOOT_CONFIG_ID: &str = "bootloader 0.11 serial_logging=false frame_buffer_logging=false";

/// `NAME.bios.img` / `NAME.uefi.img` next to the ELF.
pub fn image_path(elf: &Path, uefi: bool) -> PathBuf {
    let name = elf.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    elf.with_file_name(format!("{name}.{}.img", if uefi { "uefi" } else { "bios" }))
}

/// `IMAGE.stamp`: what the image was built from (see [`image_stamp`]).
pub fn stamp_path(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".stamp");
    PathBuf::from(s)
}

/// What an image is built from: the ELF's path, size and a hash of its contents, plus the image
/// kind and the bootloader settings. The image is rebuilt whenever this differs from the stamp
/// written beside it.
///
/// Comparing modification times is not enough: `cp -p` or a cache restored by `tar` puts an
/// *older* mtime on a new kernel, and the old image was booted. Size, mtime, ctime and inode
/// would catch those too, except that two writes within one tick of the file system's coarse
/// clock can leave all four equal; the contents cannot lie. Hashing a debug kernel (tens of MB)
/// takes a few tens of milliseconds. The hash is std's SipHash: stable enough for a cache (a
/// new toolchain at worst rebuilds the image once), and no adversary is involved.
pub fn image_stamp(elf: &Path, uefi: bool) -> Result<String, Error> {
    use std::hash::Hasher;
    let data = std::fs::read(elf).map_err(|e| Error(format!("cannot read kernel ELF {}: {e}", elf.display())))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(&data);
    let abs = elf.canonicalize().unwrap_or_else(|_| elf.to_path_buf());
    Ok(format!(
        "gmpos image stamp 1\nelf={}\nsize={}\nsiphash={:016x}\nkind={}\nconfig={BOOT_CONFIG_ID}\n",
        abs.display(),
        data.len(),
        h.finish(),
        if uefi { "uefi" } else { "bios" },
    ))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!("{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// An exclusive `flock` on `path` (created if needed), released when dropped.
struct FileLock(#[allow(dead_code)] std::fs::File); // held for its lock

impl FileLock {
    fn take(path: &Path) -> Result<FileLock, Error> {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error(format!("cannot open lock file {}: {e}", path.display())))?;
        loop {
            // SAFETY: flock(2) on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

/// Build (unless the stamp beside it says it was built from this very ELF) the BIOS or UEFI disk
/// image for any kernel ELF, and return its path. The ELF is checked first ([`elf`]). Builds of
/// one image are serialised with a lock file (`IMAGE.lock`); the image is written under a
/// temporary name and renamed, so a concurrent QEMU never sees a half-written image, and the
/// temporary files are recorded with [`cleanup`], so a signal leaves none behind.
pub fn build_image(elf: &Path, uefi: bool) -> Result<PathBuf, Error> {
    elf::check_kernel_elf(elf)?;
    let img = image_path(elf, uefi);
    let stamp_file = stamp_path(&img);
    let mut lock_name = img.as_os_str().to_owned();
    lock_name.push(".lock");
    let _lock = FileLock::take(Path::new(&lock_name))?;
    let stamp = image_stamp(elf, uefi)?;
    if img.is_file() && std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp) {
        return Ok(img);
    }
    let _private = cleanup::private_tmp()
        .map_err(|e| Error(format!("cannot make the temp directory {}: {e}", cleanup::private_tmp_path().display())))?;
    let tmp = cleanup::create_temp(img.with_extension(format!("img.tmp-{}", unique_suffix())), |p| {
        std::fs::File::create(p).map(drop)
    })
    .map_err(|e| Error(format!("cannot create a temporary image next to {}: {e}", img.display())))?;
    let mut builder = bootloader::DiskImageBuilder::new(elf.to_path_buf());
    builder.set_boot_config(&boot_config());
    let res = if uefi { builder.create_uefi_image(tmp.path()) } else { builder.create_bios_image(tmp.path()) };
    cleanup::wait_if_interrupted();
    if let Err(e) = res {
        return err(format!(
            "cannot build the {} image for {}: {e:#}",
            if uefi { "UEFI" } else { "BIOS" },
            elf.display()
        ));
    }
    // The stamp goes first (removed), then the image, then the new stamp: a crash in between
    // leaves an image without a stamp, which is rebuilt next time.
    let _ = std::fs::remove_file(&stamp_file);
    std::fs::rename(tmp.path(), &img)
        .map_err(|e| Error(format!("cannot move {} to {}: {e}", tmp.path().display(), img.display())))?;
    let stamp_tmp = cleanup::create_temp(stamp_file.with_extension(format!("stamp.tmp-{}", unique_suffix())), |p| {
        std::fs::write(p, &stamp)
    })
    .map_err(|e| Error(format!("cannot write the image stamp {}: {e}", stamp_file.display())))?;
    std::fs::rename(stamp_tmp.path(), &stamp_file)
        .map_err(|e| Error(format!("cannot move {} to {}: {e}", stamp_tmp.path().display(), stamp_file.display())))?;
    Ok(img)
}

/// Build the BIOS (MBR) image for a kernel ELF.
pub fn build_bios_image(elf: &Path) -> Result<PathBuf, Error> {
    build_image(elf, false)
}

/// Build the UEFI (GPT) image for a kernel ELF.
pub fn build_uefi_image(elf: &Path) -> Result<PathBuf, Error> {
    build_image(elf, true)
}

/// The kernel ELF for a config: `kernel_path` as given (checked to be a bootable ELF), or the
/// nested cargo build of `bin`.
pub fn kernel_for(cfg: &RunConfig, echo: bool) -> Result<PathBuf, Error> {
    match &cfg.kernel_path {
        Some(p) => {
            elf::check_kernel_elf(p)?;
            Ok(p.clone())
        }
        None => build_kernel(&cfg.bin, cfg.release, echo),
    }
}

// ---------------------------------------------------------------------------------------------
// Firmware and the QEMU command line
// ---------------------------------------------------------------------------------------------

/// The OVMF firmware to use for UEFI boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ovmf {
    /// Split firmware: read-only code + a template of the variable store (copied per run).
    Split { code: PathBuf, vars: PathBuf },
    /// A single combined image, passed with `-bios`.
    Combined(PathBuf),
}

/// Find OVMF: the Debian `ovmf` package's 4M split files, else its combined `OVMF.fd`.
pub fn find_ovmf() -> Result<Ovmf, Error> {
    let code = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd");
    let vars = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    if code.is_file() && vars.is_file() {
        return Ok(Ovmf::Split { code: code.into(), vars: vars.into() });
    }
    for combined in ["/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd"] {
        if Path::new(combined).is_file() {
            return Ok(Ovmf::Combined(combined.into()));
        }
    }
    err("OVMF firmware not found (looked for /usr/share/OVMF/OVMF_CODE_4M.fd and /usr/share/ovmf/OVMF.fd); \
         install it with: sudo apt-get install -y ovmf")
}

/// The QEMU command for booting `image`. `ovmf_vars` is the per-run writable copy of the UEFI
/// variable store (only for [`Ovmf::Split`]).
///
/// `cfg.accel` should be resolved ([`resolve_accel`], which [`run_image`] calls): an `Auto` left
/// here is taken as TCG.
pub fn qemu_command(cfg: &RunConfig, image: &Path, ovmf: Option<&Ovmf>, ovmf_vars: Option<&Path>) -> Command {
    let mut cmd = Command::new(qemu_program(cfg));
    let single = cfg.record_replay.is_some() || cfg.icount;
    if cfg.accel == Accel::Kvm {
        cmd.args(["-accel", "kvm"]);
    } else {
        cmd.args(["-accel", if single { "tcg,thread=single" } else { "tcg,thread=multi" }]);
    }
    // KVM's default model is a generic qemu64 with fewer features than the host has; `host`
    // passes the host CPU's through.
    let cpu = cfg.cpu.as_deref().or((cfg.accel == Accel::Kvm).then_some("host"));
    if let Some(model) = cpu {
        cmd.args(["-cpu", model]);
    }
    // Record/replay brings its own -icount (its shift is the same).
    if cfg.icount && cfg.record_replay.is_none() {
        cmd.args(["-icount", ICOUNT_ARG]);
    }
    cmd.args(["-smp", &cfg.smp.to_string()]);
    cmd.args(["-m", &cfg.mem_mib.to_string()]);
    cmd.args(["-display", "none", "-serial", "stdio", "-monitor", "none"]);
    // -nodefaults: no CD-ROM, floppy, NIC or parallel port (OVMF would try to boot from them);
    // the VGA card stays for the bootloader's framebuffer.
    cmd.args(["-nodefaults", "-vga", "std", "-no-reboot"]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if cfg.uefi {
        match ovmf {
            Some(Ovmf::Split { code, .. }) => {
                cmd.arg("-drive").arg(format!("if=pflash,format=raw,readonly=on,file={}", code.display()));
                if let Some(vars) = ovmf_vars {
                    cmd.arg("-drive").arg(format!("if=pflash,format=raw,file={}", vars.display()));
                }
            }
            Some(Ovmf::Combined(fd)) => {
                cmd.arg("-bios").arg(fd);
            }
            None => {}
        }
    }
    // snapshot=on: the image is opened read-only (writes go to a throw-away overlay), so several
    // QEMU instances can boot the same image at once without fighting over QEMU's image lock.
    match &cfg.record_replay {
        Some(args) => {
            cmd.args(args);
        }
        None => {
            cmd.arg("-drive").arg(format!("format=raw,file={},snapshot=on", image.display()));
        }
    }
    for (k, v) in &cfg.params {
        cmd.arg("-fw_cfg").arg(fw_cfg_arg(k, v));
    }
    if cfg.gdb {
        cmd.args(["-s", "-S"]);
    }
    cmd.args(&cfg.extra_qemu_args);
    cmd
}

/// `--icount`'s QEMU setting: one instruction is 2^5 = 32 ns of guest time (`sleep=off`: an
/// idle guest's clock jumps to the next timer instead of following the host's).
pub const ICOUNT_ARG: &str = "shift=5,sleep=off";
/// Guest nanoseconds per instruction under `--icount`.
pub const ICOUNT_NS_PER_INSN: u32 = 32;

/// The QEMU program a run uses: `cfg.qemu`, else [`DEFAULT_QEMU`].
pub fn qemu_program(cfg: &RunConfig) -> &std::ffi::OsStr {
    cfg.qemu.as_deref().map(Path::as_os_str).unwrap_or(DEFAULT_QEMU.as_ref())
}

/// The device QEMU opens for `-accel kvm`.
pub const KVM_DEVICE: &str = "/dev/kvm";

/// Whether [`KVM_DEVICE`] opens read-write, as QEMU needs for `-accel kvm`; why not if it does
/// not (absent, no permission).
pub fn kvm_usable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(KVM_DEVICE)
        .map(drop)
        .map_err(|e| format!("{KVM_DEVICE} does not open read-write: {e}"))
}

/// The accelerator a run really uses, and for `--accel auto` a note saying why: `Tcg` stays,
/// `Kvm` is checked ([`kvm_usable`]), `Auto` becomes KVM when `/dev/kvm` opens read-write and
/// the run does not need TCG (`--icount`, record/replay), else TCG. An error for `Kvm` with
/// `--icount`/record/replay or without a usable `/dev/kvm`.
pub fn resolve_accel(cfg: &RunConfig) -> Result<(Accel, Option<String>), Error> {
    let needs_tcg = if cfg.icount {
        Some("--icount")
    } else if cfg.record_replay.is_some() {
        Some("record/replay")
    } else {
        None
    };
    match cfg.accel {
        Accel::Tcg => Ok((Accel::Tcg, None)),
        Accel::Kvm => {
            if let Some(what) = needs_tcg {
                return err(format!("{what} needs TCG: it cannot be combined with --accel kvm"));
            }
            kvm_usable().map_err(|why| Error(format!("--accel kvm: {why} (use --accel tcg, or --accel auto)")))?;
            Ok((Accel::Kvm, None))
        }
        Accel::Auto => match (needs_tcg, kvm_usable()) {
            (Some(what), _) => Ok((Accel::Tcg, Some(format!("--accel auto chose TCG: {what} needs it")))),
            (None, Ok(())) => Ok((Accel::Kvm, Some(format!("--accel auto chose KVM: {KVM_DEVICE} opens read-write")))),
            (None, Err(why)) => Ok((Accel::Tcg, Some(format!("--accel auto chose TCG: {why}")))),
        },
    }
}

/// Check a QEMU program named by `--qemu` or `GMPOS_QEMU` (`what` says which, for the message):
/// a path (a name with a `/`) must be an executable file, a bare name must be one in `PATH`.
/// Returns the program to run: the path made absolute, but not through its symlinks (QEMU names
/// itself in its messages after its `argv[0]`), or the bare name.
pub fn check_qemu_program(p: &Path, what: &str) -> Result<PathBuf, Error> {
    use std::os::unix::fs::PermissionsExt;
    if p.as_os_str().is_empty() {
        return err(format!("{what}: empty QEMU path"));
    }
    let executable = |f: &Path| std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !p.to_string_lossy().contains('/') {
        let found = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).any(|d| executable(&d.join(p))))
            .unwrap_or(false);
        if !found {
            return err(format!("{what}: no executable `{}` in PATH", p.display()));
        }
        return Ok(p.to_path_buf());
    }
    match std::fs::metadata(p) {
        Err(e) => return err(format!("{what}: {}: {e}", p.display())),
        Ok(m) if !m.is_file() => return err(format!("{what}: {} is not a file", p.display())),
        Ok(_) if !executable(p) => return err(format!("{what}: {} is not executable", p.display())),
        Ok(_) => {}
    }
    std::path::absolute(p).map_err(|e| Error(format!("{what}: {}: {e}", p.display())))
}

/// Check a `--cpu` model (or `GMPOS_CPU`): one word for QEMU's `-cpu`, e.g. `max`, `host`,
/// `Skylake-Server` or `max,-x2apic` (features after commas).
pub fn check_cpu_model(model: &str, what: &str) -> Result<(), Error> {
    if model.is_empty() || model.starts_with('-') || model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return err(format!("{what}: `{model}` is not a QEMU CPU model (e.g. max, host, qemu64; `qemu-system-x86_64 -cpu help` lists them)"));
    }
    Ok(())
}

/// Fill what the environment says and the command line did not: `GMPOS_QEMU` (the QEMU program,
/// checked with [`check_qemu_program`]) when `cfg.qemu` is unset, and `GMPOS_CPU` (a `-cpu`
/// model) when `cfg.cpu` is unset. An empty variable counts as unset. The runner, the test
/// runner, the campaign and the scenario tests call it.
pub fn apply_qemu_env(cfg: &mut RunConfig) -> Result<(), Error> {
    let var = |name: &str| -> Result<Option<String>, Error> {
        match std::env::var_os(name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|_| Error(format!("{name} is not valid UTF-8"))),
        }
    };
    if cfg.qemu.is_none() {
        if let Some(q) = var("GMPOS_QEMU")? {
            cfg.qemu = Some(check_qemu_program(Path::new(&q), "GMPOS_QEMU")?);
        }
    }
    if cfg.cpu.is_none() {
        if let Some(c) = var("GMPOS_CPU")? {
            check_cpu_model(&c, "GMPOS_CPU")?;
            cfg.cpu = Some(c);
        }
    }
    Ok(())
}

/// Render a command line for humans (shell-quoted where needed).
pub fn render_command(cmd: &Command) -> String {
    let mut parts = vec![shell_quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    parts.join(" ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Build what is needed (kernel ELF unless `kernel_path` is set, then the image) and boot it.
pub fn run(cfg: &RunConfig, echo: bool) -> Result<Outcome, Error> {
    let elf = kernel_for(cfg, echo)?;
    let image = build_image(&elf, cfg.uefi)?;
    run_image(cfg, &image, echo)
}

/// What [`write_image`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenImage {
    /// The kernel ELF the image boots.
    pub elf: PathBuf,
    /// The image the runner built (next to the ELF), which was copied.
    pub built: PathBuf,
    /// Where the copy went (the `--image` path).
    pub out: PathBuf,
    pub bytes: u64,
    pub uefi: bool,
}

/// Check an `--image` path before anything is built: a new file, or a regular file to replace
/// (not a directory, not a device).
pub fn check_image_out(out: &Path) -> Result<(), Error> {
    match std::fs::metadata(out) {
        Ok(m) if !m.is_file() => err(format!(
            "--image {}: not a regular file; --image writes a file (then write that to a device with dd, as it says)",
            out.display()
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match out.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => err(format!("--image {}: directory {} does not exist", out.display(), dir.display())),
            _ => Ok(()),
        },
        Err(e) => err(format!("--image {}: {e}", out.display())),
    }
}

/// `--image PATH`: build the kernel of `cfg` and its BIOS (MBR) or, with `cfg.uefi`, UEFI (GPT)
/// disk image as a run would, and copy the image to `out` (through a temporary file in the same
/// directory and a rename, so `out` is never half written). `out` must be a new or a regular
/// file: a block device (or anything else) is refused, as dd is the tool for that, used with
/// care.
pub fn write_image(cfg: &RunConfig, out: &Path, echo: bool) -> Result<WrittenImage, Error> {
    check_image_out(out)?;
    let elf = kernel_for(cfg, echo)?;
    let built = build_image(&elf, cfg.uefi)?;
    let same = out.canonicalize().ok().is_some_and(|o| built.canonicalize().ok() == Some(o));
    if !same {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
        let tmp = out.with_file_name(format!(".{name}.tmp-{}", unique_suffix()));
        let t = cleanup::create_temp(tmp, |p| {
            std::fs::copy(&built, p).map(drop).inspect_err(|_| {
                let _ = std::fs::remove_file(p);
            })
        })
            .map_err(|e| Error(format!("cannot copy {} next to {}: {e}", built.display(), out.display())))?;
        std::fs::rename(t.path(), out).map_err(|e| Error(format!("cannot move {} to {}: {e}", t.path().display(), out.display())))?;
    }
    let bytes = std::fs::metadata(out).map(|m| m.len()).map_err(|e| Error(format!("{}: {e}", out.display())))?;
    Ok(WrittenImage { elf, built, out: out.to_path_buf(), bytes, uefi: cfg.uefi })
}

/// Serial text that means the firmware or the bootloader gave up before the kernel started, and
/// what to call it. Only looked for before the kernel's first line (every kernel line starts
/// with `[cpuN] `), so a kernel printing these words is not mistaken for it.
const BOOT_FAILURES: &[(&str, &str)] = &[
    ("UEFI Interactive Shell", "OVMF found nothing to boot and started the EFI shell (too little memory? try --mem 128)"),
    ("Shell> ", "OVMF found nothing to boot and started the EFI shell (too little memory? try --mem 128)"),
    ("BdsDxe: No bootable option", "OVMF found no bootable device"),
    ("panicked at ", "the bootloader panicked (its message is above)"),
];

/// The first boot failure in `serial` that comes before the kernel's first line, if any.
pub fn boot_failure(serial: &str) -> Option<&'static str> {
    let before_kernel = match serial.find("[cpu") {
        Some(i) => &serial[..i],
        None => serial,
    };
    BOOT_FAILURES.iter().find(|(needle, _)| before_kernel.contains(needle)).map(|&(_, why)| why)
}

/// QEMU's own failure to start or run (as opposed to the kernel's): QEMU exits with 1 and says
/// why on stderr (`qemu-system-x86_64: ...`), or it aborts (an assertion such as the fw_cfg
/// slot check) or crashes on a signal we did not send. `None` for every other ending.
///
/// QEMU starts its messages with the base name of its `argv[0]` (`error_init(argv[0])`): for
/// `--qemu /opt/q/myqemu` that is `myqemu:`, and for a wrapper script that `exec`s the real
/// binary it is the binary's name. `program` is what we ran; lines starting with its base name
/// or with `qemu-system-x86_64` count.
fn qemu_failure(status: ExitStatus, serial: &str, qemu_stderr: &str, program: &std::ffi::OsStr) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let base = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefixes = [format!("{base}:"), format!("{DEFAULT_QEMU}:")];
    let said = qemu_stderr
        .lines()
        .filter(|l| prefixes.iter().any(|p| p.len() > 1 && l.starts_with(p.as_str())))
        .collect::<Vec<_>>()
        .join("\n");
    match (status.code(), status.signal()) {
        // Exit 1 is also what a kernel writing 0 to isa-debug-exit produces ((0 << 1) | 1); QEMU
        // then prints nothing.
        (Some(1), _) if !said.is_empty() => Some(format!("QEMU failed (exit status 1):\n{said}")),
        (None, Some(sig)) => {
            let tail = if said.is_empty() { last_lines(qemu_stderr, 5) } else { said };
            let when = if serial.is_empty() { "before the guest printed anything" } else { "during the run" };
            Some(format!("QEMU died on signal {sig} {when}:\n{tail}"))
        }
        _ => None,
    }
}

/// Boot an already built disk image (BIOS or UEFI as `cfg.uefi` says). With `echo`, the serial
/// output is copied live to our stdout and QEMU's stderr to our stderr; it is captured either way
/// (if our stdout is closed, e.g. piped into `head`, echoing stops and the run goes on).
///
/// QEMU is a [`cleanup`] child: it dies with the thread that waits for it, and a signal to the
/// runner stops it. The per-run copy of the OVMF variable store lives in the runner's private
/// temp directory and goes with the run. A QEMU that cannot start (bad option, no memory) is an
/// `Err`, not a kernel verdict.
pub fn run_image(cfg: &RunConfig, image: &Path, echo: bool) -> Result<Outcome, Error> {
    if !image.is_file() {
        return err(format!("disk image {} not found", image.display()));
    }
    check_params(&cfg.params)?;
    check_mem(cfg.uefi, cfg.mem_mib)?;
    let mut resolved = cfg.clone();
    resolved.accel = resolve_accel(cfg)?.0;
    let cfg = &resolved;
    let ovmf = if cfg.uefi { Some(find_ovmf()?) } else { None };
    // Every run uses the runner's private temp directory, which a signal removes whole: the
    // OVMF variable store's copy goes there, and QEMU's own temp files do too (TMPDIR below:
    // `snapshot=on` makes a `vl.XXXXXX` overlay, which a QEMU killed with SIGKILL, after it did
    // not stop within 2 s of SIGTERM, leaves behind).
    let private = cleanup::private_tmp()
        .map_err(|e| Error(format!("cannot make the temp directory {}: {e}", cleanup::private_tmp_path().display())))?;
    let vars_copy = match &ovmf {
        Some(Ovmf::Split { vars, .. }) => {
            let copy = cleanup::private_tmp_path().join(format!("gmpos-ovmf-vars-{}.fd", unique_suffix()));
            let t = cleanup::create_temp(copy.clone(), |p| std::fs::copy(vars, p).map(drop))
                .map_err(|e| Error(format!("cannot copy {} to {}: {e}", vars.display(), copy.display())))?;
            Some(t)
        }
        _ => None,
    };
    let mut cmd = qemu_command(cfg, image, ovmf.as_ref(), vars_copy.as_ref().map(|t| t.path()));
    let command = render_command(&cmd);
    // stdin is /dev/null: QEMU must not put the terminal in raw mode (it would stay that way if
    // we kill QEMU on a timeout).
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.env("TMPDIR", cleanup::private_tmp_path());

    let start = Instant::now();
    let mut child = cleanup::spawn(&mut cmd, false).map_err(|e| {
        if let (std::io::ErrorKind::NotFound, Some(q)) = (e.kind(), &cfg.qemu) {
            Error(format!("QEMU program {} not found (--qemu or GMPOS_QEMU)", q.display()))
        } else if e.kind() == std::io::ErrorKind::NotFound {
            Error("qemu-system-x86_64 not found; install it with: sudo apt-get install -y qemu-system-x86 \
                   (or run ./run-qemu.sh, which checks the set-up)"
                .into())
        } else {
            Error(format!("cannot start QEMU: {e}"))
        }
    })?;

    let serial = Arc::new(Mutex::new(Vec::<u8>::new()));
    let stderr_buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let c = child.child_mut();
    let out_reader = spawn_reader(c.stdout.take().expect("piped stdout"), serial.clone(), echo, false);
    let err_reader = spawn_reader(c.stderr.take().expect("piped stderr"), stderr_buf.clone(), echo, true);
    let take = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned();

    let deadline = cfg.timeout.filter(|t| !t.is_zero()).map(|t| start + t);
    let mut exit = None;
    let mut watch_boot = true;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                exit = Some(st);
                break Status::from_qemu_exit(st);
            }
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                return err(format!("waiting for QEMU failed: {e}"));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            break Status::Timeout;
        }
        if watch_boot {
            // Only the firmware and the bootloader print these, before the kernel's first line;
            // once the kernel speaks there is nothing more to watch.
            let failed = {
                let s = serial.lock().unwrap_or_else(|p| p.into_inner());
                let text = String::from_utf8_lossy(&s);
                watch_boot = !text.contains("[cpu") && s.len() < 256 * 1024;
                boot_failure(&text)
            };
            if let Some(why) = failed {
                // Let the rest of the message (a panic's text) arrive before stopping QEMU.
                thread::sleep(Duration::from_millis(200));
                let _ = child.kill();
                break Status::BootFailure(why);
            }
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let _ = out_reader.join();
    let _ = err_reader.join();
    drop(vars_copy);
    drop(private);
    cleanup::wait_if_interrupted();

    let serial = take(&serial);
    let qemu_stderr = take(&stderr_buf);
    if let Some(why) = exit.and_then(|st| qemu_failure(st, &serial, &qemu_stderr, qemu_program(cfg))) {
        // Seen with -cpu host on a KVM that is itself a guest (nested): QEMU 7.2 and 10 abort on
        // MSR 0x10a, IA32_ARCH_CAPABILITIES, which the outer hypervisor refuses.
        let hint = if cfg.accel == Accel::Kvm && why.contains("failed to set MSR 0x10a") {
            "\nhint: this KVM refuses the host CPU's IA32_ARCH_CAPABILITIES MSR (0x10a), as a nested KVM \
             may; try --cpu host,-arch-capabilities"
        } else {
            ""
        };
        return err(format!("{why}{hint}\nQEMU: {command}"));
    }
    Ok(Outcome { status, serial, qemu_stderr, elapsed, command })
}

fn spawn_reader(
    mut src: impl Read + Send + 'static,
    buf: Arc<Mutex<Vec<u8>>>,
    mut echo: bool,
    to_stderr: bool,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match src.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&chunk[..n]);
                    if echo {
                        let res = if to_stderr {
                            let mut e = std::io::stderr().lock();
                            e.write_all(&chunk[..n]).and_then(|()| e.flush())
                        } else {
                            let mut o = std::io::stdout().lock();
                            o.write_all(&chunk[..n]).and_then(|()| o.flush())
                        };
                        // The reader went away (`| head`): stop echoing, keep capturing; the
                        // run still ends with the kernel's verdict.
                        if res.is_err() {
                            echo = false;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

/// Check the boot parameters of a run: each key and value, no key twice, at most
/// [`MAX_PARAMS`].
pub fn check_params(params: &[(String, String)]) -> Result<(), Error> {
    for (k, v) in params {
        validate_param_key(k)?;
        validate_param_value(k, v)?;
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in params {
        if !seen.insert(k.as_str()) {
            return err(format!("boot parameter `{k}` given twice"));
        }
    }
    if params.len() > MAX_PARAMS {
        return err(format!(
            "{} boot parameters given; at most {MAX_PARAMS} fit (the kernel reads at most {MAX_PARAMS}, \
             and QEMU's fw_cfg directory aborts QEMU when it overflows)",
            params.len()
        ));
    }
    Ok(())
}

/// Check the guest memory for the firmware: UEFI needs [`UEFI_MIN_MEM_MIB`].
pub fn check_mem(uefi: bool, mem_mib: u32) -> Result<(), Error> {
    if uefi && mem_mib < UEFI_MIN_MEM_MIB {
        return err(format!(
            "--mem {mem_mib} is too little for a UEFI boot: OVMF and the bootloader need at least \
             {UEFI_MIN_MEM_MIB} MiB (below that OVMF falls to the EFI shell or the bootloader panics)"
        ));
    }
    Ok(())
}

/// QEMU options the runner sets itself, and what to use instead; `GMPOS_QEMU_ARGS` may not
/// repeat them (QEMU would take the last one silently, and the banner would lie).
const OWNED_QEMU_OPTIONS: &[(&str, &str)] = &[
    ("-smp", "--smp N"),
    ("-m", "--mem MIB"),
    ("-accel", "--accel tcg|kvm|auto"),
    ("-enable-kvm", "--accel kvm"),
    ("-cpu", "--cpu MODEL"),
    ("-serial", "nothing: the serial console is the runner's stdout"),
    ("-monitor", "nothing: the runner disables the monitor"),
    ("-display", "nothing: the runner runs without a display"),
    ("-nographic", "nothing: the runner runs without a display"),
    ("-no-reboot", "nothing: the runner sets it"),
    ("-daemonize", "nothing: the runner waits for QEMU"),
    ("-s", "--gdb"),
    ("-S", "--gdb"),
    ("-gdb", "--gdb"),
    ("-bios", "--uefi"),
    ("-pflash", "--uefi"),
    ("-icount", "--icount"),
];

/// Split `GMPOS_QEMU_ARGS` like a shell would (quotes and backslashes, via the `shlex` crate),
/// and refuse the options the runner owns.
pub fn parse_qemu_args(s: &str) -> Result<Vec<String>, Error> {
    let Some(words) = shlex::split(s) else {
        return err(format!("GMPOS_QEMU_ARGS: unbalanced quotes or a trailing backslash in {s:?}"));
    };
    for w in &words {
        let name = w.strip_prefix('-').map(|r| format!("-{}", r.trim_start_matches('-')));
        if let Some((_, instead)) = name.and_then(|n| OWNED_QEMU_OPTIONS.iter().find(|(o, _)| *o == n)) {
            return err(format!("GMPOS_QEMU_ARGS: `{w}` is set by the runner; use {instead}"));
        }
    }
    Ok(words)
}

// ---------------------------------------------------------------------------------------------
// Command line of the `gmpos` runner
// ---------------------------------------------------------------------------------------------

pub const USAGE: &str = "\
usage: cargo run -- [OPTIONS] [bench] [key=value ...]
       cargo run -- --image PATH [--uefi] [--release] [--bin NAME | --kernel PATH] [bench]

Builds a kernel of the kernel/ package for x86_64-unknown-none, wraps it in a BIOS (default) or
UEFI disk image, and boots it in QEMU with the serial console on this terminal.

options:
  --smp N          number of cores (default 4)
  --mem MIB        guest memory in MiB (default 256)
  --uefi           boot through OVMF (UEFI) instead of BIOS
  --gdb            start QEMU's gdb stub on :1234 and wait for the debugger (no timeout by default)
  --timeout SECS   kill QEMU after SECS seconds (default 300; 0 = never)
  --release        build the kernel with --release
  --icount         count instructions: the guest's clock advances 32 ns per instruction
                   (-icount), on one host thread; benchmark figures / 32 = instructions,
                   identical from run to run
  --bin NAME       kernel binary to boot: kernel (the demo, default), testkernel, benchkernel
  --kernel PATH    boot a prebuilt kernel ELF instead of building one
  --trace FILE     execution trace (trace=1) to FILE; then: cargo run -- trace FILE
  --profile FILE   CPU profile (profile=1000) to FILE; then: cargo run -- profile FILE
  --qemu PATH      the QEMU program (default: qemu-system-x86_64 from PATH; tools/qemu10.sh
                   installs QEMU 10 beside the system's and prints its path)
  --cpu MODEL      QEMU -cpu MODEL, e.g. max (default: QEMU's default model; host with KVM)
  --accel A        tcg (default: QEMU's emulator, a host thread per vCPU), kvm (-accel kvm,
                   -cpu host; needs /dev/kvm read-write; not with --icount), or auto (kvm when
                   /dev/kvm opens read-write, else tcg)
  --image PATH     build the BIOS (or with --uefi the UEFI) disk image, copy it to PATH for a
                   real machine (write it to a USB stick with dd) and exit without booting
  -h, --help       this text
  bench            shorthand for --bin benchkernel
  key=value        boot parameter, read by the kernel from fw_cfg opt/gmp/KEY
                   (keys [a-z0-9_]+, values without commas), e.g. gomaxprocs=2 schedtrace=1000
                   test=NAME selects a scenario of the testkernel

environment:
  GMPOS_QEMU       the QEMU program, as --qemu (the option wins)
  GMPOS_CPU        the -cpu model, as --cpu (the option wins)
  GMPOS_QEMU_ARGS  extra QEMU arguments, split like a shell does (quotes work), e.g.
                   \"-d int,cpu_reset -D qemu.log\" or '-name \"my vm\"'; options the runner sets
                   (-smp, -m, -cpu, -accel, -serial, -s, ...) are refused: use the runner's
                   own options
  GMPOS_ROOT       the checkout to build (default: the one holding this runner, or the
                   current directory's); cargo sets it from .cargo/config.toml

exit status: 0 kernel passed (wrote 0x10 to port 0xf4), 1 kernel failed (0x11),
             2 the kernel ended without a debug exit (triple fault) or the firmware/bootloader
             failed before it, 124 timeout, 3 build/launch/QEMU error, 64 bad arguments,
             128+N killed by signal N (QEMU and temp files are cleaned up first)";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Cli {
    Help,
    Run(RunConfig),
    /// `--image PATH`: build the disk image of `cfg`'s kernel (BIOS, or UEFI with `--uefi`) and
    /// copy it to `out` for a real machine ([`write_image`]); boot nothing.
    Image { cfg: RunConfig, out: PathBuf },
}

/// [`parse_args`] for the process's own arguments, which need not be UTF-8: one that is not is
/// a usage error naming it, not a panic.
pub fn parse_args_os<I: IntoIterator<Item = OsString>>(args: I) -> Result<Cli, Error> {
    let mut words = Vec::new();
    for a in args {
        match a.into_string() {
            Ok(s) => words.push(s),
            Err(a) => return err(format!("argument {a:?} is not valid UTF-8")),
        }
    }
    parse_args(words)
}

/// Parse the runner's arguments (without the program name). Options accept both `--opt VALUE`
/// and `--opt=VALUE`.
pub fn parse_args<I, S>(args: I) -> Result<Cli, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut cfg = RunConfig::default();
    let mut bin: Option<String> = None;
    let mut bench = false;
    let mut timeout_given = false;
    let mut debugcon_flags = Vec::new();
    let mut image_out: Option<PathBuf> = None;
    // Options that only mean something to a QEMU run (refused with --image).
    let mut qemu_only: Vec<String> = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, Error> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => err(format!("{name} needs a value ({what})")),
            }
        };
        if matches!(
            name.as_str(),
            "--smp" | "--mem" | "--timeout" | "--gdb" | "--icount" | "--trace" | "--profile" | "--qemu" | "--cpu" | "--accel"
        ) {
            qemu_only.push(name.clone());
        }
        match name.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "--smp" => {
                let v = value("number of cores")?;
                // QEMU's own limit depends on the machine type (pc: 255;
                // q35 with an x2APIC and an IOMMU: far more) and it says so
                // itself; the kernel drives up to 1024 (`MAX_CPUS`) and names the rest.
                cfg.smp = parse_num(&name, &v, 1, MAX_SMP)?;
            }
            "--mem" => {
                let v = value("MiB")?;
                cfg.mem_mib = parse_num(&name, &v, 32, 1 << 20)?;
            }
            "--timeout" => {
                let v = value("seconds")?;
                let s = parse_num(&name, &v, 0, u32::MAX)?;
                cfg.timeout = if s == 0 { None } else { Some(Duration::from_secs(s.into())) };
                timeout_given = true;
            }
            "--bin" => {
                let v = value("kernel binary name")?;
                if v.is_empty() || v.starts_with('-') || v.contains(['/', '\\']) {
                    return err(format!("--bin: invalid binary name `{v}`"));
                }
                if bin.as_deref().is_some_and(|b| b != v) {
                    return err(format!("--bin given twice ({} and {v})", bin.unwrap()));
                }
                bin = Some(v);
            }
            "--kernel" => {
                let v = value("path to a kernel ELF")?;
                cfg.kernel_path = Some(PathBuf::from(v));
            }
            "--uefi" | "--gdb" | "--release" | "--icount" if inline.is_some() => {
                return err(format!("{name} takes no value"));
            }
            "--uefi" => cfg.uefi = true,
            "--gdb" => cfg.gdb = true,
            "--release" => cfg.release = true,
            "--icount" => cfg.icount = true,
            "--trace" | "--profile" => debugcon_flags.push((name.clone(), value("output file")?)),
            "--qemu" => {
                let v = value("path to a qemu-system-x86_64")?;
                if v.is_empty() {
                    return err("--qemu needs a path (or a program name in PATH)");
                }
                // Checked (exists, executable) by the runner before the build: parsing touches no file.
                cfg.qemu = Some(PathBuf::from(v));
            }
            "--cpu" => {
                let v = value("QEMU CPU model, e.g. max")?;
                check_cpu_model(&v, "--cpu")?;
                cfg.cpu = Some(v);
            }
            "--accel" => cfg.accel = Accel::parse(&value("tcg, kvm or auto")?)?,
            "--image" => {
                let v = value("output file for the disk image")?;
                if v.is_empty() {
                    return err("--image needs a file name");
                }
                image_out = Some(PathBuf::from(v));
            }
            "bench" => bench = true,
            _ if arg.starts_with('-') => return err(format!("unknown option `{arg}` (see --help)")),
            _ if arg.contains('=') => {
                let (k, v) = parse_param(&arg)?;
                // QEMU refuses two fw_cfg files of one name ("duplicate
                // fw_cfg file name") and would end as a QEMU error.
                if cfg.params.iter().any(|(k2, _)| *k2 == k) {
                    return err(format!("boot parameter `{k}` given twice"));
                }
                cfg.params.push((k, v));
            }
            _ => return err(format!("unexpected argument `{arg}` (boot parameters are key=value; see --help)")),
        }
    }
    if bench {
        if bin.as_deref().is_some_and(|b| b != "benchkernel") {
            return err(format!("`bench` means --bin benchkernel, but --bin {} was given", bin.unwrap()));
        }
        bin = Some("benchkernel".to_string());
    }
    if cfg.kernel_path.is_some() && bin.is_some() {
        return err("--kernel boots a prebuilt ELF; it cannot be combined with --bin or bench");
    }
    if let Some(b) = bin {
        cfg.bin = b;
    }
    if let Some(path) = &cfg.kernel_path {
        cfg.bin = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    }
    if let Some(out) = image_out {
        if let Some(flag) = qemu_only.first() {
            return err(format!("--image writes a disk image for a real machine and boots nothing: {flag} is for QEMU runs"));
        }
        if let Some((k, v)) = cfg.params.first() {
            return err(format!(
                "--image: boot parameters ({k}={v}) travel through QEMU's fw_cfg device, which a real machine \
                 does not have; the kernel boots there with its defaults"
            ));
        }
        return Ok(Cli::Image { cfg, out });
    }
    if cfg.icount && cfg.accel == Accel::Kvm {
        return err("--icount needs TCG (QEMU counts the instructions it translates): it cannot be combined with --accel kvm");
    }
    trace::apply_runner_flags(&mut cfg, &debugcon_flags)?;
    check_params(&cfg.params)?;
    check_mem(cfg.uefi, cfg.mem_mib)?;
    if cfg.gdb && !timeout_given {
        cfg.timeout = None;
    }
    Ok(Cli::Run(cfg))
}

/// The largest `--smp` the runners pass on to QEMU.
pub const MAX_SMP: u32 = 4096;

fn parse_num(opt: &str, v: &str, min: u32, max: u32) -> Result<u32, Error> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => err(format!("{opt}: `{v}` is not a number from {min} to {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_cfg(args: &[&str]) -> RunConfig {
        match parse_args(args.iter().copied()) {
            Ok(Cli::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn parse_err(args: &[&str]) -> String {
        match parse_args(args.iter().copied()) {
            Err(e) => e.0,
            Ok(c) => panic!("{args:?} should be rejected, got {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = run_cfg(&[]);
        assert_eq!(c.bin, "kernel");
        assert_eq!((c.smp, c.mem_mib, c.uefi, c.release, c.gdb), (4, 256, false, false, false));
        assert_eq!(c.timeout, Some(Duration::from_secs(300)));
        assert!(c.params.is_empty() && c.kernel_path.is_none());
    }

    #[test]
    fn options_and_params() {
        let c = run_cfg(&["--smp", "2", "--mem=512", "--uefi", "--release", "--timeout", "0", "gomaxprocs=2", "test=smp_online"]);
        assert_eq!((c.smp, c.mem_mib, c.uefi, c.release), (2, 512, true, true));
        assert_eq!(c.timeout, None);
        assert_eq!(c.params, vec![("gomaxprocs".into(), "2".into()), ("test".into(), "smp_online".into())]);
    }

    #[test]
    fn bench_and_bin() {
        assert_eq!(run_cfg(&["bench"]).bin, "benchkernel");
        assert_eq!(run_cfg(&["bench", "--bin", "benchkernel"]).bin, "benchkernel");
        assert_eq!(run_cfg(&["--bin", "testkernel", "test=panic"]).bin, "testkernel");
        assert!(parse_err(&["bench", "--bin", "testkernel"]).contains("benchkernel"));
        assert!(parse_err(&["--kernel", "/x/k", "--bin", "kernel"]).contains("--kernel"));
        let c = run_cfg(&["--kernel", "/x/mykernel"]);
        assert_eq!(c.kernel_path.as_deref(), Some(Path::new("/x/mykernel")));
        assert_eq!(c.bin, "mykernel");
    }

    #[test]
    fn gdb_disables_default_timeout_only() {
        assert_eq!(run_cfg(&["--gdb"]).timeout, None);
        assert_eq!(run_cfg(&["--gdb", "--timeout", "5"]).timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn bad_arguments() {
        assert!(parse_err(&["--smp"]).contains("needs a value"));
        assert!(parse_err(&["--smp", "0"]).contains("--smp"));
        assert!(parse_err(&["--smp", "four"]).contains("--smp"));
        assert!(parse_err(&["--frobnicate"]).contains("unknown option"));
        assert!(parse_err(&["hello"]).contains("unexpected argument"));
        assert!(parse_err(&["--uefi=1"]).contains("takes no value"));
        // QEMU would refuse two fw_cfg files of one name (found by the
        // campaign's parameter fuzzing: it ended as a "QEMU error").
        assert_eq!(parse_err(&["hz=100", "gomaxprocs=1", "hz=200"]), "boot parameter `hz` given twice");
        assert!(parse_err(&["Key=1"]).contains("invalid character"));
        assert!(parse_err(&["a-b=1"]).contains("invalid character"));
        assert!(parse_err(&["=1"]).contains("empty key"));
        assert!(parse_err(&["k="]).contains("empty value"));
        assert!(parse_err(&["k=a,b"]).contains("commas"));
        assert!(parse_err(&["k=1", "k=2"]).contains("twice"));
        assert!(parse_err(&[&format!("{}=1", "k".repeat(48))]).contains("longer"));
        assert!(matches!(parse_args(["--help"]), Ok(Cli::Help)));
    }

    #[test]
    fn status_mapping() {
        assert_eq!(Status::from_code(33), Status::Pass);
        assert_eq!(Status::from_code(35), Status::Fail);
        assert_eq!(Status::from_code(0), Status::NoExit(0));
        assert_eq!(Status::from_code(1), Status::NoExit(1));
        assert_eq!(Status::Pass.exit_code(), 0);
        assert_eq!(Status::Fail.exit_code(), 1);
        assert_eq!(Status::NoExit(0).exit_code(), 2);
        assert_eq!(Status::Timeout.exit_code(), 124);
        assert!(Status::NoExit(0).to_string().contains("did not exit through isa-debug-exit (status 0)"));
        assert_eq!(
            qemu_killed_by_signal("x\nqemu-system-x86_64: terminating on signal 15 from pid 7 (gmpos)\n"),
            Some("qemu-system-x86_64: terminating on signal 15 from pid 7 (gmpos)")
        );
        assert_eq!(qemu_killed_by_signal("qemu: warning: something\n"), None);
    }

    #[test]
    fn qemu_command_line() {
        let mut cfg = RunConfig { smp: 2, mem_mib: 128, ..RunConfig::default() };
        cfg.params.push(("hz".into(), "100".into()));
        let cmd = render_command(&qemu_command(&cfg, Path::new("/t/k.bios.img"), None, None));
        for part in [
            "qemu-system-x86_64 -accel tcg,thread=multi -smp 2 -m 128",
            "-display none -serial stdio -monitor none",
            "-no-reboot",
            "-device isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive format=raw,file=/t/k.bios.img,snapshot=on",
            "-fw_cfg name=opt/gmp/hz,string=100",
        ] {
            assert!(cmd.contains(part), "{part:?} missing from {cmd}");
        }
        assert!(!cmd.contains("-S"));
        cfg.uefi = true;
        cfg.gdb = true;
        let ovmf = Ovmf::Split { code: "/o/CODE.fd".into(), vars: "/o/VARS.fd".into() };
        let cmd = render_command(&qemu_command(&cfg, Path::new("/t/k.uefi.img"), Some(&ovmf), Some(Path::new("/tmp/v.fd"))));
        assert!(cmd.contains("-drive if=pflash,format=raw,readonly=on,file=/o/CODE.fd -drive if=pflash,format=raw,file=/tmp/v.fd"), "{cmd}");
        assert!(cmd.contains("-s -S"), "{cmd}");
        let cmd = render_command(&qemu_command(&cfg, Path::new("/t/k.uefi.img"), Some(&Ovmf::Combined("/o/OVMF.fd".into())), None));
        assert!(cmd.contains("-bios /o/OVMF.fd"), "{cmd}");
    }

    #[test]
    fn icount_is_single_threaded_and_owned() {
        let cfg = run_cfg(&["--icount", "--smp", "2", "bench"]);
        assert!(cfg.icount);
        let cmd = render_command(&qemu_command(&cfg, Path::new("/t/k.bios.img"), None, None));
        assert!(cmd.contains("-accel tcg,thread=single"), "{cmd}");
        assert!(cmd.contains(&format!("-icount {ICOUNT_ARG}")), "{cmd}");
        assert!(!run_cfg(&["--smp", "2"]).icount);
        assert!(parse_args(["--icount=1"]).is_err());
        let e = parse_qemu_args("-icount shift=0").unwrap_err().to_string();
        assert!(e.contains("--icount"), "{e}");
    }

    #[test]
    fn paths() {
        let k = Path::new("/r/kernel");
        assert_eq!(kernel_elf_path(k, "testkernel", false), Path::new("/r/kernel/target/x86_64-unknown-none/debug/testkernel"));
        assert_eq!(kernel_elf_path(k, "kernel", true), Path::new("/r/kernel/target/x86_64-unknown-none/release/kernel"));
        assert_eq!(stamp_path(Path::new("/a/b/kernel.bios.img")), Path::new("/a/b/kernel.bios.img.stamp"));
        assert_eq!(image_path(Path::new("/a/b/kernel"), false), Path::new("/a/b/kernel.bios.img"));
        assert_eq!(image_path(Path::new("/a/b/kernel"), true), Path::new("/a/b/kernel.uefi.img"));
    }

    #[test]
    fn too_many_params_and_too_little_uefi_memory() {
        let words: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("k{i}=1")).collect();
        let e = parse_err(&words.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(e.contains(&format!("{} boot parameters given; at most {MAX_PARAMS}", MAX_PARAMS + 1)), "{e}");
        assert_eq!(run_cfg(&words[..MAX_PARAMS].iter().map(String::as_str).collect::<Vec<_>>()).params.len(), MAX_PARAMS);
        assert_eq!(MAX_PARAMS, gmp_core::bootparam::MAX_PARAMS, "the runner and the kernel agree");
        let e = parse_err(&["--uefi", "--mem", "48"]);
        assert!(e.contains("too little for a UEFI boot") && e.contains(&UEFI_MIN_MEM_MIB.to_string()), "{e}");
        assert_eq!(run_cfg(&["--uefi", "--mem", &UEFI_MIN_MEM_MIB.to_string()]).mem_mib, UEFI_MIN_MEM_MIB);
        assert_eq!(run_cfg(&["--mem", "32"]).mem_mib, 32, "BIOS boots need less");
        // The library entry point checks too (the tests call it directly).
        assert!(check_params(&vec![("k".to_string(), "1".to_string()); 2]).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn non_utf8_argument_is_a_usage_error() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', b'-', b's', 0xff]);
        let e = parse_args_os([OsString::from("--smp"), OsString::from("2"), bad]).unwrap_err();
        assert!(e.0.contains("not valid UTF-8"), "{e}");
        assert!(matches!(parse_args_os([OsString::from("--uefi")]), Ok(Cli::Run(c)) if c.uefi));
    }

    #[test]
    fn qemu_args_are_split_like_a_shell_and_owned_options_refused() {
        assert_eq!(parse_qemu_args("-name \"my vm\" -d int,cpu_reset").unwrap(), ["-name", "my vm", "-d", "int,cpu_reset"]);
        assert_eq!(parse_qemu_args("  -D 'a b.log'  ").unwrap(), ["-D", "a b.log"]);
        assert!(parse_qemu_args("").unwrap().is_empty());
        assert!(parse_qemu_args("-name \"oops").unwrap_err().0.contains("unbalanced quotes"));
        for (args, hint) in [("-smp 2", "--smp N"), ("--smp 2", "--smp N"), ("-m 1G", "--mem MIB"), ("-d int -S", "--gdb"), ("-serial file:x", "serial")] {
            let e = parse_qemu_args(args).unwrap_err().0;
            assert!(e.contains("is set by the runner") && e.contains(hint), "{args}: {e}");
        }
        // -machine, -d and -D are the user's; -cpu and -accel are the runner's options now.
        assert_eq!(parse_qemu_args("-machine q35 -d int").unwrap().len(), 4);
        for (args, hint) in [("-cpu max", "--cpu MODEL"), ("-accel kvm", "--accel"), ("-enable-kvm", "--accel kvm")] {
            let e = parse_qemu_args(args).unwrap_err().0;
            assert!(e.contains("is set by the runner") && e.contains(hint), "{args}: {e}");
        }
    }

    #[test]
    fn qemu_cpu_and_accel_options() {
        let c = run_cfg(&["--qemu", "/opt/q10/qemu-system-x86_64", "--cpu", "max", "--smp", "2"]);
        assert_eq!(c.qemu.as_deref(), Some(Path::new("/opt/q10/qemu-system-x86_64")));
        assert_eq!(c.cpu.as_deref(), Some("max"));
        assert_eq!(c.accel, Accel::Tcg, "TCG stays the default");
        let d = run_cfg(&[]);
        assert_eq!((d.qemu.as_deref(), d.cpu.as_deref()), (None, None));
        assert_eq!(run_cfg(&["--cpu=max,-x2apic"]).cpu.as_deref(), Some("max,-x2apic"));
        assert_eq!(run_cfg(&["--accel", "kvm"]).accel, Accel::Kvm);
        assert_eq!(run_cfg(&["--accel=auto"]).accel, Accel::Auto);
        assert_eq!(run_cfg(&["--accel", "tcg"]).accel, Accel::Tcg);
        assert!(parse_err(&["--accel", "hvf"]).contains("not tcg, kvm or auto"));
        assert!(parse_err(&["--accel"]).contains("needs a value"));
        assert!(parse_err(&["--cpu", ""]).contains("not a QEMU CPU model"));
        assert!(parse_err(&["--cpu", "max host"]).contains("not a QEMU CPU model"));
        assert!(parse_err(&["--qemu="]).contains("--qemu"));
        let e = parse_err(&["--icount", "--accel", "kvm"]);
        assert!(e.contains("--icount needs TCG") && e.contains("--accel kvm"), "{e}");
        // --icount with auto is TCG, not an error.
        let c = run_cfg(&["--icount", "--accel", "auto"]);
        assert_eq!(resolve_accel(&c).unwrap().0, Accel::Tcg);
        assert!(resolve_accel(&c).unwrap().1.unwrap().contains("--icount"));
        assert_eq!(resolve_accel(&run_cfg(&[])).unwrap(), (Accel::Tcg, None));
        // Record/replay (the test runner's --record) is refused with kvm whatever /dev/kvm says.
        let rr = RunConfig { accel: Accel::Kvm, record_replay: Some(Vec::new()), ..RunConfig::default() };
        assert!(resolve_accel(&rr).unwrap_err().0.contains("record/replay needs TCG"));
    }

    #[test]
    fn qemu_command_with_another_qemu_cpu_and_kvm() {
        let img = Path::new("/t/k.bios.img");
        let cfg = RunConfig { smp: 2, qemu: Some("/q10/qemu-system-x86_64".into()), cpu: Some("max".into()), ..RunConfig::default() };
        let cmd = render_command(&qemu_command(&cfg, img, None, None));
        assert!(cmd.starts_with("/q10/qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2"), "{cmd}");
        // The default: no -cpu at all, as before.
        let cmd = render_command(&qemu_command(&RunConfig::default(), img, None, None));
        assert!(cmd.starts_with("qemu-system-x86_64 -accel tcg,thread=multi -smp 4"), "{cmd}");
        assert!(!cmd.contains("-cpu"), "{cmd}");
        let kvm = RunConfig { accel: Accel::Kvm, ..RunConfig::default() };
        let cmd = render_command(&qemu_command(&kvm, img, None, None));
        assert!(cmd.contains("-accel kvm -cpu host -smp 4"), "{cmd}");
        assert!(!cmd.contains("tcg"), "{cmd}");
        let kvm_max = RunConfig { cpu: Some("max".into()), ..kvm };
        let cmd = render_command(&qemu_command(&kvm_max, img, None, None));
        assert!(cmd.contains("-accel kvm -cpu max") && !cmd.contains("host"), "{cmd}");
    }

    #[test]
    fn qemu_programs_are_checked() {
        let dir = std::env::temp_dir().join(format!("gmpos-qemu-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope");
        let e = check_qemu_program(&missing, "--qemu").unwrap_err().0;
        assert!(e.starts_with("--qemu: ") && e.contains("nope") && e.contains("No such file"), "{e}");
        let plain = dir.join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let e = check_qemu_program(&plain, "GMPOS_QEMU").unwrap_err().0;
        assert!(e.starts_with("GMPOS_QEMU: ") && e.contains("not executable"), "{e}");
        assert!(check_qemu_program(&dir, "--qemu").unwrap_err().0.contains("not a file"));
        assert!(check_qemu_program(Path::new("gmpos-no-such-qemu"), "--qemu").unwrap_err().0.contains("in PATH"));
        assert!(check_qemu_program(Path::new(""), "--qemu").is_err());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_qemu_program(&plain, "--qemu").unwrap(), plain);
        // A relative path becomes absolute, without resolving symlinks (QEMU names itself after
        // its argv[0]).
        let cwd = std::env::current_dir().unwrap();
        let link = dir.join("myqemu");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&plain, &link).unwrap();
        let rel = pathdiff(&link, &cwd);
        assert_eq!(check_qemu_program(&rel, "--qemu").unwrap(), cwd.join(&rel));
        assert_eq!(check_qemu_program(Path::new("sh"), "--qemu").unwrap(), Path::new("sh"), "a bare name in PATH stays");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `target` relative to `base` (both absolute), with `..` as needed.
    fn pathdiff(target: &Path, base: &Path) -> PathBuf {
        let t: Vec<_> = target.components().collect();
        let b: Vec<_> = base.components().collect();
        let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let mut p = PathBuf::new();
        for _ in common..b.len() {
            p.push("..");
        }
        for c in &t[common..] {
            p.push(c);
        }
        p
    }

    #[test]
    fn image_option() {
        match parse_args(["--image", "/tmp/k.img", "--uefi", "--release", "bench"]) {
            Ok(Cli::Image { cfg, out }) => {
                assert_eq!(out, Path::new("/tmp/k.img"));
                assert!(cfg.uefi && cfg.release);
                assert_eq!(cfg.bin, "benchkernel");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_args(["--image=k.img"]), Ok(Cli::Image { cfg, .. }) if !cfg.uefi && cfg.bin == "kernel"));
        assert!(matches!(parse_args(["--kernel", "/x/k", "--image", "o.img"]), Ok(Cli::Image { .. })));
        for flag in [&["--smp", "2"][..], &["--gdb"], &["--icount"], &["--cpu", "max"], &["--accel", "kvm"], &["--qemu", "/q"], &["--timeout", "5"], &["--trace", "/tmp/t"]] {
            let mut args = vec!["--image", "o.img"];
            args.extend_from_slice(flag);
            let e = parse_err(&args);
            assert!(e.contains("boots nothing") && e.contains(flag[0]), "{args:?}: {e}");
        }
        let e = parse_err(&["--image", "o.img", "gomaxprocs=2"]);
        assert!(e.contains("fw_cfg") && e.contains("gomaxprocs=2"), "{e}");
        assert!(parse_err(&["--image"]).contains("needs a value"));
        assert!(parse_err(&["--image="]).contains("--image"));
    }

    #[test]
    fn boot_failures_are_recognised_before_the_kernel_only() {
        assert_eq!(boot_failure("BdsDxe: loading Boot0001\r\nUEFI Interactive Shell v2.2\r\nShell> "), Some(BOOT_FAILURES[0].1));
        let panic = "panicked at src/main.rs:107:18:\nbootloader config section not found";
        assert_eq!(boot_failure(panic), Some("the bootloader panicked (its message is above)"));
        assert_eq!(boot_failure("[cpu0] smp: 4 of 4 cores online\n[cpu1] panic: panicked at x"), None);
        assert_eq!(boot_failure(""), None);
        assert_eq!(Status::BootFailure("x").exit_code(), 2);
    }

    #[test]
    fn qemu_failures_are_not_kernel_verdicts() {
        use std::os::unix::process::ExitStatusExt;
        let code = |c: i32| ExitStatus::from_raw(c << 8);
        let q = std::ffi::OsStr::new(DEFAULT_QEMU);
        let msg = "qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory\n";
        assert!(qemu_failure(code(1), "", msg, q).unwrap().contains("cannot set up guest memory"));
        // A kernel writing 0 to isa-debug-exit also makes QEMU exit 1, silently.
        assert_eq!(qemu_failure(code(1), "[cpu0] bye\n", "", q), None);
        assert_eq!(qemu_failure(code(0), "", "", q), None);
        assert_eq!(qemu_failure(code(33), "", "", q), None);
        let abort = "qemu-system-x86_64: ../../hw/nvram/fw_cfg.c:935: fw_cfg_add_file_callback: Assertion `count < fw_cfg_file_slots(s)' failed.\n";
        let why = qemu_failure(ExitStatus::from_raw(6), "", abort, q).unwrap();
        assert!(why.contains("signal 6 before the guest printed anything") && why.contains("fw_cfg_add_file_callback"), "{why}");
        // Another QEMU: it prefixes its messages with the base name of its argv[0] (seen with a
        // symlink named myqemu: `myqemu: -bogus: invalid option`); a wrapper script that execs
        // the real binary gives the binary's name.
        let mine = std::ffi::OsStr::new("/opt/x/myqemu");
        assert!(qemu_failure(code(1), "", "myqemu: -bogus: invalid option\n", mine).unwrap().contains("-bogus: invalid option"));
        assert!(qemu_failure(code(1), "", "qemu-system-x86_64: -bogus: invalid option\n", mine).is_some());
        assert_eq!(qemu_failure(code(1), "", "myqemu: -bogus: invalid option\n", q), None);
    }

    #[test]
    fn stamp_follows_the_file_not_its_mtime() {
        let dir = std::env::temp_dir().join(format!("gmpos-stamp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let elf = dir.join("k");
        std::fs::write(&elf, b"one").unwrap();
        let s1 = image_stamp(&elf, false).unwrap();
        assert_eq!(s1, image_stamp(&elf, false).unwrap(), "unchanged file, same stamp");
        assert_ne!(s1, image_stamp(&elf, true).unwrap(), "BIOS and UEFI images differ");
        // Same size, mtime put back (what `cp -p` and `tar` do): the stamp still changes.
        let old = std::fs::metadata(&elf).unwrap().modified().unwrap();
        std::fs::write(&elf, b"two").unwrap();
        std::fs::File::options().write(true).open(&elf).unwrap().set_modified(old).unwrap();
        assert_eq!(std::fs::metadata(&elf).unwrap().modified().unwrap(), old);
        assert_ne!(s1, image_stamp(&elf, false).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tail() {
        assert_eq!(last_lines("a\nb\r\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
