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

pub mod ktest;

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Root of this repository (where the top-level Cargo.toml lives).
pub const REPO_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// The kernel's cargo project (not part of the host workspace).
pub const KERNEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kernel");
/// Target triple the kernel is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// Default kernel binary: the demo.
pub const DEFAULT_BIN: &str = "kernel";
/// Prefix of the fw_cfg files that carry boot parameters.
pub const FW_CFG_PREFIX: &str = "opt/gmp/";
/// QEMU's limit on a fw_cfg file name, including the terminating NUL.
const FW_CFG_MAX_NAME: usize = 56;

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
    /// Record/replay (`ktest::record`): QEMU arguments that replace the boot disk's `-drive`
    /// (the disk goes behind a `blkreplay` driver, with `-icount`); TCG then runs single-threaded,
    /// as `-icount` requires.
    pub record_replay: Option<Vec<String>>,
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
            record_replay: None,
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

    /// The runner's own process exit code: 0 pass, 1 fail, 2 no debug-exit, 124 timeout.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Pass => 0,
            Status::Fail => 1,
            Status::NoExit(_) => 2,
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
        }
    }
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

/// Where `cargo build --bin BIN [--release] --target x86_64-unknown-none` puts the kernel ELF.
pub fn kernel_elf_path(bin: &str, release: bool) -> PathBuf {
    Path::new(KERNEL_DIR)
        .join("target")
        .join(KERNEL_TARGET)
        .join(if release { "release" } else { "debug" })
        .join(bin)
}

