//! Host tests of the decoder, the checker and the exporters on hand-made traces.
use super::format::{self, Event, Kind, Trace};
use super::*;
use std::collections::HashMap;

/// A builder of synthetic traces: TSC = ns (tsc_per_ms = 1e6).
struct B {
    evs: Vec<Event>,
    ncpu: u32,
}
impl B {
    fn new(ncpu: u32) -> B {
        B { evs: Vec::new(), ncpu }
    }
    fn ev(&mut self, ns: u64, cpu: u32, p: u16, kind: Kind, g: u64, a: u32, b: u64) -> &mut Self {
        self.evs.push(Event { ns, tsc: 1000 + ns, kind, cpu, p, g, a, b, seq: 0 });
        self
    }
    fn trace(&self) -> Trace {
        let mut names = HashMap::new();
        names.insert(7, "testkernel::sched::worker::{{closure}}".to_string());
        let mut events = self.evs.clone();
        events.sort_by_key(|e| e.ns); // stable: same-time events keep their order
        Trace {
            ncpu: self.ncpu,
            tsc_per_ms: 1_000_000,
            flight: false,
            cap: 1024,
            fatal: false,
            gomaxprocs: self.ncpu,
            events,
            lost: vec![0; self.ncpu as usize],
            apic_ids: (0..self.ncpu).collect(),
            wait_reasons: vec!["".into(), "chan receive".into(), "chan send".into()],
            names,
            complete: (0, u64::MAX),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        format::encode(&self.trace())
    }
}

/// Two Ps: G1 creates G2 and G3; G3 is stolen by P1; G2 blocks on a channel receive and G3
/// wakes it; G2 starts on P0 again; everyone exits.
fn good() -> B {
    let mut b = B::new(2);
    b.ev(0, 0, 0, Kind::ProcStart, 0, 0, 0)
        .ev(1, 0, 0, Kind::GoCreate, 0, 1, 7)
        .ev(2, 0, 0, Kind::GoStart, 1, 0, 7)
        .ev(10, 0, 0, Kind::GoCreate, 1, 2, 7)
        .ev(11, 0, 0, Kind::GoCreate, 1, 3, 7)
        .ev(12, 0, 0, Kind::IpiSend, 1, 1, 0xf0)
        .ev(13, 1, 0xffff, Kind::MWake, 0, 1, 0)
        .ev(14, 1, 1, Kind::RunqSteal, 0, 0, 1)
        .ev(15, 1, 1, Kind::MSpinStop, 0, 0, 0)
        .ev(16, 1, 1, Kind::GoStart, 3, 0, 7)
        .ev(20, 0, 0, Kind::GoBlock, 1, 1, 0)
        .ev(21, 0, 0, Kind::GoStart, 2, 0, 7)
        .ev(30, 0, 0, Kind::GoBlock, 2, 1, 0)
        .ev(40, 1, 1, Kind::GoUnblock, 3, 2, 0)
        .ev(41, 1, 1, Kind::GoExit, 3, 0, 0)
        .ev(45, 0, 0, Kind::MPark, 0, 0, 0)
        .ev(50, 1, 1, Kind::GoStart, 2, 0x0001_0002, 7)
        .ev(60, 1, 1, Kind::GoUnblock, 2, 1, 0)
        .ev(61, 1, 1, Kind::GoStop, 2, 1, 0)
        .ev(62, 1, 1, Kind::GoStart, 1, 0, 7)
        .ev(70, 1, 1, Kind::GoExit, 1, 0, 0);
    b
}

#[test]
fn decode_round_trip() {
    let b = good();
    let t = format::decode(&b.bytes()).unwrap();
    assert_eq!(t.ncpu, 2);
    assert_eq!(t.events.len(), b.evs.len());
    assert_eq!(t.events[0].kind, Kind::ProcStart);
    assert_eq!(t.events.last().unwrap().ns, 70);
    assert_eq!(t.wait_reason(1), "chan receive");
    assert_eq!(t.name(7), Some("testkernel::sched::worker::{{closure}}"));
    // Leading garbage (e.g. a profile section before it) is skipped.
    let mut with_junk = b"junk".to_vec();
    with_junk.extend(b.bytes());
    assert_eq!(format::decode(&with_junk).unwrap().events.len(), b.evs.len());
}

#[test]
fn bad_files_are_clear_errors() {
    let e = format::decode(b"hello").unwrap_err().to_string();
    assert!(e.contains("no trace in this file"), "{e}");
    let bytes = good().bytes();
    for cut in [10, 60, 100, bytes.len() - 3] {
        let e = format::decode(&bytes[..cut]).unwrap_err().to_string();
        assert!(e.contains("truncated") || e.contains("end marker"), "cut {cut}: {e}");
    }
    let mut bad = bytes.clone();
    bad[48 + 24 + 4] = 99; // the kind byte of core 0's first record
    let e = format::decode(&bad).unwrap_err().to_string();
    assert!(e.contains("unknown event kind 99"), "{e}");
}

#[test]
fn checker_accepts_a_good_trace() {
    let r = checker::check(&good().trace());
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.starts, 5);
    assert_eq!(r.goroutines, 3);
}

