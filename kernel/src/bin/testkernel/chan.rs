//! Scenarios of the channels/select/sync issue: ports of Go's
//! `runtime/chan_test.go` and `sync` tests, close semantics, misuse that
//! must fail with Go's message, deadlock detection, and the prime sieve.
//!
//! Go's test sizes are kept except where noted (TestChan's capacities stop
//! at 100, TestSelectStress uses Go's -short size); every case and
//! assertion is kept.
//!
//! Atomics here are test counters and flags. Relaxed ones are read only
//! after a WaitGroup wait or a channel receive, which orders them after the
//! writes (that ordering is what the sync code under test provides); SeqCst
//! ones are read while other goroutines run, where the test races on purpose.
use kernel::ktest::ktest;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{after, println, select, Chan, Mutex, Once, RawMutex, Semaphore, TryRecvError, WaitGroup};



fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

const MS: u64 = 1_000_000;

// ---- basics ---------------------------------------------------------------------

/// A value whose drops are counted: no element is leaked or dropped twice.
struct Counted(u64, &'static AtomicU64);
impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_basic: ok"])]
fn chan_basic() {
    // Buffered: FIFO, len, cap, try_*.
    let c = Chan::<u64>::new(3);
    assert_eq!((c.len(), c.cap()), (0, 3));
    assert_eq!(c.try_recv(), Err(TryRecvError::Empty));
    for i in 0..3 {
        assert_eq!(c.try_send(i), Ok(()));
    }
    assert_eq!(c.try_send(99), Err(99), "a full channel gives the value back");
    assert_eq!(c.len(), 3);
    assert_eq!(c.recv(), Some(0));
    assert_eq!(c.try_recv(), Ok(1));
    c.send(3);
    assert_eq!(c.recv2(), (2, true));
    assert_eq!(c.recv(), Some(3));
    // Unbuffered: a try on either side fails without a partner.
    let u = Chan::<u64>::new(0);
    assert_eq!((u.len(), u.cap()), (0, 0));
    assert_eq!(u.try_send(1), Err(1));
    assert_eq!(u.try_recv(), Err(TryRecvError::Empty));
    // Ping-pong with a goroutine, and `for v := range c`.
    let (u2, back) = (u.clone(), Chan::<u64>::new(0));
    let back2 = back.clone();
    kernel::go(move || {
        let mut sum = 0;
        for v in u2.iter() {
            sum += v;
        }
        back2.send(sum);
    });
    for i in 1..=100 {
        u.send(i);
    }
    u.close();
    assert_eq!(back.recv(), Some(5050));
    // Zero-sized elements.
    let z = Chan::<()>::new(2);
    z.send(());
    z.send(());
    assert_eq!(z.try_send(()), Err(()));
    assert_eq!((z.recv(), z.recv(), z.len()), (Some(()), Some(()), 0));
    // Big elements, by hand-off and through the buffer.
    for cap in [0, 2] {
        let b = Chan::<[u64; 64]>::new(cap);
        let b2 = b.clone();
        kernel::go(move || {
            for i in 0..10u64 {
                b2.send([i; 64]);
            }
        });
        for i in 0..10u64 {
            let v = b.recv().unwrap();
            assert!(v.iter().all(|&x| x == i), "corrupted big element");
        }
    }
    // Drops: values still buffered when the last handle goes are dropped;
    // sent values are not dropped by the channel.
    let drops = leak(AtomicU64::new(0));
    let d = Chan::<Counted>::new(4);
    for i in 0..4 {
        d.send(Counted(i, drops));
    }
    let first = d.recv().unwrap();
    assert_eq!(first.0, 0);
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(first);
    assert!(d.try_send(Counted(9, drops)).is_ok());
    let e = d.try_send(Counted(10, drops)).unwrap_err();
    drop(e);
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    let clone = d.clone();
    drop(d);
    assert_eq!(drops.load(Ordering::Relaxed), 2, "a clone keeps the channel alive");
    drop(clone);
    assert_eq!(drops.load(Ordering::Relaxed), 6, "the 4 buffered values are dropped with the channel");
    // Nil channel: non-blocking operations fail; len/cap are 0.
    let n = Chan::<u64>::nil();
    assert!(n.is_nil());
    assert_eq!((n.try_send(1), n.try_recv(), n.len(), n.cap()), (Err(1), Err(TryRecvError::Empty), 0, 0));
    readme_example();
    println!("chan_basic: ok");
}

/// The example of README.md's "Channels, select and sync" section, verbatim
/// but for the final check.
fn readme_example() {
    use kernel::go;
    let jobs = Chan::<u64>::new(16); // make(chan u64, 16); Chan::new(0) is unbuffered
    let results = Chan::<u64>::new(0);
    let wg: &'static WaitGroup = Box::leak(Box::new(WaitGroup::new()));
    for _ in 0..4 {
        let (jobs, results) = (jobs.clone(), results.clone()); // a Chan is a cheap handle (Arc)
        wg.add(1);
        go(move || {
            for n in jobs.iter() {
                // for n := range jobs
                results.send(n * n);
            }
            wg.done();
        });
    }
    go(move || {
        for n in 0..100 {
            jobs.send(n)
        }
        jobs.close();
    });
    let r = results.clone();
    go(move || {
        wg.wait();
        r.close();
    }); // close results once every worker is done
    let mut sum = 0;
    loop {
        select! {
            recv(results) -> v => match v {      // v: Option<u64>, None once closed and drained
                Some(sq) => sum += sq,
                None => break,
            },
            recv(after(1_000_000_000)) -> _ => panic!("stalled"),   // time.After as a case
        }
    }
    assert_eq!(sum, (0..100u64).map(|n| n * n).sum::<u64>());
}

// ---- TestChan ---------------------------------------------------------------------
//
// Every capacity 0..=100 (Go: 0..200, short: 0..20), with Go's sizes
// otherwise (100 values in order, 4 senders x 1000 values fanned out).

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_test: capacities 0..=100: blocking, non-blocking, close, FIFO, 4x1000 fan-in/out, len/cap: ok"])]
fn chan_test() {
    const P: usize = 4;
    const L: usize = 1000;
    for cap in 0..=100usize {
        if cap % 10 == 0 {
            println!("chan_test: cap {cap}");
        }
        {
            // A receive from an empty channel blocks.
            let c = Chan::<u64>::new(cap);
            let recv1 = leak(AtomicBool::new(false));
            let recv2 = leak(AtomicBool::new(false));
            let c1 = c.clone();
            kernel::go(move || {
                let _ = c1.recv();
                recv1.store(true, Ordering::SeqCst);
            });
            let c2 = c.clone();
            kernel::go(move || {
                let _ = c2.recv2();
                recv2.store(true, Ordering::SeqCst);
            });
            kernel::sleep(MS);
            assert!(!recv1.load(Ordering::SeqCst) && !recv2.load(Ordering::SeqCst), "chan[{cap}]: receive from empty chan");
            // A non-blocking receive does not block.
            select! {
                recv(c) -> _ => panic!("chan[{cap}]: receive from empty chan"),
                default => {}
            }
            if c.try_recv().is_ok() {
                panic!("chan[{cap}]: receive from empty chan");
            }
            c.send(0);
            c.send(0);
        }
        {
            // A send to a full channel blocks.
            let c = Chan::<u64>::new(cap);
            for i in 0..cap {
                c.send(i as u64);
            }
            let sent = leak(AtomicU32::new(0));
            let c1 = c.clone();
            kernel::go(move || {
                c1.send(0);
                sent.store(1, Ordering::SeqCst);
            });
            kernel::sleep(MS);
            assert_eq!(sent.load(Ordering::SeqCst), 0, "chan[{cap}]: send to full chan");
            // A non-blocking send does not block.
            select! {
                send(c, 0) => panic!("chan[{cap}]: send to full chan"),
                default => {}
            }
            let _ = c.recv();
        }
        {
            // A closed channel gives its buffered values, then zero.
            let c = Chan::<u64>::new(cap);
            for i in 0..cap {
                c.send(i as u64);
            }
            c.close();
            for i in 0..cap {
                let v = c.recv();
                assert_eq!(v, Some(i as u64), "chan[{cap}]: received {v:?}, expected {i}");
            }
            assert_eq!(c.recv(), None, "chan[{cap}]: receive from closed chan");
            assert_eq!(c.recv2(), (0, false), "chan[{cap}]: receive from closed chan");
        }
        {
            // Close unblocks a receive.
            let c = Chan::<u64>::new(cap);
            let done = Chan::<bool>::new(0);
            let (c1, d1) = (c.clone(), done.clone());
            kernel::go(move || {
                let (v, ok) = c1.recv2();
                d1.send(v == 0 && !ok);
            });
            kernel::sleep(MS);
            c.close();
            assert!(done.recv().unwrap(), "chan[{cap}]: received non-zero from closed chan");
        }
        {
            // 100 values arrive uncorrupted and in order, with recv and recv2.
            let c = Chan::<u64>::new(cap);
            let c1 = c.clone();
            kernel::go(move || {
                for i in 0..100 {
                    c1.send(i);
                }
            });
            for i in 0..100 {
                let v = c.recv();
                assert_eq!(v, Some(i), "chan[{cap}]: received {v:?}, expected {i}");
            }
            let c1 = c.clone();
            kernel::go(move || {
                for i in 0..100 {
                    c1.send(i);
                }
            });
            for i in 0..100 {
                let (v, ok) = c.recv2();
                assert!(ok, "chan[{cap}]: receive from non-closed chan failed");
                assert_eq!(v, i, "chan[{cap}]: received {v}, expected {i}");
            }
            // P senders and P receivers: each value arrives P times.
            for _ in 0..P {
                let c1 = c.clone();
                kernel::go(move || {
                    for i in 0..L {
                        c1.send(i as u64);
                    }
                });
            }
            let done = Chan::<Vec<u32>>::new(0);
            for _ in 0..P {
                let (c1, d1) = (c.clone(), done.clone());
                kernel::go(move || {
                    let mut recv = vec![0u32; L];
                    for _ in 0..L {
                        recv[c1.recv().unwrap() as usize] += 1;
                    }
                    d1.send(recv);
                });
            }
            let mut recv = vec![0u32; L];
            for _ in 0..P {
                for (k, n) in done.recv().unwrap().iter().enumerate() {
                    recv[k] += n;
                }
            }
            for (k, &n) in recv.iter().enumerate() {
                assert_eq!(n, P as u32, "chan[{cap}]: received {k} {n} times, expected {P}");
            }
        }
        {
            // len and cap.
            let c = Chan::<u64>::new(cap);
            assert!(c.len() == 0 && c.cap() == cap, "chan[{cap}]: bad len/cap, expect 0/{cap}, got {}/{}", c.len(), c.cap());
            for i in 0..cap {
                c.send(i as u64);
            }
            assert!(c.len() == cap && c.cap() == cap, "chan[{cap}]: bad len/cap, expect {cap}/{cap}, got {}/{}", c.len(), c.cap());
        }
    }
    println!("chan_test: capacities 0..=100: blocking, non-blocking, close, FIFO, {P}x{L} fan-in/out, len/cap: ok");
}

// ---- TestNonblockRecvRace -----------------------------------------------------------
//
// A non-blocking receive on a buffered channel holding a value must succeed
// even while another goroutine closes the channel and drains it. Go's
// 10000 rounds.

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_nonblock_recv_race: 10000 rounds, 0 failures"])]
fn chan_nonblock_recv_race() {
    const N: u32 = 10_000;
    let failed = leak(AtomicU32::new(0));
    let wg = leak(WaitGroup::new());
    for _ in 0..N {
        let c = Chan::<u32>::new(1);
        c.send(1);
        let c1 = c.clone();
        wg.add(1);
        kernel::go(move || {
            select! {
                recv(c1) -> _ => {},
                default => { failed.fetch_add(1, Ordering::Relaxed); }
            }
            wg.done();
        });
        c.close();
        let _ = c.recv();
    }
    wg.wait();
    let f = failed.load(Ordering::Relaxed);
    println!("chan_nonblock_recv_race: {N} rounds, {f} failures");
    assert_eq!(f, 0, "chan is not ready");
}

// ---- TestSelfSelect --------------------------------------------------------------------
//
// A select that can send to and receive from the same channel never
// receives its own value (unbuffered), nor deadlocks.

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_self_select: ok"])]
fn chan_self_select() {
    let prev = kernel::gomaxprocs(kernel::num_cpu().min(2)).unwrap();
    for cap in [0usize, 10] {
        let wg = leak(WaitGroup::new());
        wg.add(2);
        let c = Chan::<u32>::new(cap);
        for p in 0..2u32 {
            let c = c.clone();
            kernel::go(move || {
                for i in 0..1000 {
                    if p == 0 || i % 2 == 0 {
                        select! {
                            send(c, p) => {},
                            recv(c) -> v => {
                                if cap == 0 && v == Some(p) {
                                    panic!("self receive");
                                }
                            },
                        }
                    } else {
                        select! {
                            recv(c) -> v => {
                                if cap == 0 && v == Some(p) {
                                    panic!("self receive");
                                }
                            },
                            send(c, p) => {},
                        }
                    }
                }
                wg.done();
            });
        }
        wg.wait();
    }
    kernel::gomaxprocs(prev).unwrap();
    println!("chan_self_select: ok");
}

// ---- TestSelectStress ----------------------------------------------------------------------
//
// 4 channels (caps 0, 0, 2, 3); per channel a sender and a receiver of N
// values, plus one goroutine sending N on each in a single select and one
// receiving N from each in a single select (a finished channel's case is
// made nil). Go: N = 1e5; here Go's -short size, 1e4.

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_select_stress: 10 goroutines, 4 channels, 160000 values: ok"])]
fn chan_select_stress() {
    const N: u32 = 10_000;
    let c: [Chan<u32>; 4] = [Chan::new(0), Chan::new(0), Chan::new(2), Chan::new(3)];
    let wg = leak(WaitGroup::new());
    wg.add(10);
    for k in 0..4 {
        let ck = c[k].clone();
        kernel::go(move || {
            for _ in 0..N {
                ck.send(0);
            }
            wg.done();
        });
        let ck = c[k].clone();
        kernel::go(move || {
            for _ in 0..N {
                ck.recv().unwrap();
            }
            wg.done();
        });
    }
    let cs = c.clone();
    kernel::go(move || {
        let mut n = [0u32; 4];
        let mut c1 = cs;
        for _ in 0..4 * N {
            select! {
                send(c1[3], 0) => {
                    n[3] += 1;
                    if n[3] == N { c1[3] = Chan::nil(); }
                },
                send(c1[2], 0) => {
                    n[2] += 1;
                    if n[2] == N { c1[2] = Chan::nil(); }
                },
                send(c1[0], 0) => {
                    n[0] += 1;
                    if n[0] == N { c1[0] = Chan::nil(); }
                },
                send(c1[1], 0) => {
                    n[1] += 1;
                    if n[1] == N { c1[1] = Chan::nil(); }
                },
            }
        }
        wg.done();
    });
    let cr = c.clone();
    kernel::go(move || {
        let mut n = [0u32; 4];
        let mut c1 = cr;
        for _ in 0..4 * N {
            select! {
                recv(c1[0]) -> _ => {
                    n[0] += 1;
                    if n[0] == N { c1[0] = Chan::nil(); }
                },
                recv(c1[1]) -> _ => {
                    n[1] += 1;
                    if n[1] == N { c1[1] = Chan::nil(); }
                },
                recv(c1[2]) -> _ => {
                    n[2] += 1;
                    if n[2] == N { c1[2] = Chan::nil(); }
                },
                recv(c1[3]) -> _ => {
                    n[3] += 1;
                    if n[3] == N { c1[3] = Chan::nil(); }
                },
            }
        }
        wg.done();
    });
    wg.wait();
    for ch in &c {
        assert_eq!(ch.len(), 0);
    }
    println!("chan_select_stress: 10 goroutines, 4 channels, {} values: ok", 16 * N);
}

// ---- TestSelectFairness ----------------------------------------------------------------------
//
// With two always-ready cases (and two never-ready ones), a select must pick
// each about half the time: within 10 sigma over 10 000 trials (Go's bound).

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_select_fairness: 10000 trials: "])]
fn chan_select_fairness() {
    const TRIALS: usize = 10_000;
    let c1 = Chan::<u8>::new(TRIALS + 1);
    let c2 = Chan::<u8>::new(TRIALS + 1);
    for _ in 0..TRIALS + 1 {
        c1.send(1);
        c2.send(2);
    }
    let c3 = Chan::<u8>::new(0);
    let c4 = Chan::<u8>::new(0);
    let out = Chan::<u8>::new(0);
    let done = Chan::<u8>::new(0);
    let wg = leak(WaitGroup::new());
    wg.add(1);
    {
        let (c1, c2, c3, c4, out, done) = (c1.clone(), c2.clone(), c3.clone(), c4.clone(), out.clone(), done.clone());
        kernel::go(move || loop {
            let b = select! {
                recv(c3) -> b => b,
                recv(c4) -> b => b,
                recv(c1) -> b => b,
                recv(c2) -> b => b,
            };
            select! {
                send(out, b.unwrap()) => {},
                recv(done) -> _ => {
                    wg.done();
                    return;
                },
            }
        });
    }
    let (mut cnt1, mut cnt2) = (0i64, 0i64);
    for _ in 0..TRIALS {
        match out.recv().unwrap() {
            1 => cnt1 += 1,
            2 => cnt2 += 1,
            b => panic!("unexpected value {b} on channel"),
        }
    }
    // mean = TRIALS/2, variance = TRIALS/4, stddev = 50 for 10 000 trials.
    let mean = TRIALS as i64 / 2;
    let ten_sigma = 10 * 50;
    println!("chan_select_fairness: {TRIALS} trials: {cnt1} / {cnt2} (10 sigma = {ten_sigma})");
    assert!((cnt1 - mean).abs() <= ten_sigma, "unfair select: in {TRIALS} trials, results were {cnt1}, {cnt2}");
    done.close();
    wg.wait();
}

// ---- TestMultiConsumer ----------------------------------------------------------------------
//
// 23 workers range over a work channel and forward to a result channel;
// the feeder closes work, waits for the workers, closes results. Every
// value must arrive exactly once (Go checks the count and the sum; values
// here are distinct so each is checked). Go's 271828 values.

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_multi_consumer: 23 workers, 271828 values, sum 36945094878, missing 0, duplicated 0"])]
fn chan_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = 271_828;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    let q = Chan::<u32>::new(NWORK * 3);
    let r = Chan::<u32>::new(NWORK * 3);
    let wg = leak(WaitGroup::new());
    for w in 0..NWORK {
        wg.add(1);
        let (q, r) = (q.clone(), r.clone());
        kernel::go(move || {
            for v in q.iter() {
                // Mess with the FIFO-ish order of range.
                if PN[w % PN.len()] == PN[v as usize % PN.len()] {
                    kernel::gosched();
                }
                r.send(v);
            }
            wg.done();
        });
    }
    let expect = leak(AtomicU64::new(0));
    {
        let (q, r) = (q.clone(), r.clone());
        kernel::go(move || {
            for i in 0..NITER {
                expect.fetch_add(i as u64, Ordering::Relaxed);
                q.send(i as u32);
            }
            q.close();
            wg.wait();
            r.close();
        });
    }
    let mut seen = vec![0u8; NITER];
    let (mut n, mut s) = (0usize, 0u64);
    for v in r.iter() {
        n += 1;
        s += v as u64;
        seen[v as usize] += 1;
    }
    let dup = seen.iter().filter(|&&k| k > 1).count();
    let missing = seen.iter().filter(|&&k| k == 0).count();
    println!("chan_multi_consumer: {NWORK} workers, {n} values, sum {s}, missing {missing}, duplicated {dup}");
    assert!(n == NITER && s == expect.load(Ordering::Relaxed), "expected sum {} (got {s}) from {NITER} iter (saw {n})", expect.load(Ordering::Relaxed));
    assert!(dup == 0 && missing == 0);
}

