//! Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open.
//!
//! - process 1 "Ps": one thread (lane) per P; a complete event (`ph: X`) per goroutine run,
//!   named `G<id> <entry>`, with how it ended in its args; a tiny `unblock G<n>` slice where a
//!   goroutine was made runnable, with a flow arrow (`ph: s` / `ph: f`) to where it starts;
//!   steals as instant events;
//! - process 2 "Ms (cores)": one lane per core with its `spinning` and `parked` intervals, IPIs
//!   and timer firings as instant events;
//! - process 3 "run queues": counters (`ph: C`) of each P's local run queue and the global
//!   queue, sampled at every goroutine start; and the STW intervals.
use super::format::{Kind, Trace, NO_P};
use super::model::{Model, SliceEnd};
use serde_json::{json, Value};

const PID_P: u32 = 1;
const PID_M: u32 = 2;
const PID_Q: u32 = 3;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn how(h: SliceEnd, t: &Trace) -> String {
    match h {
        SliceEnd::Yield => "yield (Gosched)".into(),
        SliceEnd::Preempted => "preempted".into(),
        SliceEnd::Blocked(r) => format!("blocked: {}", t.wait_reason(r)),
        SliceEnd::Exit => "exit".into(),
        SliceEnd::Syscall => "syscall".into(),
        SliceEnd::Open => "running at the end of the trace".into(),
    }
}

pub fn to_json(t: &Trace, m: &Model) -> Value {
    let mut ev: Vec<Value> = Vec::new();
    let meta = |pid: u32, tid: Option<u32>, name: &str, sort: u32| -> Vec<Value> {
        match tid {
            None => vec![
                json!({"ph":"M","name":"process_name","pid":pid,"args":{"name":name}}),
                json!({"ph":"M","name":"process_sort_index","pid":pid,"args":{"sort_index":sort}}),
            ],
            Some(tid) => vec![
                json!({"ph":"M","name":"thread_name","pid":pid,"tid":tid,"args":{"name":name}}),
                json!({"ph":"M","name":"thread_sort_index","pid":pid,"tid":tid,"args":{"sort_index":sort}}),
            ],
        }
    };
    ev.extend(meta(PID_P, None, "Ps (goroutines)", 1));
    ev.extend(meta(PID_M, None, "Ms (cores)", 2));
    ev.extend(meta(PID_Q, None, "run queues, STW", 3));
    for p in 0..m.nprocs as u32 {
        ev.extend(meta(PID_P, Some(p), &format!("P{p}"), p));
    }
    for c in 0..t.ncpu {
        ev.extend(meta(PID_M, Some(c), &format!("M{c} (cpu{c})"), c));
    }
    ev.extend(meta(PID_Q, Some(0), "STW", 0));
    for s in &m.slices {
        let name = if s.name.is_empty() { format!("G{}", s.g) } else { format!("G{} {}", s.g, s.name) };
        ev.push(json!({
            "ph":"X","pid":PID_P,"tid":s.p,"ts":us(s.start),"dur":us(s.end - s.start).max(0.001),
            "name":name,"cat":"goroutine",
            "args":{"goid":s.g,"end":how(s.how, t)}
        }));
    }
    for (i, w) in m.wakes.iter().enumerate() {
        let Some((start, p)) = w.started else { continue };
        let (pid, tid) = if w.at_p != NO_P { (PID_P, w.at_p as u32) } else { (PID_M, w.at_cpu) };
        let id = i + 1;
        ev.push(json!({"ph":"X","pid":pid,"tid":tid,"ts":us(w.at),"dur":0.001,"name":format!("unblock G{}", w.g),
            "cat":"unblock","args":{"waker":w.waker,"woken":w.g,"latency_us":us(start - w.at)}}));
        ev.push(json!({"ph":"s","pid":pid,"tid":tid,"ts":us(w.at),"id":id,"name":"wake","cat":"wake"}));
        ev.push(json!({"ph":"f","bp":"e","pid":PID_P,"tid":p,"ts":us(start),"id":id,"name":"wake","cat":"wake"}));
    }
    for &(ns, thief, victim, n) in &m.steals {
        ev.push(json!({"ph":"i","s":"t","pid":PID_P,"tid":thief,"ts":us(ns),"name":format!("steal {n} from P{victim}"),
            "cat":"steal","args":{"victim":victim,"count":n}}));
    }
    for s in &m.spinning {
        ev.push(json!({"ph":"X","pid":PID_M,"tid":s.cpu,"ts":us(s.start),"dur":us(s.end - s.start).max(0.001),"name":"spinning","cat":"m"}));
    }
    for s in &m.parked {
        ev.push(json!({"ph":"X","pid":PID_M,"tid":s.cpu,"ts":us(s.start),"dur":us(s.end - s.start).max(0.001),"name":"parked","cat":"m"}));
    }
    for e in &t.events {
        let (name, args) = match e.kind {
            Kind::IpiSend => (
                format!("IPI to cpu{}", t.cpu_of_apic(e.a).map(|c| c.to_string()).unwrap_or("?".into())),
                json!({"vector":e.b}),
            ),
            Kind::IpiRecv => ("IPI received".to_string(), json!({"vector":e.a})),
            Kind::TimerFire => (format!("{} timer(s) fired", e.a), json!({})),
            Kind::PHandoff => (format!("handoff P{}", e.a), json!({})),
            Kind::ProcsChange => (format!("GOMAXPROCS {} -> {}", e.b, e.a), json!({})),
            _ => continue,
        };
        ev.push(json!({"ph":"i","s":"t","pid":PID_M,"tid":e.cpu,"ts":us(e.ns),"name":name,"cat":"m","args":args}));
    }
    // Lost-event records: where each core's record stops (stream) or starts (flight).
    for (cpu, &n) in t.lost.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let mine = t.events.iter().filter(|e| e.cpu == cpu as u32);
        let at = if t.flight { mine.map(|e| e.ns).min() } else { mine.map(|e| e.ns).max() }.unwrap_or(0);
        ev.push(json!({"ph":"i","s":"t","pid":PID_M,"tid":cpu,"ts":us(at),"name":format!("{n} events lost"),"cat":"lost","args":{"lost":n}}));
    }
    for &(ns, p, local, global) in &m.runq {
        ev.push(json!({"ph":"C","pid":PID_Q,"ts":us(ns),"name":format!("runq P{p}"),"args":{"len":local}}));
        ev.push(json!({"ph":"C","pid":PID_Q,"ts":us(ns),"name":"global runq","args":{"len":global}}));
    }
    for &(a, b) in &m.stw {
        ev.push(json!({"ph":"X","pid":PID_Q,"tid":0,"ts":us(a),"dur":us(b - a).max(0.001),"name":"stop the world","cat":"stw"}));
    }
    json!({
        "traceEvents": ev,
        "displayTimeUnit": "ns",
        "otherData": {
            "producer": "gmpos trace",
            "cores": t.ncpu,
            "gomaxprocs": t.gomaxprocs,
            "mode": if t.flight { "flight recorder" } else { "stream" },
            "lost_events": t.total_lost(),
            "ended_by": if t.fatal { "fatal error" } else { "exit" },
        }
    })
}

