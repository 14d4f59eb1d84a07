//! Benchmarks: `./run-qemu.sh --release bench` (all) or `... bench bench=NAME`.
//!
//! Each benchmark prints one machine-readable line
//! `BENCH <name> <value> <unit>` (value in emulated time), plus, where a
//! baseline measured in the same run makes sense, a `BENCH <name>_ratio`
//! line. Benchmarks are measured, never asserted.
//!
//! The figures that `bench/compare.sh` sets beside Go's are measured as the
//! Go side measures them (`bench/go`): the best of three runs, each of about
//! 100 ms at `-smp 2` on the development machine, as Go calibrates each of
//! its three runs to a third of its 300 ms budget. A run's fixed costs
//! (starting the goroutines, waking the other cores, the last goroutines'
//! tail) then weigh in the same proportion on both sides. The sizes are fixed,
//! not calibrated, so that an instruction count (`ICOUNT=1`,
//! `bench/tbcount.sh`) divides by a known number of operations.
#![no_std]
#![no_main]

extern crate alloc;

mod chan;
mod insn;
mod sched;
mod workload;

use kernel::println;

kernel::main!(main);

pub type Bench = (&'static str, fn());

fn all() -> impl Iterator<Item = &'static Bench> {
    sched::BENCHES.iter().chain(chan::BENCHES.iter()).chain(workload::BENCHES.iter()).chain(insn::BENCHES.iter())
}

/// Print one result line.
pub fn report(name: &str, value: f64, unit: &str) {
    // No float formatting in core without soft-float fmt support worries:
    // print with 1 decimal via integers.
    let v10 = (value * 10.0) as u64;
    println!("BENCH {name} {}.{} {unit}", v10 / 10, v10 % 10);
}

/// Scheduler events over one benchmark, for finding where the time goes (the issue's "count
/// events: IPIs per hand-off"): M parks and wake-ups, steals, and how parked cores were woken
/// (`notewakeup` calls, wake-up IPIs, `hlt`s, and parks that ended in a halt poll). Relaxed
/// counters: a snapshot, not a synchronised one.
struct Events {
    parks: u64,
    wakeups: u64,
    steals: u64,
    notewakeups: u64,
    ipis: u64,
    halts: u64,
    poll_hits: u64,
}

impl Events {
    fn now() -> Events {
        use core::sync::atomic::Ordering::Relaxed;
        use kernel::runtime::proc::HALTPOLL as H;
        let s = kernel::runtime::trace::stats();
        Events {
            parks: s.parks,
            wakeups: s.wakeups,
            steals: s.steals,
            notewakeups: H.wakes.load(Relaxed),
            ipis: H.ipis.load(Relaxed),
            halts: H.halts.load(Relaxed),
            poll_hits: H.poll_hits.load(Relaxed),
        }
    }

    fn since(&self, e0: &Events) -> Events {
        Events {
            parks: self.parks - e0.parks,
            wakeups: self.wakeups - e0.wakeups,
            steals: self.steals - e0.steals,
            notewakeups: self.notewakeups - e0.notewakeups,
            ipis: self.ipis - e0.ipis,
            halts: self.halts - e0.halts,
            poll_hits: self.poll_hits - e0.poll_hits,
        }
    }

    fn print(&self, bench: &str) {
        println!(
            "EVENTS {bench} m_parks {} m_wakeups {} steals {} notewakeups {} wake_ipis {} halts {} poll_hits {}",
            self.parks, self.wakeups, self.steals, self.notewakeups, self.ipis, self.halts, self.poll_hits
        );
    }
}

fn main() {
    let only = kernel::boot::params().bench.as_ref().map(|n| n.as_str());
    let mut ran = 0;
    for (name, f) in all() {
        if only.is_none_or(|o| o == *name) {
            let e0 = Events::now();
            f();
            Events::now().since(&e0).print(name);
            ran += 1;
        }
    }
    if ran == 0 {
        println!("unknown benchmark \"{}\"; known:", only.unwrap_or(""));
        for (n, _) in all() {
            println!("  {n}");
        }
        kernel::arch::x86_64::exit::exit_failure();
    }
    println!("BENCH done {ran} benchmarks on {} cores, gomaxprocs={}", kernel::num_cpu(), kernel::current_gomaxprocs());
}