// ---- TestChanSendInterface analog --------------------------------------------------------------
//
// Go sends an interface value (a pointer) on a chan any, including from
// selects with default. The Rust analog: boxed trait objects. Besides not
// crashing, every box must be dropped exactly once: the ones sent by the
// consumer, the ones not sent by the select that did not pick them.

trait Method: Send {
    fn method(&self) -> u64;
}
struct Mt(u64, &'static AtomicU64);
impl Method for Mt {
    fn method(&self) -> u64 {
        self.0
    }
}
impl Drop for Mt {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_send_interface: 106 boxed trait objects, each dropped exactly once: ok"])]
fn chan_send_interface() {
    let drops = leak(AtomicU64::new(0));
    let c = Chan::<Box<dyn Method>>::new(1);
    c.send(Box::new(Mt(1, drops)));
    select! {
        send(c, Box::new(Mt(2, drops))) => panic!("sent to a full channel"),
        default => {}
    }
    select! {
        send(c, Box::new(Mt(3, drops))) => panic!("sent to a full channel"),
        send(c, Box::new(Mt(4, drops))) => panic!("sent to a full channel"),
        default => {}
    }
    assert_eq!(drops.load(Ordering::Relaxed), 3, "the unsent boxes 2, 3, 4 are dropped");
    assert_eq!(c.recv().unwrap().method(), 1);
    assert_eq!(drops.load(Ordering::Relaxed), 4);
    // Now with room: one of the two cases is taken, the other dropped.
    select! {
        send(c, Box::new(Mt(5, drops))) => {},
        send(c, Box::new(Mt(6, drops))) => {},
        default => panic!("a send case was ready"),
    }
    assert_eq!(drops.load(Ordering::Relaxed), 5);
    let m = c.recv().unwrap().method();
    assert!(m == 5 || m == 6);
    assert_eq!(drops.load(Ordering::Relaxed), 6);
    // Unbuffered hand-off of trait objects to a goroutine, through select.
    let u = Chan::<Box<dyn Method>>::new(0);
    let sum = Chan::<u64>::new(0);
    let (u2, sum2) = (u.clone(), sum.clone());
    kernel::go(move || {
        let mut s = 0;
        while let Some(m) = u2.recv() {
            s += m.method();
        }
        sum2.send(s);
    });
    for i in 1..=100 {
        let b: Box<dyn Method> = Box::new(Mt(i, drops));
        select! {
            send(u, b) => {},
        }
    }
    u.close();
    assert_eq!(sum.recv(), Some(5050));
    assert_eq!(drops.load(Ordering::Relaxed), 106, "every box dropped exactly once");
    println!("chan_send_interface: 106 boxed trait objects, each dropped exactly once: ok");
}

// ---- close semantics ---------------------------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_close: wake-all on close"])]
fn chan_close() {
    for cap in [0usize, 1, 5] {
        // Many blocked receivers (more than a sudog cache holds) all wake on
        // close, with "closed".
        const R: usize = 300;
        let c = Chan::<u64>::new(cap);
        let woke = leak(AtomicU64::new(0));
        let wg = leak(WaitGroup::new());
        let blocked = leak(AtomicU64::new(0));
        for _ in 0..R {
            wg.add(1);
            let c = c.clone();
            kernel::go(move || {
                blocked.fetch_add(1, Ordering::SeqCst);
                assert_eq!(c.recv(), None, "a receiver woken by close gets None");
                woke.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        // Blocked select receivers wake too.
        let other = Chan::<u64>::new(0);
        for _ in 0..10 {
            wg.add(1);
            let (c, other) = (c.clone(), other.clone());
            kernel::go(move || {
                select! {
                    recv(other) -> _ => panic!("nothing is sent on other"),
                    recv(c) -> v => assert_eq!(v, None),
                }
                woke.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        while blocked.load(Ordering::SeqCst) < R as u64 {
            kernel::sleep(MS);
        }
        kernel::sleep(MS);
        assert_eq!(woke.load(Ordering::SeqCst), 0, "cap {cap}: nobody wakes before close");
        c.close();
        wg.wait();
        assert_eq!(woke.load(Ordering::SeqCst), R as u64 + 10);

        // Buffered values survive the close and are drained in order; then
        // "closed" forever, on every kind of receive.
        let c = Chan::<u64>::new(cap);
        for i in 0..cap as u64 {
            c.send(i);
        }
        c.close();
        assert_eq!(c.len(), cap);
        for i in 0..cap as u64 {
            if i % 2 == 0 {
                assert_eq!(c.try_recv(), Ok(i));
            } else {
                assert_eq!(c.recv(), Some(i));
            }
        }
        for _ in 0..3 {
            assert_eq!(c.recv(), None);
            assert_eq!(c.recv2(), (0, false));
            assert_eq!(c.try_recv(), Err(TryRecvError::Closed));
            // A closed channel is ready: select picks it over default.
            let picked = select! {
                recv(c) -> v => { assert_eq!(v, None); true },
                default => false,
            };
            assert!(picked, "select must choose a closed channel over default");
        }
        assert_eq!(c.len(), 0);
    }
    // close wakes a goroutine blocked in select on a nil + closed channel.
    let c = Chan::<u64>::new(0);
    let done = Chan::<bool>::new(0);
    let (c2, done2) = (c.clone(), done.clone());
    kernel::go(move || {
        let n = Chan::<u64>::nil();
        let r = select! {
            recv(n) -> _ => false,
            recv(c2) -> v => v.is_none(),
        };
        done2.send(r);
    });
    kernel::sleep(MS);
    c.close();
    assert_eq!(done.recv(), Some(true));
    println!("chan_close: wake-all on close (caps 0/1/5, {} receivers), drain after close, closed beats default: ok", 310);
}

// ---- after() and select ------------------------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_select_after: timeout after"])]
fn chan_select_after() {
    // A timeout fires when nothing else is ready.
    let never = Chan::<u64>::new(0);
    let t0 = kernel::nanotime();
    let r = select! {
        recv(never) -> _ => panic!("nothing is ever sent"),
        recv(after(5 * MS)) -> t => t,
    };
    let dt = kernel::nanotime() - t0;
    let t = r.expect("after() delivers the time");
    assert!(dt >= 5 * MS && t >= t0 + 5 * MS, "after(5ms) fired after {dt} ns");
    // A ready channel wins over a timeout that has not expired.
    let ready = Chan::<u64>::new(1);
    ready.send(7);
    let v = select! {
        recv(ready) -> v => v.unwrap(),
        recv(after(1_000 * MS)) -> _ => panic!("timeout before a ready channel"),
    };
    assert_eq!(v, 7);
    // The tick waits in the buffer if nobody receives yet.
    let a = after(MS);
    kernel::sleep(3 * MS);
    assert_eq!(a.len(), 1);
    assert!(a.recv().unwrap() >= t0);
    // Nil cases are never chosen; with only nil cases, default is.
    let n = Chan::<u64>::nil();
    let d = select! {
        recv(n) -> _ => false,
        send(n, 1) => false,
        default => true,
    };
    assert!(d);
    // A producer racing with timeouts: every value is received once.
    let c = Chan::<u64>::new(0);
    let c2 = c.clone();
    kernel::go(move || {
        for i in 0..50 {
            if i % 5 == 0 {
                kernel::sleep(300_000);
            }
            c2.send(i);
        }
        c2.close();
    });
    let (mut got, mut timeouts, mut next) = (0, 0, 0);
    loop {
        select! {
            recv(c) -> v => match v {
                Some(v) => { assert_eq!(v, next); next += 1; got += 1; }
                None => break,
            },
            recv(after(100_000)) -> _ => timeouts += 1,
        }
    }
    assert_eq!(got, 50);
    println!("chan_select_after: timeout after {} us, ready beats timeout, {got} values with {timeouts} timeouts: ok", dt / 1000);
}

// ---- the prime sieve -----------------------------------------------------------------------------
//
// Go's classic concurrent prime sieve: a generator goroutine, and one
// filter goroutine per prime found, connected by unbuffered channels.

fn sieve_first(n: usize) -> Vec<u64> {
    let mut ch = Chan::<u64>::new(0);
    let gen = ch.clone();
    kernel::go(move || {
        let mut i = 2;
        loop {
            gen.send(i);
            i += 1;
        }
    });
    let mut primes = Vec::with_capacity(n);
    for _ in 0..n {
        let prime = ch.recv().unwrap();
        primes.push(prime);
        let ch1 = Chan::<u64>::new(0);
        let (input, out) = (ch.clone(), ch1.clone());
        kernel::go(move || loop {
            let i = input.recv().unwrap();
            if i % prime != 0 {
                out.send(i);
            }
        });
        ch = ch1;
    }
    primes
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["chan_sieve: first 150 primes: 2 ... 863"])]
fn chan_sieve() {
    const N: usize = 150;
    let primes = sieve_first(N);
    let mut want = Vec::new();
    let mut k = 2u64;
    while want.len() < N {
        if (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0) {
            want.push(k);
        }
        k += 1;
    }
    println!("chan_sieve: first {N} primes: {} ... {} ({} goroutines)", primes[0], primes[N - 1], N + 1);
    assert_eq!(primes, want, "the sieve gave wrong primes");
}

// ---- sync ------------------------------------------------------------------------------------------

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["sync_waitgroup: round 1: 10000 goroutines, 5 waiters: ok"])]
fn sync_waitgroup() {
    const N: u64 = 10_000;
    let wg = leak(WaitGroup::new());
    for round in 0..2 {
        let ran = leak(AtomicU64::new(0));
        // Several goroutines wait on the same group, besides main.
        let waiters = leak(WaitGroup::new());
        let woken = leak(AtomicU64::new(0));
        wg.add(N as i32);
        for _ in 0..4 {
            waiters.add(1);
            kernel::go(move || {
                wg.wait();
                assert_eq!(ran.load(Ordering::Relaxed), N, "Wait returned before every Done");
                woken.fetch_add(1, Ordering::Relaxed);
                waiters.done();
            });
        }
        for _ in 0..N {
            kernel::go(move || {
                ran.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(ran.load(Ordering::Relaxed), N);
        assert_eq!(wg.count(), 0);
        waiters.wait();
        assert_eq!(woken.load(Ordering::Relaxed), 4);
        println!("sync_waitgroup: round {round}: {N} goroutines, 5 waiters: ok");
    }
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["sync_mutex: 8x2000 increments = 16000"])]
fn sync_mutex() {
    const G: u64 = 8;
    const M: u64 = 2000;
    // A plain u64 behind the mutex: read-modify-write with a pause in the
    // middle, so an overlap would lose increments.
    let m = leak(Mutex::new(0u64));
    let inside = leak(AtomicU32::new(0));
    let wg = leak(WaitGroup::new());
    let cpus = leak([const { AtomicU64::new(0) }; 64]);
    let t0 = kernel::nanotime();
    for g in 0..G {
        wg.add(1);
        kernel::go(move || {
            for i in 0..M {
                let mut guard = if i % 7 == 0 {
                    loop {
                        if let Some(gd) = m.try_lock() {
                            break gd;
                        }
                        kernel::gosched();
                    }
                } else {
                    m.lock()
                };
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two goroutines inside the mutex");
                let v = *guard;
                for _ in 0..10 {
                    core::hint::spin_loop();
                }
                *guard = v + 1;
                inside.fetch_sub(1, Ordering::SeqCst);
                cpus[kernel::cpu_id()].fetch_add(1, Ordering::Relaxed);
                drop(guard);
                if (i + g) % 64 == 0 {
                    kernel::gosched();
                }
            }
            wg.done();
        });
    }
    wg.wait();
    let total = *m.lock();
    let per_cpu: Vec<u64> = (0..kernel::num_cpu() as usize).map(|c| cpus[c].load(Ordering::Relaxed)).collect();
    println!("sync_mutex: {G}x{M} increments = {total} in {} ms, per cpu {per_cpu:?}", (kernel::nanotime() - t0) / MS);
    assert_eq!(total, G * M);
    assert!(!m.raw().is_locked());
}

/// Go's TestMutexFairness: a goroutine that holds the mutex most of the
/// time must not keep out another that wants it for 10 s: starvation mode
/// (after 1 ms of waiting) hands it over.
#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["sync_mutex_fairness: the waiter got the mutex 10 times"])]
fn sync_mutex_fairness() {
    let mu = leak(RawMutex::new());
    let stop = Chan::<bool>::new(0);
    let stop2 = stop.clone();
    let hog_iters = leak(AtomicU64::new(0));
    kernel::go(move || loop {
        mu.lock();
        kernel::sleep(100_000);
        mu.unlock();
        hog_iters.fetch_add(1, Ordering::Relaxed);
        select! {
            recv(stop2) -> _ => return,
            default => {}
        }
    });
    let done = Chan::<bool>::new(1);
    let done2 = done.clone();
    kernel::go(move || {
        for _ in 0..10 {
            kernel::sleep(100_000);
            mu.lock();
            mu.unlock();
        }
        done2.send(true);
    });
    let t0 = kernel::nanotime();
    select! {
        recv(done) -> _ => {},
        recv(after(10_000 * MS)) -> _ => panic!("can't acquire Mutex in 10 seconds"),
    }
    println!(
        "sync_mutex_fairness: the waiter got the mutex 10 times in {} ms while the hog looped {} times",
        (kernel::nanotime() - t0) / MS,
        hog_iters.load(Ordering::Relaxed)
    );
    stop.close();
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["sync_once: round 2: 100 goroutines, f ran once: ok"])]
fn sync_once() {
    for round in 0..3 {
        let once = leak(Once::new());
        let runs = leak(AtomicU32::new(0));
        let value = leak(AtomicU64::new(0));
        let wg = leak(WaitGroup::new());
        const G: u32 = 100;
        for _ in 0..G {
            wg.add(1);
            kernel::go(move || {
                once.call_once(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Slow and blocking: the others must wait, not skip.
                    kernel::sleep(2 * MS);
                    value.store(42, Ordering::Relaxed);
                });
                assert_eq!(value.load(Ordering::Relaxed), 42, "call_once returned before f finished");
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "f must run exactly once");
        assert!(once.is_done());
        once.call_once(|| panic!("ran twice"));
        println!("sync_once: round {round}: {G} goroutines, f ran once: ok");
    }
}

#[ktest(smp = [1, 2, 4], also = [(4, "schedrandom=1")], output = ["sync_semaphore: 40 goroutines x 20 acquisitions of 3 units, at most"])]
fn sync_semaphore() {
    const UNITS: u32 = 3;
    const G: u32 = 40;
    let sem = leak(Semaphore::new(UNITS));
    let inside = leak(AtomicU32::new(0));
    let max = leak(AtomicU32::new(0));
    let wg = leak(WaitGroup::new());
    for g in 0..G {
        wg.add(1);
        kernel::go(move || {
            for i in 0..20 {
                sem.acquire();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                assert!(n <= UNITS, "{n} holders of a {UNITS}-unit semaphore");
                if (g + i) % 3 == 0 {
                    kernel::sleep(20_000);
                } else {
                    kernel::gosched();
                }
                inside.fetch_sub(1, Ordering::SeqCst);
                sem.release();
            }
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(sem.available(), UNITS);
    assert!(!sem.try_acquire() || {
        sem.release();
        true
    });
    let m = max.load(Ordering::SeqCst);
    println!("sync_semaphore: {G} goroutines x 20 acquisitions of {UNITS} units, at most {m} at once: ok");
    assert!(m >= 1 && m <= UNITS);
}

// ---- misuse: each of these must fail with Go's message ------------------------------------------

#[ktest(smp = [2], should_panic = "send on closed channel", output = ["goroutine 1 [running]:", "testkernel/chan.rs"])]
fn chan_send_closed() {
    let c = Chan::<u32>::new(1);
    c.close();
    c.send(1);
    unreachable!("send on a closed channel returned");
}

#[ktest(smp = [2], should_panic = "send on closed channel")]
fn chan_select_send_closed() {
    let c = Chan::<u32>::new(1);
    c.close();
    select! {
        send(c, 1) => {},
        default => {},
    }
    unreachable!("select send on a closed channel returned");
}

#[ktest(smp = [2], should_panic = "close of closed channel")]
fn chan_close_closed() {
    let c = Chan::<u32>::new(0);
    c.close();
    c.close();
    unreachable!("double close returned");
}

#[ktest(smp = [1], should_panic = "close of nil channel")]
fn chan_close_nil() {
    Chan::<u32>::nil().close();
    unreachable!("close of nil returned");
}

#[ktest(smp = [4], should_panic = "send on closed channel")]
fn chan_close_wakes_sender() {
    let c = Chan::<u32>::new(0);
    let c2 = c.clone();
    kernel::go(move || {
        c2.send(1);
        unreachable!("a blocked send returned normally after close");
    });
    kernel::sleep(MS);
    c.close();
    kernel::sleep(1_000 * MS);
    panic!("the sender blocked on the closed channel did not panic");
}

#[ktest(smp = [1, 4], fatal = "fatal error: all goroutines are asleep - deadlock!", output = ["goroutine 1 [chan receive]:", "[chan send]:", "[select]:", "[chan receive (nil chan)]:", "[sync.WaitGroup.Wait]:"])]
fn chan_deadlock() {
    // Every goroutine blocks on a channel no one will ever use.
    let a = Chan::<u32>::new(0);
    let b = Chan::<u32>::new(3);
    let (a2, b2) = (a.clone(), b.clone());
    kernel::go(move || {
        let d = Chan::<u32>::new(0);
        d.send(1);
    });
    kernel::go(move || {
        select! {
            recv(a2) -> _ => {},
            recv(b2) -> _ => {},
        }
    });
    kernel::go(move || {
        Chan::<u32>::nil().recv();
    });
    let wg = leak(WaitGroup::new());
    wg.add(1);
    kernel::go(move || wg.wait());
    kernel::sleep(MS);
    println!("chan_deadlock: main goroutine receives from a channel nobody sends on");
    a.recv();
    unreachable!("received from a channel nobody sends on");
}

#[ktest(smp = [2], fatal = "fatal error: sync: unlock of unlocked mutex")]
fn sync_unlock_unlocked() {
    let m = RawMutex::new();
    m.lock();
    m.unlock();
    m.unlock();
    unreachable!("unlock of unlocked mutex returned");
}

#[ktest(smp = [2], should_panic = "sync: negative WaitGroup counter")]
fn sync_waitgroup_negative() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    wg.done();
    unreachable!("negative WaitGroup counter accepted");
}
