//! `gmpos`: build a kernel, wrap it in a disk image and boot it in QEMU. See `cargo run -- --help`.

use std::path::Path;
use std::process::ExitCode;

use boot::{Cli, RunConfig, Status};

/// Exit code for a build, image or launch error (not the kernel's verdict).
const EXIT_SETUP: u8 = 3;
/// Exit code for bad command-line arguments (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    // `cargo run -- test ...`: the kernel test runner (boot/src/ktest/).
    if std::env::args().nth(1).as_deref() == Some("test") {
        return ExitCode::from(boot::ktest::main(std::env::args().skip(2)));
    }
    let cfg = match boot::parse_args(std::env::args().skip(1)) {
        Ok(Cli::Help) => {
            println!("{}", boot::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Cli::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("gmpos: {e}");
            eprintln!("{}", boot::USAGE.lines().next().unwrap_or_default());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cfg) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("gmpos: error: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

fn run(mut cfg: RunConfig) -> Result<u8, boot::Error> {
    if let Ok(extra) = std::env::var("GMPOS_QEMU_ARGS") {
        cfg.extra_qemu_args.extend(extra.split_whitespace().map(String::from));
    }
    let elf = boot::kernel_for(&cfg, true)?;
    let image = boot::build_image(&elf, cfg.uefi)?;
    eprintln!(
        "gmpos: booting {} ({}, {} cores, {} MiB{}{})",
        shown(&elf),
        if cfg.uefi { "UEFI" } else { "BIOS" },
        cfg.smp,
        cfg.mem_mib,
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
        eprintln!("gmpos:   gdb {} -ex 'target remote :1234'", shown(&elf));
    }
    let outcome = boot::run_image(&cfg, &image, true)?;
    let secs = outcome.elapsed.as_secs_f64();
    match outcome.status {
        Status::Timeout => {
            let limit = cfg.timeout.map(|t| t.as_secs()).unwrap_or_default();
            eprintln!();
            eprintln!("TIMEOUT after {limit} s");
            eprintln!("--- last 40 lines of serial output ---");
            eprintln!("{}", outcome.last_lines(40));
            eprintln!("--- QEMU: {}", outcome.command);
        }
        Status::NoExit(_) => {
            eprintln!("gmpos: {} after {secs:.1} s", outcome.status);
            eprintln!("gmpos: QEMU: {}", outcome.command);
        }
        Status::Pass | Status::Fail => eprintln!("gmpos: {} after {secs:.1} s", outcome.status),
    }
    Ok(outcome.status.exit_code() as u8)
}

/// A path relative to the repository root when it is inside it (shorter, and what the README uses).
fn shown(p: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    for base in [cwd.as_deref(), Some(Path::new(boot::REPO_DIR))].into_iter().flatten() {
        if let Ok(rel) = p.strip_prefix(base) {
            return rel.display().to_string();
        }
    }
    p.display().to_string()
}
