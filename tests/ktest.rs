//! The kernel tests, as part of plain `cargo test` (and `./run-qemu.sh test`).
//!
//! A thin entry point: every QEMU scenario is a `#[ktest]` in a kernel binary (see
//! kernel/src/bin/testkernel/ and README "Writing kernel tests"); this runs them all through
//! the runner of `cargo run -- test`, one line per trial, ending with `N passed, N failed`.
//! The channel suite's plain tests share one boot per core count (`--isolate suite=chan`);
//! everything else boots alone.
//!
//! `cargo test --test ktest -- FILTER [RUNNER OPTIONS]` passes them on, e.g.
//! `cargo test --test ktest -- sched:: --smp 2`. `GMPOS_QEMU_JOBS=N` limits the QEMUs at once
//! (default: the host's cores). `GMPOS_RELEASE=1` tests release kernels.

fn main() {
    // libtest's own flags, which cargo or a user may pass to every test binary, mean nothing
    // here.
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--nocapture" | "--show-output" | "-q" | "--quiet" | "--ignored" | "--include-ignored" => {}
            "--test-threads" | "--color" | "--logfile" => {
                it.next();
            }
            _ if a.starts_with("--test-threads=") || a.starts_with("--color=") || a.starts_with("-Z") => {}
            _ => args.push(a),
        }
    }
    let mut full = vec!["--isolate".to_string(), "suite=chan".to_string()];
    if let Some(j) = std::env::var("GMPOS_QEMU_JOBS").ok().filter(|j| j.parse::<u32>().is_ok_and(|n| n > 0)) {
        full.push(format!("--jobs={j}"));
    }
    if std::env::var("GMPOS_RELEASE").is_ok_and(|v| !v.is_empty() && v != "0") {
        full.push("--release".into());
    }
    full.extend(args);
    // A filter meant for another test binary selects nothing here: that is not an error.
    full.push("--allow-empty".into());
    std::process::exit(i32::from(boot::ktest::main(full)));
}
