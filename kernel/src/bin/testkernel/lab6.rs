//! Lab 6's QEMU tests (`labs/lab6/`): Go's channel semantics table, the fairness of `select`
//! (a chi-square test), and the concurrent prime sieve.
//!
//! Graded by `./run-qemu.sh grade lab6`, which boots each test with a fresh random `seed=`
//! (the nonce) and recomputes its last line on the host (`boot/src/lab/spec/lab6.rs` has the
//! host's copy of the formulas: keep the two equal). The inputs come from the nonce (the
//! values sent, the buffer sizes, how many receivers, how many cases, how many primes), and
//! the line carries a sum of everything received, so only a kernel whose channels really
//! moved every value prints it. The grader also checks that this file is unchanged.
//!
//! The rows of the table that panic end the boot, so each is a ktest of its own
//! (`should_panic`); they run with the other ktests (`cargo run -- test lab6::`), not in the
//! grade.
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::ktest::ktest;
use kernel::sync::select::{selectgo, RecvSlot, Scase};
use kernel::{println, select, Chan, TryRecvError};
use gmp_core::rand::mix64;

const MS: u64 = 1_000_000;

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn seed() -> u64 {
    kernel::boot::params().seed.unwrap_or(1)
}

/// Waits (sleeping) until `done()`, at most 5 s; fails the row if it never happens.
fn eventually(row: &str, what: &str, done: impl Fn() -> bool) {
    for _ in 0..5000 {
        if done() {
            return;
        }
        kernel::sleep(MS);
    }
    panic!("lab6: {row}: {what} did not happen within 5 s");
}

/// Gives a goroutine 20 ms to get past an operation that must block, and checks it did not.
fn stays_blocked(row: &str, what: &str, returned: &AtomicBool) {
    kernel::sleep(20 * MS);
    assert!(!returned.load(Ordering::SeqCst), "lab6: {row}: {what} returned; it must block");
}

// ---- the semantics table ---------------------------------------------------------------------

/// The values of the semantics table: the k-th value sent that must be received.
fn table_value(seed: u64, k: u64) -> u64 {
    mix64(seed ^ k.wrapping_mul(0xa076_1d64_78bd_642f))
}

/// The buffered channels' capacity (1..=8) and how many receivers close must wake (2..=6).
pub fn table_params(seed: u64) -> (usize, usize) {
    (1 + (mix64(seed) % 8) as usize, 2 + (mix64(seed ^ 1) % 5) as usize)
}

/// The rows' shared state: the next value to send, the sum of the values received.
struct Table {
    seed: u64,
    sent: u64,
    got: u64,
    sum: u64,
    rows: u32,
}

impl Table {
    fn next(&mut self) -> u64 {
        let v = table_value(self.seed, self.sent);
        self.sent += 1;
        v
    }
    /// Received `v`, which had to be `want`.
    fn got(&mut self, row: &str, v: Option<u64>, want: u64) {
        assert_eq!(v, Some(want), "lab6: {row}: received the wrong value (None: closed)");
        self.got += 1;
        self.sum = self.sum.wrapping_add(want);
    }
    fn row(&mut self, name: &str) {
        self.rows += 1;
        println!("lab6: row {:2}: {name}: ok", self.rows);
    }
}

/// A goroutine doing `op`, and a flag it sets once `op` returned, with what it returned.
fn spawn_op(op: impl FnOnce() -> Option<u64> + Send + 'static) -> (&'static AtomicBool, &'static AtomicU64) {
    let done = leak(AtomicBool::new(false));
    let out = leak(AtomicU64::new(u64::MAX));
    kernel::go(move || {
        let v = op();
        // The flag is set after the value (SeqCst both): the reader loads the flag first.
        out.store(v.map_or(u64::MAX, |v| v), Ordering::SeqCst);
        done.store(true, Ordering::SeqCst);
    });
    (done, out)
}