/// The nested `cargo build` command for a kernel binary (current dir `kernel/`, leaking
/// variables in [`SCRUBBED_ENV`] removed).
pub fn kernel_build_command(bin: &str, release: bool) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(KERNEL_DIR).args(["build", "--bin", bin, "--target", KERNEL_TARGET]);
    if release {
        cmd.arg("--release");
    }
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Build a kernel binary and return the ELF path.
///
/// With `echo`, cargo's progress goes to our stderr; otherwise it is captured and returned in
/// the error on failure (what the tests want).
pub fn build_kernel(bin: &str, release: bool, echo: bool) -> Result<PathBuf, Error> {
    if bin.is_empty() || bin.contains(['/', '\\']) {
        return err(format!("invalid kernel binary name `{bin}`"));
    }
    let mut cmd = kernel_build_command(bin, release);
    let shown = format!(
        "(cd {KERNEL_DIR} && cargo build --bin {bin} --target {KERNEL_TARGET}{})",
        if release { " --release" } else { "" }
    );
    if echo {
        let status = cmd
            .stdin(Stdio::null())
            .status()
            .map_err(|e| Error(format!("cannot run cargo for the kernel build: {e}")))?;
        if !status.success() {
            return err(format!("kernel build failed ({status}): {shown}"));
        }
    } else {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error(format!("cannot run cargo for the kernel build: {e}")))?;
        if !out.status.success() {
            return err(format!(
                "kernel build failed ({}): {shown}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let elf = kernel_elf_path(bin, release);
    if !elf.is_file() {
        return err(format!("kernel build succeeded but {} does not exist", elf.display()));
    }
    Ok(elf)
}

/// The bootloader configuration used for every image: the bootloader's own logging is off, so
/// the serial console shows only the kernel (and no time is spent drawing log text).
pub fn boot_config() -> bootloader::BootConfig {
    let mut cfg = bootloader::BootConfig::default();
    cfg.serial_logging = false;
    cfg.frame_buffer_logging = false;
    cfg
}

/// `NAME.bios.img` / `NAME.uefi.img` next to the ELF.
pub fn image_path(elf: &Path, uefi: bool) -> PathBuf {
    let name = elf.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    elf.with_file_name(format!("{name}.{}.img", if uefi { "uefi" } else { "bios" }))
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!("{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Build (if the ELF is newer than the image, or the image is missing) the BIOS or UEFI disk
/// image for any kernel ELF, and return its path. The image is written under a temporary name
/// and renamed, so a concurrent QEMU never sees a half-written image.
pub fn build_image(elf: &Path, uefi: bool) -> Result<PathBuf, Error> {
    let elf_time = match mtime(elf) {
        Some(t) => t,
        None => return err(format!("kernel ELF {} not found", elf.display())),
    };
    let img = image_path(elf, uefi);
    if let Some(img_time) = mtime(&img) {
        if img_time >= elf_time {
            return Ok(img);
        }
    }
    let tmp = img.with_extension(format!("img.tmp-{}", unique_suffix()));
    let mut builder = bootloader::DiskImageBuilder::new(elf.to_path_buf());
    builder.set_boot_config(&boot_config());
    let res = if uefi { builder.create_uefi_image(&tmp) } else { builder.create_bios_image(&tmp) };
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return err(format!(
            "cannot build the {} image for {}: {e:#}",
            if uefi { "UEFI" } else { "BIOS" },
            elf.display()
        ));
    }
    std::fs::rename(&tmp, &img)
        .map_err(|e| Error(format!("cannot move {} to {}: {e}", tmp.display(), img.display())))?;
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

/// The kernel ELF for a config: `kernel_path` as given, or the nested cargo build of `bin`.
pub fn kernel_for(cfg: &RunConfig, echo: bool) -> Result<PathBuf, Error> {
    match &cfg.kernel_path {
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => err(format!("kernel ELF {} not found", p.display())),
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
pub fn qemu_command(cfg: &RunConfig, image: &Path, ovmf: Option<&Ovmf>, ovmf_vars: Option<&Path>) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    let tcg = if cfg.record_replay.is_some() { "tcg,thread=single" } else { "tcg,thread=multi" };
    cmd.args(["-accel", tcg]);
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

/// Removes the per-run copy of the OVMF variable store when the run ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

/// Boot an already built disk image (BIOS or UEFI as `cfg.uefi` says). With `echo`, the serial
/// output is copied live to our stdout and QEMU's stderr to our stderr; it is captured either way.
pub fn run_image(cfg: &RunConfig, image: &Path, echo: bool) -> Result<Outcome, Error> {
    if !image.is_file() {
        return err(format!("disk image {} not found", image.display()));
    }
    for (k, v) in &cfg.params {
        validate_param_key(k)?;
        validate_param_value(k, v)?;
    }
    let ovmf = if cfg.uefi { Some(find_ovmf()?) } else { None };
    let vars_copy = match &ovmf {
        Some(Ovmf::Split { vars, .. }) => {
            let copy = std::env::temp_dir().join(format!("gmpos-ovmf-vars-{}.fd", unique_suffix()));
            std::fs::copy(vars, &copy)
                .map_err(|e| Error(format!("cannot copy {} to {}: {e}", vars.display(), copy.display())))?;
            Some(TempFile(copy))
        }
        _ => None,
    };
    let mut cmd = qemu_command(cfg, image, ovmf.as_ref(), vars_copy.as_ref().map(|t| t.0.as_path()));
    let command = render_command(&cmd);
    // stdin is /dev/null: QEMU must not put the terminal in raw mode (it would stay that way if
    // we kill QEMU on a timeout).
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());

    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error("qemu-system-x86_64 not found; install it with: sudo apt-get install -y qemu-system-x86 \
                   (or run ./run-qemu.sh, which checks the set-up)"
                .into())
        } else {
            Error(format!("cannot start QEMU: {e}"))
        }
    })?;

    let serial = Arc::new(Mutex::new(Vec::<u8>::new()));
    let stderr_buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out_reader = spawn_reader(child.stdout.take().expect("piped stdout"), serial.clone(), echo, false);
    let err_reader = spawn_reader(child.stderr.take().expect("piped stderr"), stderr_buf.clone(), echo, true);

    let deadline = cfg.timeout.filter(|t| !t.is_zero()).map(|t| start + t);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Status::from_qemu_exit(st),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return err(format!("waiting for QEMU failed: {e}"));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            break Status::Timeout;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    let _ = out_reader.join();
    let _ = err_reader.join();
    drop(vars_copy);

    let take = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    Ok(Outcome { status, serial: take(&serial), qemu_stderr: take(&stderr_buf), elapsed, command })
}

fn spawn_reader(
    mut src: impl Read + Send + 'static,
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
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
                        if to_stderr {
                            let mut e = std::io::stderr().lock();
                            let _ = e.write_all(&chunk[..n]);
                            let _ = e.flush();
                        } else {
                            let mut o = std::io::stdout().lock();
                            let _ = o.write_all(&chunk[..n]);
                            let _ = o.flush();
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Command line of the `gmpos` runner
// ---------------------------------------------------------------------------------------------

pub const USAGE: &str = "\
usage: cargo run -- [OPTIONS] [bench] [key=value ...]

Builds a kernel of the kernel/ package for x86_64-unknown-none, wraps it in a BIOS (default) or
UEFI disk image, and boots it in QEMU with the serial console on this terminal.

options:
  --smp N          number of cores (default 4)
  --mem MIB        guest memory in MiB (default 256)
  --uefi           boot through OVMF (UEFI) instead of BIOS
  --gdb            start QEMU's gdb stub on :1234 and wait for the debugger (no timeout by default)
  --timeout SECS   kill QEMU after SECS seconds (default 300; 0 = never)
  --release        build the kernel with --release
  --bin NAME       kernel binary to boot: kernel (the demo, default), testkernel, benchkernel
  --kernel PATH    boot a prebuilt kernel ELF instead of building one
  -h, --help       this text
  bench            shorthand for --bin benchkernel
  key=value        boot parameter, read by the kernel from fw_cfg opt/gmp/KEY
                   (keys [a-z0-9_]+, values without commas), e.g. gomaxprocs=2 schedtrace=1000
                   test=NAME selects a scenario of the testkernel

environment:
  GMPOS_QEMU_ARGS  extra QEMU arguments (split on whitespace), e.g. \"-d int,cpu_reset -D qemu.log\"

exit status: 0 kernel passed (wrote 0x10 to port 0xf4), 1 kernel failed (0x11),
             2 QEMU ended without a debug exit (triple fault, QEMU error), 124 timeout,
             3 build/launch error, 64 bad arguments";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Cli {
    Help,
    Run(RunConfig),
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
        match name.as_str() {
            "-h" | "--help" => return Ok(Cli::Help),
            "--smp" => {
                let v = value("number of cores")?;
                cfg.smp = parse_num(&name, &v, 1, 255)?;
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
            "--uefi" | "--gdb" | "--release" if inline.is_some() => {
                return err(format!("{name} takes no value"));
            }
            "--uefi" => cfg.uefi = true,
            "--gdb" => cfg.gdb = true,
            "--release" => cfg.release = true,
            "bench" => bench = true,
            _ if arg.starts_with('-') => return err(format!("unknown option `{arg}` (see --help)")),
            _ if arg.contains('=') => cfg.params.push(parse_param(&arg)?),
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
    let mut seen = std::collections::HashSet::new();
    for (k, _) in &cfg.params {
        if !seen.insert(k.clone()) {
            return err(format!("boot parameter `{k}` given twice"));
        }
    }
    if cfg.gdb && !timeout_given {
        cfg.timeout = None;
    }
    Ok(Cli::Run(cfg))
}

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
    fn paths() {
        assert!(kernel_elf_path("testkernel", false).ends_with("kernel/target/x86_64-unknown-none/debug/testkernel"));
        assert!(kernel_elf_path("kernel", true).ends_with("kernel/target/x86_64-unknown-none/release/kernel"));
        assert_eq!(image_path(Path::new("/a/b/kernel"), false), Path::new("/a/b/kernel.bios.img"));
        assert_eq!(image_path(Path::new("/a/b/kernel"), true), Path::new("/a/b/kernel.uefi.img"));
    }

    #[test]
    fn tail() {
        assert_eq!(last_lines("a\nb\r\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