#[test]
fn checker_finds_a_goroutine_on_two_ps() {
    let mut b = good();
    b.ev(17, 0, 0, Kind::GoStart, 3, 0, 7); // G3 already runs on P1; P0 runs G1
    let r = checker::check(&b.trace());
    assert!(r.violations.iter().any(|v| v.msg.contains("goroutine 3 started on P0 while running on P1")), "{:?}", r.violations);
    assert!(r.violations.iter().any(|v| v.msg.contains("P0 starts goroutine 3 while goroutine 1 still runs")), "{:?}", r.violations);
}

#[test]
fn checker_finds_a_start_without_unblock() {
    let mut b = good();
    b.evs.retain(|e| !(e.kind == Kind::GoUnblock && e.a == 2));
    let r = checker::check(&b.trace());
    assert!(
        r.violations.iter().any(|v| v.msg.contains("goroutine 2 started on P1 but it is waiting")),
        "{:?}",
        r.violations
    );
}

#[test]
fn checker_finds_a_p_running_two_goroutines() {
    let mut b = good();
    b.evs.retain(|e| !(e.kind == Kind::GoBlock && e.g == 1)); // G1 never leaves P0
    let r = checker::check(&b.trace());
    assert!(r.violations.iter().any(|v| v.msg.contains("P0 starts goroutine 2 while goroutine 1 still runs")), "{:?}", r.violations);
}

#[test]
fn checker_judges_only_the_complete_window() {
    let mut t = good().trace();
    // A bogus start after the window closed (a core that ran out of buffer earlier) is not judged.
    t.events.push(Event { ns: 80, tsc: 1080, kind: Kind::GoStart, cpu: 0, p: 0, g: 3, a: 0, b: 0, seq: 0 });
    t.complete = (0, 75);
    assert!(checker::check(&t).ok());
    t.complete = (0, 90);
    assert!(!checker::check(&t).ok());
}

#[test]
fn flight_traces_start_lenient() {
    let mut b = B::new(1);
    // The window begins with G9 running, then stopping: no create in sight.
    b.ev(5, 0, 0, Kind::GoStop, 9, 1, 0).ev(6, 0, 0, Kind::GoStart, 9, 0, 0);
    let mut t = b.trace();
    assert!(!checker::check(&t).ok());
    t.flight = true;
    assert!(checker::check(&t).ok());
}

/// The flight recorder's ring on one core wrapped: its oldest surviving event is a stop of a
/// goroutine whose start was overwritten, while another core's complete record last saw that
/// goroutine stop. The window must start at the wrapped core's first event (as
/// `bringup::panic` with `trace=flight` showed, now and then: "GoStop ... but it is runnable").
#[test]
fn flight_window_starts_after_a_wrapped_ring() {
    let mut b = B::new(2);
    b.ev(0, 0, 0, Kind::ProcStart, 0, 0, 0)
        .ev(1, 0, 0, Kind::GoCreate, 0, 1, 7)
        .ev(2, 0, 0, Kind::GoStart, 1, 0, 7)
        .ev(3, 0, 0, Kind::GoStop, 1, 1, 0)
        .ev(4, 0, 0, Kind::GoStart, 2, 0, 7);
    // Core 1: events 0..5800 were overwritten; the oldest left is G1's stop.
    b.ev(50, 1, 1, Kind::GoStop, 1, 0, 0).ev(51, 1, 1, Kind::GoStart, 1, 0, 7).ev(52, 1, 1, Kind::GoStop, 1, 0, 0);
    for (i, e) in b.evs.iter_mut().filter(|e| e.cpu == 1).enumerate() {
        e.seq = 5800 + i as u32;
    }
    let mut t = b.trace();
    t.flight = true;
    t.fatal = true;
    let d = format::decode(&format::encode(&t)).unwrap();
    assert_eq!(d.complete.0, 50, "the window starts at the wrapped core's oldest event");
    let r = checker::check(&d);
    assert!(r.ok(), "{:?}", r.violations);
    // The same records from a ring that did not wrap are judged from the start, and the
    // stop of a goroutine that is not running is a violation.
    for e in t.events.iter_mut() {
        e.seq = 0;
    }
    let d = format::decode(&format::encode(&t)).unwrap();
    assert_eq!(d.complete.0, 0);
    assert!(!checker::check(&d).ok());
}