/// Go's channel semantics table, one row per check (`make(chan T)` is unbuffered, `make(chan
/// T, C)` buffered, `var c chan T` nil):
///
/// | operation   | nil          | open, unbuffered       | open, buffered           | closed                    |
/// | ----------- | ------------ | ---------------------- | ------------------------ | ------------------------- |
/// | `c <- v`    | blocks       | blocks until a receive | proceeds until full      | panics (own ktests)       |
/// | `<-c`       | blocks       | blocks until a send    | proceeds until empty     | buffered values, then (zero, false) |
/// | `close(c)`  | panics       | wakes all receivers    | wakes all receivers      | panics (own ktests)       |
///
/// plus the hand-offs that are the heart of `chansend` and `chanrecv`: a send to a waiting
/// receiver goes straight to it (not through the buffer), and a receive from a full buffer
/// with a waiting sender keeps FIFO order.
#[ktest(smp = [1, 2, 4], also = [(3, "schedrandom=1")], timeout = 120, output = ["/^lab6: semantics table 12 rows, cap [1-8], [2-6] receivers woken by close, checksum [0-9a-f]{16} nonce [0-9]+ ok$/"])]
fn semantics_table() {
    let seed = seed();
    let (cap, nrecv) = table_params(seed);
    let mut t = Table { seed, sent: 0, got: 0, sum: 0, rows: 0 };

    // 1. nil: send blocks (and a non-blocking send fails).
    let row = "nil chan: send blocks forever";
    let nil = Chan::<u64>::nil();
    assert_eq!(nil.try_send(7), Err(7), "lab6: {row}: try_send on nil");
    let n2 = nil.clone();
    let (done, _) = spawn_op(move || {
        n2.send(7);
        None
    });
    stays_blocked(row, "send on a nil channel", done);
    t.row(row);

    // 2. nil: receive blocks; len and cap are 0.
    let row = "nil chan: receive blocks forever, len 0, cap 0";
    assert_eq!(nil.try_recv(), Err(TryRecvError::Empty), "lab6: {row}: try_recv on nil");
    assert_eq!((nil.len(), nil.cap()), (0, 0), "lab6: {row}");
    let n2 = nil.clone();
    let (done, _) = spawn_op(move || n2.recv());
    stays_blocked(row, "receive on a nil channel", done);
    t.row(row);

    // 3. unbuffered: a send blocks until a receiver takes the value.
    let row = "unbuffered: send blocks until a receive";
    let c = Chan::<u64>::new(0);
    let v = t.next();
    let c2 = c.clone();
    let (done, _) = spawn_op(move || {
        c2.send(v);
        None
    });
    stays_blocked(row, "send without a receiver", done);
    let got = c.recv();
    t.got(row, got, v);
    eventually(row, "the blocked sender's return after the receive", || done.load(Ordering::SeqCst));
    t.row(row);

    // 4. unbuffered: a receive blocks until a sender comes; a non-blocking one fails.
    let row = "unbuffered: receive blocks until a send";
    assert_eq!(c.try_recv(), Err(TryRecvError::Empty), "lab6: {row}: try_recv with no sender");
    let c2 = c.clone();
    let (done, out) = spawn_op(move || c2.recv());
    stays_blocked(row, "receive without a sender", done);
    let v = t.next();
    c.send(v);
    eventually(row, "the blocked receiver's return after the send", || done.load(Ordering::SeqCst));
    t.got(row, Some(out.load(Ordering::SeqCst)), v);
    t.row(row);

    // 5. unbuffered: a non-blocking send succeeds exactly when a receiver waits: the value
    // is handed to it directly (there is nowhere else it could go).
    let row = "unbuffered: send to a waiting receiver hands the value over";
    assert!(c.try_send(1).is_err(), "lab6: {row}: try_send with no receiver succeeded");
    let c2 = c.clone();
    let (done, out) = spawn_op(move || c2.recv());
    let v = t.next();
    eventually(row, "a non-blocking send to the waiting receiver", || c.try_send(v).is_ok());
    eventually(row, "the receiver's return", || done.load(Ordering::SeqCst));
    t.got(row, Some(out.load(Ordering::SeqCst)), v);
    t.row(row);

    // 6. buffered: sends proceed until the buffer is full, then block; the blocked sender's
    // value joins the tail when a receive frees a slot (FIFO across the hand-off).
    let row = "buffered: send proceeds until full, then blocks; FIFO";
    let b = Chan::<u64>::new(cap);
    let mut want = Vec::new();
    for i in 0..cap {
        let v = t.next();
        assert!(b.try_send(v).is_ok(), "lab6: {row}: send {} of {cap} did not proceed", i + 1);
        want.push(v);
    }
    assert_eq!(b.len(), cap, "lab6: {row}: len after {cap} sends");
    assert!(b.try_send(0).is_err(), "lab6: {row}: a send to a full buffer proceeded");
    let v = t.next();
    want.push(v);
    let b2 = b.clone();
    let (done, _) = spawn_op(move || {
        b2.send(v);
        None
    });
    stays_blocked(row, "send to a full buffer", done);
    for (i, &w) in want.iter().enumerate() {
        let got = b.recv();
        t.got(row, got, w);
        if i == 0 {
            eventually(row, "the blocked sender's return after a receive", || done.load(Ordering::SeqCst));
            assert_eq!(b.len(), cap, "lab6: {row}: the blocked sender's value is not in the buffer");
        }
    }
    assert_eq!(b.len(), 0, "lab6: {row}: len after draining");
    t.row(row);

    // 7. buffered: a receive proceeds while values are buffered, then blocks.
    let row = "buffered: receive blocks when empty, until a send";
    assert_eq!(b.try_recv(), Err(TryRecvError::Empty), "lab6: {row}: try_recv on an empty buffer");
    let b2 = b.clone();
    let (done, out) = spawn_op(move || b2.recv());
    stays_blocked(row, "receive from an empty buffer", done);
    let v = t.next();
    b.send(v);
    eventually(row, "the blocked receiver's return after the send", || done.load(Ordering::SeqCst));
    t.got(row, Some(out.load(Ordering::SeqCst)), v);
    t.row(row);

    // 8. buffered: a send to a waiting receiver goes straight to it, not into the buffer
    // (which a waiting receiver would never look at again).
    let row = "buffered: send to a waiting receiver hands it over, buffer untouched";
    let b2 = b.clone();
    let (done, out) = spawn_op(move || b2.recv());
    kernel::sleep(20 * MS);
    let v = t.next();
    b.send(v);
    eventually(row, "the waiting receiver's return", || done.load(Ordering::SeqCst));
    t.got(row, Some(out.load(Ordering::SeqCst)), v);
    assert_eq!(b.len(), 0, "lab6: {row}: the value stayed in the buffer");
    t.row(row);

    // 9. closed, buffered: the buffered values are still received, then the zero value and
    // ok = false, as often as asked; a non-blocking receive says Closed.
    let row = "closed buffered: values drain, then (zero, false) forever";
    let mut want = Vec::new();
    for _ in 0..cap {
        let v = t.next();
        b.send(v);
        want.push(v);
    }
    b.close();
    assert_eq!(b.len(), cap, "lab6: {row}: close dropped buffered values");
    for &w in &want {
        let (got, ok) = b.recv2();
        assert!(ok, "lab6: {row}: ok = false with values still buffered");
        t.got(row, Some(got), w);
    }
    for _ in 0..3 {
        assert_eq!(b.recv2(), (0, false), "lab6: {row}: receive on closed and drained");
    }
    assert_eq!(b.try_recv(), Err(TryRecvError::Closed), "lab6: {row}: try_recv on closed and drained");
    t.row(row);

    // 10. closed, unbuffered: a receive returns (zero, false) at once.
    let row = "closed unbuffered: receive returns (zero, false) at once";
    let u = Chan::<u64>::new(0);
    u.close();
    assert_eq!(u.recv2(), (0, false), "lab6: {row}");
    assert_eq!(u.try_recv(), Err(TryRecvError::Closed), "lab6: {row}: try_recv");
    assert_eq!(u.recv(), None, "lab6: {row}: recv");
    t.row(row);

    // 11. close wakes *every* blocked receiver, unbuffered and buffered, with (zero, false).
    let row = "close wakes every blocked receiver with (zero, false)";
    for c in [Chan::<u64>::new(0), Chan::<u64>::new(cap)] {
        let waiters: Vec<_> = (0..nrecv)
            .map(|_| {
                let c2 = c.clone();
                spawn_op(move || match c2.recv2() {
                    (0, false) => Some(0),
                    (v, ok) => panic!("lab6: close woke a receiver with ({v}, {ok})"),
                })
            })
            .collect();
        kernel::sleep(20 * MS);
        assert!(waiters.iter().all(|w| !w.0.load(Ordering::SeqCst)), "lab6: {row}: a receiver returned before close");
        c.close();
        eventually(row, "the wake-up of every receiver by close", || waiters.iter().all(|w| w.0.load(Ordering::SeqCst)));
        assert!(waiters.iter().all(|w| w.1.load(Ordering::SeqCst) == 0), "lab6: {row}");
    }
    t.row(row);

    // 12. select: a nil case is never chosen; a closed channel's case is ready.
    let row = "select: a nil case never fires, a closed one always does";
    let closed = Chan::<u64>::new(0);
    closed.close();
    for _ in 0..50 {
        let r = select! {
            recv(nil) -> _ => "nil",
            recv(closed) -> v => if v.is_none() { "closed" } else { "closed with a value" },
        };
        assert_eq!(r, "closed", "lab6: {row}");
    }
    let r = select! {
        recv(nil) -> _ => "nil",
        default => "default",
    };
    assert_eq!(r, "default", "lab6: {row}: a select over a nil channel with a default");
    t.row(row);

    assert_eq!((t.got, t.sent), (table_count(cap), table_count(cap)), "lab6: values received / sent");
    println!(
        "lab6: semantics table {} rows, cap {cap}, {nrecv} receivers woken by close, checksum {:016x} nonce {seed} ok",
        t.rows, t.sum
    );
}

