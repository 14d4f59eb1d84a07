//! The loom model tests of `kernel/core`'s lock-free run queue, run as part
//! of a plain `cargo test` at the top level.
//!
//! loom needs `--cfg loom` on every crate of the build, so they run in a
//! nested cargo with its own target directory (`target/loom`), which does
//! not invalidate (or wait for the lock of) the normal build. The models:
//! put/get vs steal, overflow vs steal, runnext races, two thieves,
//! put_batch + drain vs steal, and runqempty never reporting a false empty:
//! no G is lost or duplicated in any interleaving loom explores.

use std::process::Command;

#[test]
fn loom_models_of_the_run_queue() {
    let root = env!("CARGO_MANIFEST_DIR");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", "--cfg loom")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .args(["test", "-p", "gmp-core", "--release", "--lib", "--target-dir", "target/loom", "--", "loom"])
        .output()
        .expect("cannot run cargo for the loom tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loom tests failed:\n{stdout}\n{stderr}");
    // The run must really have run the models, not filtered them all away.
    let ran = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<u32>().ok()))
        .unwrap_or(0);
    assert!(ran >= 6, "expected at least 6 loom models to run, got {ran}:\n{stdout}");
    println!("{ran} loom models passed");
}