#[test]
fn model_and_summary_figures() {
    let t = good().trace();
    let m = model::build(&t);
    // Slices: G1 [2,20) and [62,70) ; G3 [16,41) ; G2 [21,30) and [50,61).
    assert_eq!(m.slices.len(), 5);
    let p1: Vec<_> = m.slices.iter().filter(|s| s.p == 1).map(|s| (s.g, s.start, s.end)).collect();
    assert_eq!(p1, vec![(3, 16, 41), (2, 50, 61), (1, 62, 70)]);
    assert_eq!(m.gnames.get(&2).map(|s| s.as_str()), Some("sched::worker::{closure}"));
    // Wake latencies: G2 40 -> 50 and G1 60 -> 62.
    let lat: Vec<u64> = m.wakes.iter().map(|w| w.started.unwrap().0 - w.at).collect();
    assert_eq!(lat, vec![10, 2]);
    // Blocked: G2 30 -> 40 and G1 20 -> 60, both chan receive.
    assert_eq!(m.blocked.iter().map(|b| b.1).sum::<u64>(), 50);
    let s = summary::render(&t, &m, &checker::check(&t));
    assert!(s.contains("wake latency (unblock -> running): n=2 p50="), "{s}");
    assert!(s.contains("chan receive"), "{s}");
    assert!(s.contains("preemptions: 1"), "{s}");
    assert!(s.contains("checker: OK"), "{s}");
    // The steal matrix: P1 stole 1 from P0.
    let row = s.lines().find(|l| l.trim_start().starts_with("P1 ") && !l.contains('%')).unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), vec!["P1", "1", "0"], "{s}");
    // M1 woke at 13 to spin (no park before it in the trace); M0 parked from 45 to the end.
    assert!(m.spinning.iter().any(|i| i.cpu == 1 && i.start == 13 && i.end == 15));
    assert!(m.parked.iter().any(|i| i.cpu == 0 && i.start == 45 && i.end == 70));
}

#[test]
fn perfetto_json_is_well_formed() {
    let t = good().trace();
    let m = model::build(&t);
    let v = perfetto::to_json(&t, &m);
    let n = perfetto::validate(&v).unwrap();
    assert!(n > 20);
    // Round trip through text, as the viewers read it.
    let text = serde_json::to_string(&v).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    perfetto::validate(&back).unwrap();
    let evs = back["traceEvents"].as_array().unwrap();
    // One named lane per P and per core.
    let lanes: Vec<&str> =
        evs.iter().filter(|e| e["ph"] == "M" && e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    for l in ["P0", "P1", "M0 (cpu0)", "M1 (cpu1)"] {
        assert!(lanes.contains(&l), "{lanes:?}");
    }
    // Goroutine slices are named after the goroutine; flows join unblock and start.
    assert!(evs.iter().any(|e| e["ph"] == "X" && e["name"] == "G2 sched::worker::{closure}" && e["tid"] == 1));
    assert_eq!(evs.iter().filter(|e| e["ph"] == "s").count(), 2);
    assert_eq!(evs.iter().filter(|e| e["ph"] == "f").count(), 2);
    assert!(evs.iter().any(|e| e["ph"] == "C" && e["name"] == "runq P1" && e["args"]["len"] == 2));
    assert!(evs.iter().any(|e| e["ph"] == "C" && e["name"] == "global runq" && e["args"]["len"] == 1));
}

#[test]
fn perfetto_validator_rejects_broken_json() {
    let bad = serde_json::json!({"traceEvents":[{"ph":"X","pid":1,"tid":0,"ts":1.0,"name":"a"}]});
    assert!(perfetto::validate(&bad).unwrap_err().contains("without dur"));
    let overlap = serde_json::json!({"traceEvents":[
        {"ph":"X","pid":1,"tid":0,"ts":1.0,"dur":5.0,"name":"a"},
        {"ph":"X","pid":1,"tid":0,"ts":3.0,"dur":5.0,"name":"b"}]});
    assert!(perfetto::validate(&overlap).unwrap_err().contains("overlaps"));
    let flow = serde_json::json!({"traceEvents":[{"ph":"s","pid":1,"tid":0,"ts":1.0,"id":4,"name":"w"}]});
    assert!(perfetto::validate(&flow).unwrap_err().contains("flow 4"));
}

#[test]
fn svg_has_lanes_marks_and_axis() {
    let t = good().trace();
    let m = model::build(&t);
    let s = svg::render(&t, &m, "test");
    assert!(s.starts_with("<svg"));
    assert!(s.trim_end().ends_with("</svg>"));
    assert!(s.contains(">P0</text>") && s.contains(">P1</text>") && s.contains(">M1</text>"));
    assert!(s.contains("fill=\"red\""), "preemption mark");
    assert!(s.contains("fill=\"green\""), "steal mark");
    assert!(s.contains("time (us)"));
    assert_eq!(s.matches("<title>G").count(), 5);
}

#[test]
fn runner_flags() {
    let c = match crate::parse_args(["--trace", "/tmp/t.bin"]).unwrap() {
        crate::Cli::Run(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(c.params, vec![("trace".to_string(), "1".to_string())]);
    assert!(c.extra_qemu_args.join(" ").contains("-chardev file,id=gmpdbg,path=/tmp/t.bin -device isa-debugcon,iobase=0xe9,chardev=gmpdbg"));
    let c = match crate::parse_args(["--trace=/tmp/t.bin", "trace=flight"]).unwrap() {
        crate::Cli::Run(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(c.params, vec![("trace".to_string(), "flight".to_string())]);
    assert!(crate::parse_args(["--trace", "/tmp/a", "--profile", "/tmp/b"]).is_err());
    assert!(crate::parse_args(["--trace", "/tmp/a,b"]).is_err());
}