/// How many values the table sends and receives: 1 each in rows 3, 4, 5, 7 and 8, cap + 1 in
/// row 6, cap in row 9.
pub fn table_count(cap: usize) -> u64 {
    6 + 2 * cap as u64
}

// The rows that panic: one boot each.

#[ktest(smp = [2], should_panic = "send on closed channel")]
fn closed_send_panics() {
    let c = Chan::<u64>::new(table_params(seed()).0);
    c.close();
    let _ = c.try_send(1);
    unreachable!("lab6: a send on a closed channel returned");
}

#[ktest(smp = [2], should_panic = "send on closed channel")]
fn closed_send_unbuffered_panics() {
    let c = Chan::<u64>::new(0);
    c.close();
    c.send(1);
    unreachable!("lab6: a send on a closed channel returned");
}

#[ktest(smp = [2], should_panic = "close of closed channel")]
fn close_closed_panics() {
    let c = Chan::<u64>::new(0);
    c.close();
    c.close();
    unreachable!("lab6: a second close returned");
}

#[ktest(smp = [1], should_panic = "close of nil channel")]
fn close_nil_panics() {
    Chan::<u64>::nil().close();
    unreachable!("lab6: close of a nil channel returned");
}

/// A sender blocked on a full buffer when the channel is closed panics (Go: the woken
/// sender finds `success` false).
#[ktest(smp = [2, 4], should_panic = "send on closed channel")]
fn close_wakes_blocked_sender_panics() {
    let c = Chan::<u64>::new(1);
    c.send(0);
    let c2 = c.clone();
    kernel::go(move || {
        c2.send(1);
        unreachable!("lab6: a blocked send returned normally after close");
    });
    kernel::sleep(20 * MS);
    c.close();
    kernel::sleep(2_000 * MS);
    panic!("lab6: the sender blocked on the closed channel did not panic");
}

