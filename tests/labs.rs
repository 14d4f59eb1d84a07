//! The course labs check themselves (issue 10, "CI checks the labs themselves"), as part of
//! `cargo test --workspace`: `gmpos-lab check LAB` generates each lab's starter in
//! `target/lab-check/LAB/tree` and grades it with the host and loom tests (it must score 0),
//! puts the reference solution back (the tree must then be byte-identical to this checkout,
//! so it stands for the full tree, and score full marks), and applies each shipped mutant in
//! `labs/LAB/mutants/` (each must score less).
//!
//! The QEMU part of the grading is left out here: the QEMU tests themselves run in
//! `tests/ktest.rs` like every other `#[ktest]`. The full matrix, QEMU included, is one
//! command: `./run-qemu.sh lab check lab1 --qemu`.

use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// The checks share their target dirs (`target/lab-check/target` and `kernel-target`): one at a
/// time, or one lab's build could replace the testkernel another lab is about to boot.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `gmpos-lab check LAB`, which must end in `check LAB: OK`.
fn check(lab: &str) {
    boot::cleanup::exit_with_parent();
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gmpos-lab"))
        .env("GMPOS_ROOT", env!("CARGO_MANIFEST_DIR"))
        .args(["check", lab])
        .output()
        .expect("cannot run gmpos-lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(out.status.success(), "gmpos-lab check {lab} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("check {lab}: OK")), "{stdout}");
    println!("{lab} check took {:.0} s", t0.elapsed().as_secs_f64());
}

#[test]
fn lab1_starter_solution_and_mutants() {
    check("lab1");
}

#[test]
fn lab2_starter_solution_and_mutants() {
    check("lab2");
}

#[test]
fn lab3_starter_solution_and_mutants() {
    check("lab3");
}

#[test]
fn lab4_starter_solution_and_mutants() {
    check("lab4");
}

#[test]
fn lab5_starter_solution_and_mutants() {
    check("lab5");
}

#[test]
fn lab6_starter_solution_and_mutants() {
    check("lab6");
}

#[test]
fn lab7_starter_solution_and_mutants() {
    check("lab7");
}

#[test]
fn lab8_starter_solution_and_mutants() {
    check("lab8");
}