/// Check that `v` has the structure the trace viewers require (the test of every export).
/// Returns a description of the first problem.
pub fn validate(v: &Value) -> Result<usize, String> {
    let evs = v.get("traceEvents").and_then(|e| e.as_array()).ok_or("no traceEvents array")?;
    let mut flows: std::collections::HashMap<u64, (bool, bool)> = Default::default();
    let mut xs: std::collections::HashMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for (i, e) in evs.iter().enumerate() {
        let ph = e.get("ph").and_then(|p| p.as_str()).ok_or(format!("event {i}: no ph"))?;
        let num = |k: &str| e.get(k).and_then(|x| x.as_f64());
        if e.get("pid").and_then(|p| p.as_u64()).is_none() {
            return Err(format!("event {i}: no integer pid"));
        }
        if ph != "M" {
            let ts = num("ts").ok_or(format!("event {i} ({ph}): no numeric ts"))?;
            if !ts.is_finite() || ts < 0.0 {
                return Err(format!("event {i}: bad ts {ts}"));
            }
            if e.get("name").and_then(|n| n.as_str()).is_none() {
                return Err(format!("event {i} ({ph}): no name"));
            }
        }
        match ph {
            "X" => {
                let dur = num("dur").ok_or(format!("event {i}: X without dur"))?;
                if dur <= 0.0 {
                    return Err(format!("event {i}: X with dur {dur}"));
                }
                let tid = e.get("tid").and_then(|t| t.as_u64()).ok_or(format!("event {i}: X without tid"))?;
                xs.entry((e["pid"].as_u64().unwrap(), tid)).or_default().push((num("ts").unwrap(), dur));
            }
            "s" | "f" => {
                let id = e.get("id").and_then(|x| x.as_u64()).ok_or(format!("event {i}: flow without id"))?;
                let f = flows.entry(id).or_default();
                if ph == "s" {
                    f.0 = true;
                } else {
                    f.1 = true;
                    if e.get("bp").and_then(|b| b.as_str()) != Some("e") {
                        return Err(format!("event {i}: flow end without bp=e"));
                    }
                }
            }
            "C" => {
                let args = e.get("args").and_then(|a| a.as_object()).ok_or(format!("event {i}: counter without args"))?;
                if args.values().any(|v| v.as_f64().is_none()) {
                    return Err(format!("event {i}: counter with a non-numeric value"));
                }
            }
            "i" | "M" => {}
            other => return Err(format!("event {i}: unexpected ph {other}")),
        }
    }
    if let Some((id, _)) = flows.iter().find(|(_, (s, f))| !(*s && *f)) {
        return Err(format!("flow {id} has no matching start or end"));
    }
    // Complete events on one lane must nest (the viewers drop or misdraw partial overlaps).
    for ((pid, tid), mut v) in xs {
        v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(b.1.partial_cmp(&a.1).unwrap()));
        let mut stack: Vec<f64> = Vec::new();
        for (ts, dur) in v {
            while stack.last().is_some_and(|&end| end <= ts + 1e-9) {
                stack.pop();
            }
            if let Some(&end) = stack.last() {
                if ts + dur > end + 1e-6 {
                    return Err(format!("pid {pid} tid {tid}: slice at {ts} us overlaps its enclosing slice ending at {end} us"));
                }
            }
            stack.push(ts + dur);
        }
    }
    Ok(evs.len())
}