// ---- select fairness -----------------------------------------------------------------------

/// Chi-square critical values at p = 10^-6 for 1..=7 degrees of freedom: a fair select
/// exceeds it once in a million boots. (p = 0.001 would fail a correct kernel in one grading
/// out of about 170: the grader boots this test six times, each with a fresh nonce, and the
/// nonce seeds the kernel's random generators. A select that favours one case is still far
/// above these: one that always polls the first case scores n (k - 1), in the thousands.)
const CHI2_P1E6: [f64; 8] = [0.0, 23.928, 27.631, 30.665, 33.377, 35.888, 38.258, 40.522];

/// The fairness test's parameters: k ready channels (3..=8), n selects (1000 k), and where
/// the nil case goes (0..=k).
pub fn fairness_params(seed: u64) -> (usize, usize, usize) {
    let k = 3 + (mix64(seed ^ 2) % 6) as usize;
    (k, 1000 * k, (mix64(seed ^ 3) % (k as u64 + 1)) as usize)
}

/// The j-th value in channel i of the fairness test.
pub fn fairness_value(seed: u64, i: usize, j: usize) -> u64 {
    mix64(seed ^ ((i as u64) << 40) ^ j as u64)
}

/// `select` over k channels that are all ready (each holds n values), n times: each case must
/// win about n/k times. Chi-square test against the uniform distribution, k - 1 degrees of
/// freedom, p = 10^-6. A nil case among them must never win. Every value is then drained, and
/// each channel's values must come out in FIFO order.
#[ktest(smp = [1, 2, 4], also = [(3, "schedrandom=1")], timeout = 120, output = ["/^lab6: select fairness over [3-8] channels, [0-9]+ selects, chi2 below [0-9.]+ \\(p = 1e-6\\), sum [0-9a-f]{16} nonce [0-9]+ ok$/"])]
fn select_fairness() {
    let seed = seed();
    let (k, n, nilpos) = fairness_params(seed);
    let chans: Vec<Chan<u64>> = (0..k).map(|_| Chan::new(n)).collect();
    for (i, c) in chans.iter().enumerate() {
        for j in 0..n {
            c.send(fairness_value(seed, i, j));
        }
    }
    // The cases: the k channels, and a nil one at position nilpos.
    let nil = Chan::<u64>::nil();
    let mut cases_chans: Vec<&Chan<u64>> = chans.iter().collect();
    cases_chans.insert(nilpos, &nil);
    let mut counts = alloc::vec![0u64; k];
    let mut sum = 0u64;
    for _ in 0..n {
        let mut slots: Vec<RecvSlot<u64>> = cases_chans.iter().map(|c| RecvSlot::new_for(*c)).collect();
        let mut cases: Vec<Scase> = cases_chans.iter().zip(slots.iter_mut()).map(|(c, s)| Scase::recv(*c, s)).collect();
        let (chosen, ok) = selectgo(&mut cases, true);
        drop(cases);
        let casi = chosen.expect("lab6: a blocking select returned default");
        assert!(ok, "lab6: select received from a closed channel");
        assert_ne!(casi, nilpos, "lab6: select chose the nil channel's case");
        let i = if casi > nilpos { casi - 1 } else { casi };
        let v = slots[casi].take().expect("lab6: the chosen case has no value");
        assert_eq!(v, fairness_value(seed, i, counts[i] as usize), "lab6: channel {i}: not its next value (FIFO)");
        counts[i] += 1;
        sum = sum.wrapping_add(v);
    }
    // Drain the rest: every value comes out once, in order.
    for (i, c) in chans.iter().enumerate() {
        for j in counts[i] as usize..n {
            let v = c.try_recv().unwrap_or_else(|e| panic!("lab6: channel {i}: value {j} missing ({e:?})"));
            assert_eq!(v, fairness_value(seed, i, j), "lab6: channel {i}: value {j} (FIFO)");
            sum = sum.wrapping_add(v);
        }
        assert_eq!(c.try_recv(), Err(TryRecvError::Empty), "lab6: channel {i}: a value too many");
    }
    let e = n as f64 / k as f64;
    let chi2: f64 = counts.iter().map(|&c| (c as f64 - e) * (c as f64 - e) / e).sum();
    let crit = CHI2_P1E6[k - 1];
    let shown: String = counts.iter().map(|c| format!(" {c}")).collect();
    println!("lab6: select fairness: picks per channel:{shown} (expected {e:.0} each), chi2 {chi2:.2}");
    assert!(chi2 < crit, "lab6: unfair select: chi2 {chi2:.2} >= {crit} ({} degrees of freedom, p = 1e-6)", k - 1);
    println!("lab6: select fairness over {k} channels, {n} selects, chi2 below {crit} (p = 1e-6), sum {sum:016x} nonce {seed} ok");
}

