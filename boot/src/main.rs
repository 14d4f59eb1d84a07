//! `gmpos`: build a kernel, wrap it in a disk image and boot it in QEMU. See `cargo run -- --help`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use boot::{Cli, RunConfig, Status};

/// Exit code for a build, image or launch error (not the kernel's verdict).
const EXIT_SETUP: u8 = 3;
/// Exit code for bad command-line arguments (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// `eprintln!` that ignores a closed stderr (`gmpos ... 2>&1 | head`): the run's result is the
/// exit status, and a panic on a broken pipe would turn it into 101.
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

fn main() -> ExitCode {
    // `cargo run -- test ...`: the kernel test runner (boot/src/ktest/). Signals are handled as
    // for a run (below): Ctrl-C stops the QEMUs of every trial and the builds.
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("test")) {
        boot::cleanup::install();
        return ExitCode::from(boot::ktest::main(std::env::args_os().skip(2).map(|a| a.to_string_lossy().into_owned())));
    }
    if std::env::args_os().nth(1).as_deref() == Some(std::ffi::OsStr::new("bench-chart")) {
        return ExitCode::from(boot::benchchart::cli(&std::env::args_os().skip(2).map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>()));
    }
    if let Some(code) = boot::trace::subcommand(&std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>()) {
        return ExitCode::from(code);
    }
    let cfg = match boot::parse_args_os(std::env::args_os().skip(1)) {
        Ok(Cli::Help) => {
            let _ = writeln!(std::io::stdout().lock(), "{}", boot::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Run(cfg)) => cfg,
        Ok(Cli::Image { cfg, out }) => {
            if let Err(e) = boot::check_image_out(&out) {
                say!("gmpos: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
            boot::cleanup::install();
            return match image(&cfg, &out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    boot::cleanup::wait_if_interrupted();
                    say!("gmpos: error: {e}");
                    ExitCode::from(EXIT_SETUP)
                }
            };
        }
        Err(e) => {
            say!("gmpos: {e}");
            say!("{}", boot::USAGE.lines().next().unwrap_or_default());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Signals are handled from here on: a SIGINT/SIGTERM/SIGHUP stops the build or QEMU, removes
    // the temp files and exits with 128 + the signal (boot::cleanup).
    boot::cleanup::install();
    match run(cfg) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(e)) => {
            say!("gmpos: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Setup(e)) => {
            boot::cleanup::wait_if_interrupted();
            say!("gmpos: error: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

enum Failure {
    /// Bad input from the user (exit 64).
    Usage(boot::Error),
    /// Build, image or launch error (exit 3).
    Setup(boot::Error),
}

impl From<boot::Error> for Failure {
    fn from(e: boot::Error) -> Self {
        Failure::Setup(e)
    }
}

fn run(mut cfg: RunConfig) -> Result<u8, Failure> {
    if let Some(extra) = std::env::var_os("GMPOS_QEMU_ARGS") {
        let Some(extra) = extra.to_str() else {
            return Err(Failure::Usage(boot::Error("GMPOS_QEMU_ARGS is not valid UTF-8".into())));
        };
        cfg.extra_qemu_args.extend(boot::parse_qemu_args(extra).map_err(Failure::Usage)?);
    }
    // The QEMU program (--qemu, else GMPOS_QEMU) and the accelerator are checked before the
    // build: a wrong path is a usage error (64), an unusable /dev/kvm for --accel kvm a set-up
    // error (3), both said at once rather than after a build or as a QEMU failure.
    if let Some(q) = cfg.qemu.take() {
        cfg.qemu = Some(boot::check_qemu_program(&q, "--qemu").map_err(Failure::Usage)?);
    }
    boot::apply_qemu_env(&mut cfg).map_err(Failure::Usage)?;
    let (accel, accel_note) = boot::resolve_accel(&cfg)?;
    cfg.accel = accel;
    let elf = boot::kernel_for(&cfg, true)?;
    let image = boot::build_image(&elf, cfg.uefi)?;
    if let Some(note) = accel_note {
        say!("gmpos: {note}");
    }
    say!(
        "gmpos: booting {} ({}, {} cores, {} MiB{}{}{}{}{})",
        shown(&elf),
        if cfg.uefi { "UEFI" } else { "BIOS" },
        cfg.smp,
        cfg.mem_mib,
        match &cfg.qemu {
            Some(q) => format!(", QEMU {}", shown(q)),
            None => String::new(),
        },
        match (cfg.accel, cfg.cpu.as_deref()) {
            (boot::Accel::Kvm, cpu) => format!(", KVM, -cpu {}", cpu.unwrap_or("host")),
            (_, Some(cpu)) => format!(", -cpu {cpu}"),
            (_, None) => String::new(),
        },
        if cfg.icount { ", --icount: guest time counts instructions (32 ns each)" } else { "" },
        match cfg.timeout {
            Some(t) => format!(", timeout {} s", t.as_secs()),
            None => String::new(),
        },
        if cfg.params.is_empty() {
            String::new()
        } else {
            let p: Vec<String> = cfg.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(", {}", p.join(" "))
        }
    );
    if cfg.gdb {
        eprintln!("gmpos: QEMU waits for a debugger on localhost:1234; attach from another terminal with:");
        // The extension (tools/gdb/gmpos.py) adds `info goroutines`, `goroutine N bt`, `info runq`
        // and `info sched`; see the README's "Debugging with gdb".
        let ext = boot::repo_dir()?.join("tools/gdb/gmpos.py");
        eprintln!("gmpos:   gdb {} -ex 'source {}' -ex 'target remote :1234'", shown(&elf), shown(&ext));
    }
    let outcome = boot::run_image(&cfg, &image, true)?;
    let secs = outcome.elapsed.as_secs_f64();
    match outcome.status {
        Status::Timeout => {
            let limit = cfg.timeout.map(|t| t.as_secs()).unwrap_or_default();
            say!();
            say!("TIMEOUT after {limit} s");
            say!("--- last 40 lines of serial output ---");
            say!("{}", outcome.last_lines(40));
            say!("--- QEMU: {}", outcome.command);
        }
        Status::NoExit(_) | Status::BootFailure(_) => {
            say!("gmpos: {} after {secs:.1} s", outcome.status);
            say!("gmpos: QEMU: {}", outcome.command);
        }
        Status::Pass | Status::Fail => say!("gmpos: {} after {secs:.1} s", outcome.status),
    }
    boot::trace::after_run(&cfg);
    Ok(outcome.status.exit_code() as u8)
}

/// `--image PATH`: build the image, copy it, and say how to put it on a USB stick.
fn image(cfg: &RunConfig, out: &Path) -> Result<(), boot::Error> {
    let w = boot::write_image(cfg, out, true)?;
    let mib = w.bytes as f64 / (1024.0 * 1024.0);
    let kind = if w.uefi { "UEFI disk image (GPT, the bootloader as efi/boot/bootx64.efi)" } else { "BIOS disk image (MBR)" };
    let text = format!(
        "gmpos: wrote {out} ({mib:.1} MiB): the {kind} of {elf}\n\
         gmpos: (a copy of {built})\n\
         \n\
         To boot it on a PC, write it to a USB stick. This destroys everything on the stick.\n\
         Find the stick's device (the whole disk, /dev/sdX, not a partition /dev/sdX1) with\n\
         `lsblk -d -o NAME,SIZE,MODEL,TRAN` before and after plugging it in, then:\n\
         \n    sudo dd if={out} of=/dev/sdX bs=4M conv=fsync status=progress\n\n\
         Check the device name twice: dd overwrites whatever /dev/sdX is, your system disk included.\n\
         \n\
         Boot the stick with {firmware}.\n\
         The kernel prints only on the serial port COM1 (I/O port 0x3f8, 38400 baud, 8N1), not on\n\
         the screen: read it with a null-modem cable or a USB serial adapter. When it is done the\n\
         machine does not power off (there is no isa-debug-exit device): it stays on, idle, until you\n\
         switch it off. Not tested on real hardware: see the README, \"Other QEMUs, KVM and real\n\
         hardware\".",
        out = w.out.display(),
        elf = shown(&w.elf),
        built = shown(&w.built),
        firmware = if w.uefi { "UEFI firmware (Secure Boot off: the bootloader is not signed)" } else { "legacy BIOS boot (CSM)" },
    );
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}

/// A path relative to the repository root when it is inside it (shorter, and what the README uses).
fn shown(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let root = boot::repo_dir().ok();
    for base in [cwd.as_deref(), root.as_deref()].into_iter().flatten() {
        if let Ok(rel) = p.strip_prefix(base) {
            return rel.display().to_string();
        }
    }
    p.display().to_string()
}
