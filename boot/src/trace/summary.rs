//! The text summary (like `go tool trace`'s goroutine analysis).
use super::checker::Report;
use super::format::{Kind, Trace, STOP_PREEMPT, STOP_YIELD};
use super::model::Model;
use std::collections::BTreeMap;
use std::fmt::Write;

fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1000.0)
}

pub fn render(t: &Trace, m: &Model, check: &Report) -> String {
    let mut s = String::new();
    let dur = t.duration_ns();
    let _ = writeln!(
        s,
        "trace: {} events from {} cores, {} Ps at the end, {:.3} ms, {} mode, written at {}",
        t.events.len(),
        t.ncpu,
        t.gomaxprocs,
        dur as f64 / 1e6,
        if t.flight { "flight-recorder" } else { "stream" },
        if t.fatal { "a fatal error" } else { "exit" }
    );
    let lost = t.total_lost();
    let _ = writeln!(
        s,
        "lost events: {lost}{}",
        if lost > 0 {
            let per: Vec<String> = t.lost.iter().enumerate().map(|(c, l)| format!("cpu{c}={l}")).collect();
            format!(" ({}; complete window {:.3}..{:.3} ms; raise tracebuf=)", per.join(" "), t.complete.0 as f64 / 1e6, t.complete.1 as f64 / 1e6)
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "goroutines: {} created, {} seen", t.events.iter().filter(|e| e.kind == Kind::GoCreate).count(), m.gnames.len().max(check.goroutines));
    let _ = writeln!(s);
    let _ = writeln!(s, "per-P utilisation (time running goroutines / trace length):");
    for p in 0..m.nprocs {
        let busy: u64 = m.slices.iter().filter(|x| x.p == p).map(|x| x.end - x.start).sum();
        let runs = m.slices.iter().filter(|x| x.p == p).count();
        let pre = t.events.iter().filter(|e| e.kind == Kind::GoStop && e.a == STOP_PREEMPT && e.p == p).count();
        let _ = writeln!(
            s,
            "  P{p}: {:5.1}%  {runs} runs, {pre} preempted, busy {}",
            if dur > 0 { busy as f64 * 100.0 / dur as f64 } else { 0.0 },
            us(busy)
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "steal matrix (row = thief P, column = victim P; goroutines taken):");
    let np = m.nprocs as usize;
    let mut mat = vec![vec![0u64; np]; np];
    for &(_, thief, victim, n) in &m.steals {
        if (thief as usize) < np && (victim as usize) < np {
            mat[thief as usize][victim as usize] += n;
        }
    }
    let _ = write!(s, "       ");
    for v in 0..np {
        let _ = write!(s, "{:>7}", format!("P{v}"));
    }
    let _ = writeln!(s);
    for (th, row) in mat.iter().enumerate() {
        let _ = write!(s, "  {:>4} ", format!("P{th}"));
        for n in row {
            let _ = write!(s, "{n:>7}");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "  steals: {} ({} goroutines)", m.steals.len(), m.steals.iter().map(|x| x.3).sum::<u64>());
    let _ = writeln!(s);
    let pre = t.events.iter().filter(|e| e.kind == Kind::GoStop && e.a == STOP_PREEMPT).count();
    let yields = t.events.iter().filter(|e| e.kind == Kind::GoStop && e.a == STOP_YIELD).count();
    let _ = writeln!(s, "preemptions: {pre}   yields (Gosched): {yields}");
    let mut lat: Vec<u64> = m.wakes.iter().filter_map(|w| w.started.map(|(st, _)| st - w.at)).collect();
    lat.sort_unstable();
    if lat.is_empty() {
        let _ = writeln!(s, "wake latency (unblock -> running): no wake-ups");
    } else {
        let _ = writeln!(
            s,
            "wake latency (unblock -> running): n={} p50={} p99={} max={}",
            lat.len(),
            us(pct(&lat, 0.5)),
            us(pct(&lat, 0.99)),
            us(*lat.last().unwrap())
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "time blocked per wait reason (blocks that ended in the trace):");
    let mut by: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for &(r, ns) in &m.blocked {
        let e = by.entry(t.wait_reason(r)).or_default();
        e.0 += 1;
        e.1 += ns;
    }
    if by.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for (r, (n, ns)) in &by {
        let _ = writeln!(s, "  {r:<24} {n:>7} blocks, total {}, mean {}", us(*ns), us(ns / n));
    }
    let _ = writeln!(s);
    let stw_total: u64 = m.stw.iter().map(|(a, b)| b - a).sum();
    let _ = writeln!(s, "stop-the-world: {} times, total {}", m.stw.len(), us(stw_total));
    let ipis = t.events.iter().filter(|e| e.kind == Kind::IpiSend).count();
    let parks = m.parked.len();
    let spin: u64 = m.spinning.iter().map(|i| i.end - i.start).sum();
    let _ = writeln!(s, "M parks: {parks}   IPIs sent: {ipis}   time spinning: {}", us(spin));
    let _ = writeln!(s);
    if check.ok() {
        let _ = writeln!(s, "checker: OK ({} events judged, {} goroutine starts, no invariant broken)", check.checked, check.starts);
    } else {
        let _ = writeln!(s, "checker: {} VIOLATION(S):", check.violations.len());
        for v in check.violations.iter().take(20) {
            let _ = writeln!(s, "  {v}");
        }
    }
    s
}