// ---- the prime sieve -----------------------------------------------------------------------

/// The sieve's parameters: how many primes (100..=199) and the capacity of its channels (0..=3).
pub fn sieve_params(seed: u64) -> (usize, usize) {
    (100 + (mix64(seed ^ 4) % 100) as usize, (mix64(seed ^ 5) % 4) as usize)
}

/// Go's concurrent prime sieve (the `doc/play/sieve.go` of the Go tour): a generator sends
/// 2, 3, 4, ... down a channel; each prime read from the chain's end starts a filter
/// goroutine that passes on what its prime does not divide, on a new channel that becomes the
/// chain's end. N goroutines and channels for N primes, every number a chain of hand-offs.
#[ktest(smp = [1, 2, 4], also = [(3, "schedrandom=1")], timeout = 120, output = ["/^lab6: sieve [0-9]+ primes over channels of capacity [0-3], last [0-9]+, sum [0-9]+ nonce [0-9]+ ok$/"])]
fn prime_sieve() {
    let seed = seed();
    let (n, cap) = sieve_params(seed);
    let mut ch = Chan::<u64>::new(cap);
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
        let prime = ch.recv().expect("lab6: the sieve's channel was closed");
        primes.push(prime);
        let ch1 = Chan::<u64>::new(cap);
        let (input, out) = (ch.clone(), ch1.clone());
        kernel::go(move || loop {
            let i = input.recv().expect("lab6: a filter's input was closed");
            if i % prime != 0 {
                out.send(i);
            }
        });
        ch = ch1;
    }
    let mut want = Vec::with_capacity(n);
    let mut k = 2u64;
    while want.len() < n {
        if (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0) {
            want.push(k);
        }
        k += 1;
    }
    assert_eq!(primes, want, "lab6: the sieve gave wrong primes");
    let sum: u64 = primes.iter().sum();
    println!("lab6: sieve {n} primes over channels of capacity {cap}, last {}, sum {sum} nonce {seed} ok", primes[n - 1]);
}
