//! The scenario kernel: `test=NAME` picks one scenario (see `TESTS`).
//!
//! A scenario passes by returning (the kernel exits 0); it fails through a
//! panic or a fatal error (QEMU exits with the failure status). The host
//! side (`tests/*.rs`) boots it at several `-smp` values with a timeout and
//! checks the lines it prints. Run one by hand with
//! `cargo run -- --bin testkernel --smp 4 test=NAME`.
#![no_std]
#![no_main]

extern crate alloc;

mod bringup;
mod chan;
mod gdbstate;
mod latch;
mod mem;
mod preempt;
mod regress;
mod sched;
mod torture;
mod trace;

use kernel::println;

kernel::main!(main);

type Test = (&'static str, fn());

fn all_tests() -> impl Iterator<Item = &'static Test> {
    bringup::TESTS.iter().chain(sched::TESTS.iter()).chain(preempt::TESTS.iter()).chain(chan::SUITE.iter()).chain(chan::TESTS.iter()).chain(regress::TESTS.iter()).chain(torture::TESTS.iter()).chain(gdbstate::TESTS.iter()).chain(mem::TESTS.iter()).chain(trace::TESTS.iter())
}

fn main() {
    let Some(name) = kernel::boot::params().test.as_ref().map(|n| n.as_str()) else {
        println!("testkernel: no test= boot parameter; known tests:");
        for (n, _) in all_tests() {
            println!("  {n}");
        }
        kernel::arch::x86_64::exit::exit_failure();
    };
    let Some((_, f)) = all_tests().find(|(n, _)| *n == name) else {
        println!("unknown test \"{name}\"; known tests:");
        for (n, _) in all_tests() {
            println!("  {n}");
        }
        kernel::arch::x86_64::exit::exit_failure();
    };
    println!("test {name}: start (gomaxprocs={}, ncpu={})", kernel::current_gomaxprocs(), kernel::num_cpu());
    f();
    println!("test {name}: PASS");
}
