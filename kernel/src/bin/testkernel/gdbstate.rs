//! Known scheduler states for the gdb extension (`tools/gdb/gmpos.py`).
//!
//! `gdbstate` (run it with `gomaxprocs=1`, so that nothing is stolen and the
//! state is the same at every boot) builds, then calls [`gdbstate_stop_here`],
//! where `tests/gdb.rs` has a breakpoint:
//!
//! | role     | state at the breakpoint                                         |
//! | -------- | --------------------------------------------------------------- |
//! | main     | running, in `gdbstate_stop_here`                                |
//! | recv     | waiting `[chan receive]` in `gdbstate_receiver`                 |
//! | send     | waiting `[chan send]` in `gdbstate_sender`                      |
//! | select   | waiting `[select]` in `gdbstate_selector`                       |
//! | sleep    | waiting `[sleep]` in `gdbstate_sleeper` (a timer on P0)          |
//! | hog      | runnable, first in P0's local queue, preempted asynchronously in `gdbstate_hog` |
//! | queued   | runnable, second in P0's local queue                            |
//! | next     | runnable in P0's `runnext`                                      |
//!
//! Each goroutine prints `gdbstate: goroutine N is ROLE` first, so the host
//! test knows the ids. Once gdb lets the kernel go on, main releases the
//! goroutines it can and returns (the sleeper is left behind, as a Go
//! program may leave goroutines behind when main returns).
//!
//! `gdbstate_deadlock` is the README's hung kernel: two goroutines take two
//! mutexes in opposite orders, main waits for them on a WaitGroup, and a
//! heartbeat goroutine that sleeps in a loop keeps a timer pending, so
//! `checkdead` never reports it. It never ends: stop it with gdb.
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{println, select, Chan, Mutex, WaitGroup};

use kernel::ktest::ktest;

const MS: u64 = 1_000_000;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// Goroutines that announced themselves and are about to park.
static PARKING: AtomicU32 = AtomicU32::new(0);
/// The hog spins until this is set.
static HOG_STOP: AtomicBool = AtomicBool::new(false);
static HOG_STARTED: AtomicBool = AtomicBool::new(false);

fn announce(role: &str) {
    println!("gdbstate: goroutine {} is {role}", kernel::goid());
}

/// The breakpoint: every goroutine is where the table above says.
#[no_mangle]
#[inline(never)]
pub extern "C" fn gdbstate_stop_here(goroutines: u32) {
    // Something the optimiser must keep, so that the call is not elided.
    core::hint::black_box(goroutines);
}

#[inline(never)]
fn gdbstate_receiver(c: Chan<u64>) {
    announce("recv");
    PARKING.fetch_add(1, Ordering::SeqCst);
    let v = c.recv();
    println!("gdbstate: recv got {v:?}");
}

#[inline(never)]
fn gdbstate_sender(c: Chan<u64>) {
    announce("send");
    PARKING.fetch_add(1, Ordering::SeqCst);
    c.send(7);
}

#[inline(never)]
fn gdbstate_selector(a: Chan<u64>, b: Chan<u64>) {
    announce("select");
    PARKING.fetch_add(1, Ordering::SeqCst);
    select! {
        recv(a) -> v => println!("gdbstate: select got a {v:?}"),
        recv(b) -> v => println!("gdbstate: select got b {v:?}"),
    }
}

#[inline(never)]
fn gdbstate_sleeper() {
    announce("sleep");
    PARKING.fetch_add(1, Ordering::SeqCst);
    kernel::sleep(600_000 * MS);
}

/// No safe point: only an asynchronous preemption takes the P away.
#[inline(never)]
fn gdbstate_hog() {
    announce("hog");
    HOG_STARTED.store(true, Ordering::SeqCst);
    while !HOG_STOP.load(Ordering::Relaxed) {
        core::hint::spin_loop();
    }
}

#[inline(never)]
fn gdbstate_runnable(role: &'static str, done: &'static WaitGroup) {
    announce(role);
    done.done();
}

/// Only under gdb (tests/gdb.rs); it also passes alone.
#[ktest(smp = [1], params = "gomaxprocs=1", tags = ["manual"])]
fn gdbstate() {
    assert_eq!(kernel::current_gomaxprocs(), 1, "gdbstate needs gomaxprocs=1 (a state nothing steals from)");
    announce("main");
    let recv_c = Chan::<u64>::new(0);
    let send_c = Chan::<u64>::new(0);
    let (sel_a, sel_b) = (Chan::<u64>::new(0), Chan::<u64>::new(0));
    {
        let c = recv_c.clone();
        kernel::go(move || gdbstate_receiver(c));
        let c = send_c.clone();
        kernel::go(move || gdbstate_sender(c));
        let (a, b) = (sel_a.clone(), sel_b.clone());
        kernel::go(move || gdbstate_selector(a, b));
        kernel::go(gdbstate_sleeper);
    }
    // One P: each goroutine runs when main yields, and parks before main runs
    // again (parking is its only yield).
    let deadline = kernel::nanotime() + 10_000 * MS;
    while PARKING.load(Ordering::SeqCst) < 4 {
        kernel::gosched();
        assert!(kernel::nanotime() < deadline, "gdbstate: the parkers did not run");
    }
    kernel::gosched();
    // The hog runs when main yields, and keeps the only P until sysmon
    // preempts it asynchronously (it has no safe point). It goes to the
    // global queue behind main; globrunqget takes both, runs main and moves
    // the hog to P0's local queue.
    kernel::go(gdbstate_hog);
    kernel::gosched();
    assert!(HOG_STARTED.load(Ordering::SeqCst), "gdbstate: main ran again before the hog");
    let done = leak(WaitGroup::new());
    done.add(2);
    kernel::go(move || gdbstate_runnable("queued", done));
    kernel::go(move || gdbstate_runnable("next", done));
    println!("gdbstate: stopping at gdbstate_stop_here");
    gdbstate_stop_here(kernel::num_goroutine() as u32);
    println!("gdbstate: resumed");
    HOG_STOP.store(true, Ordering::SeqCst);
    done.wait();
    send_c.recv();
    recv_c.send(1);
    sel_b.send(2);
    println!("gdbstate: done (the sleeper stays asleep)");
}

#[inline(never)]
fn gdbstate_lock_both(name: &str, first: &Mutex<u64>, second: &Mutex<u64>, ready: &Chan<()>, takes_first: bool) {
    let _a = first.lock();
    // The handshake makes the deadlock certain: each holds its first mutex
    // before either asks for its second.
    if takes_first {
        ready.send(());
    } else {
        ready.recv();
    }
    println!("gdbstate_deadlock: {name} (goroutine {}) holds its first mutex, wants its second", kernel::goid());
    let _b = second.lock();
    unreachable!("{name} got both mutexes");
}

/// Hangs on purpose (for the README's gdb session): never run by default.
#[ktest(smp = [2], tags = ["manual"])]
fn gdbstate_deadlock() {
    let a = leak(Mutex::new(0u64));
    let b = leak(Mutex::new(0u64));
    let ready = leak(Chan::<()>::new(0));
    let wg = leak(WaitGroup::new());
    wg.add(2);
    kernel::go(move || {
        gdbstate_lock_both("worker x", a, b, ready, true);
        wg.done();
    });
    kernel::go(move || {
        gdbstate_lock_both("worker y", b, a, ready, false);
        wg.done();
    });
    kernel::go(|| loop {
        kernel::sleep(100 * MS);
    });
    println!("gdbstate_deadlock: main (goroutine {}) waits for both workers", kernel::goid());
    wg.wait();
    unreachable!("the workers cannot finish");
}
