//! The decision table of `retake`, driven with a fake clock: sysmon visits one P every
//! `tick` (1 ms, the kernel's `hz=1000`) and the P's counters move or not between visits.
use super::*;
use proptest::prelude::*;

const MS: u64 = 1_000_000;

/// A P as sysmon sees it, sysmon's memory of it, and a clock only the test moves.
struct Sim {
    now: u64,
    pd: SysmonTick,
    pp: PSnapshot,
    limit: u64,
}

impl Sim {
    fn new(status: PStatus) -> Sim {
        // Not at 0: the kernel's clock starts at boot, and a fresh P's pd is all zeros.
        Sim {
            now: 1_000 * MS,
            pd: SysmonTick::default(),
            pp: PSnapshot { status, schedtick: 0, syscalltick: 0, runq_empty: true, nmspinning_npidle: 0 },
            limit: FORCE_PREEMPT_NS,
        }
    }
    /// Advance the clock by `dt` and let sysmon visit the P.
    fn visit(&mut self, dt: u64) -> Retake {
        self.now += dt;
        decide(&mut self.pd, &self.pp, self.now, self.limit)
    }
}

/// One row: advance the clock, change the P, what retake must do, and sysmon's memory after.
struct Row {
    dt: u64,
    schedtick: u32,
    want: Retake,
    /// `pd.schedwhen` after the visit, as an offset from the start of the table.
    schedwhen: u64,
}

fn run_table(rows: &[Row]) {
    let mut s = Sim::new(PStatus::Running);
    let t0 = s.now;
    for (i, r) in rows.iter().enumerate() {
        s.pp.schedtick = r.schedtick;
        let got = s.visit(r.dt);
        assert_eq!(got, r.want, "row {i}: at t0+{} ns, schedtick {}", s.now - t0, r.schedtick);
        assert_eq!(s.pd.schedtick, r.schedtick, "row {i}: pd.schedtick must follow the P's after a visit");
        assert_eq!(s.pd.schedwhen, t0 + r.schedwhen, "row {i}: pd.schedwhen");
    }
}

#[test]
fn new_schedtick_is_remembered_not_preempted() {
    let mut s = Sim::new(PStatus::Running);
    s.pp.schedtick = 7;
    assert_eq!(s.visit(MS), Retake::Nothing, "a tick sysmon has not seen yet starts a slice");
    assert_eq!(s.pd.schedtick, 7);
    assert_eq!(s.pd.schedwhen, s.now, "schedwhen is when sysmon first saw the tick");
    // A new tick long after the last visit is still only remembered: what counts is how long
    // sysmon has seen the *same* tick, not the time since the last visit.
    s.pp.schedtick = 8;
    assert_eq!(s.visit(500 * MS), Retake::Nothing);
    assert_eq!((s.pd.schedtick, s.pd.schedwhen), (8, s.now));
}

#[test]
fn same_schedtick_for_force_preempt_ns_is_preempted() {
    run_table(&[
        Row { dt: MS, schedtick: 1, want: Retake::Nothing, schedwhen: MS },
        Row { dt: 4 * MS, schedtick: 1, want: Retake::Nothing, schedwhen: MS },
        Row { dt: 6 * MS - 1, schedtick: 1, want: Retake::Nothing, schedwhen: MS },
        // schedwhen + forcePreemptNS <= now: exactly 10 ms is enough.
        Row { dt: 1, schedtick: 1, want: Retake::Preempt, schedwhen: MS },
        // Until the G yields (a new slice), every visit asks again.
        Row { dt: MS, schedtick: 1, want: Retake::Preempt, schedwhen: MS },
        Row { dt: 7 * MS, schedtick: 1, want: Retake::Preempt, schedwhen: MS },
        // It yielded: a new slice, remembered, the clock starts again.
        Row { dt: MS, schedtick: 2, want: Retake::Nothing, schedwhen: 20 * MS },
        Row { dt: 9 * MS, schedtick: 2, want: Retake::Nothing, schedwhen: 20 * MS },
        Row { dt: MS, schedtick: 2, want: Retake::Preempt, schedwhen: 20 * MS },
    ]);
}

#[test]
fn changing_schedtick_is_never_preempted() {
    // A P that picks a new G (or the same one with a new slice) at every visit is never
    // preempted, however long the run lasts.
    let mut rows = Vec::new();
    for i in 0..100u32 {
        rows.push(Row { dt: 3 * MS, schedtick: i + 1, want: Retake::Nothing, schedwhen: 3 * MS * (i as u64 + 1) });
    }
    run_table(&rows);
}

#[test]
fn schedtick_wraps() {
    // pp.schedtick is a u32 that wraps: only equality matters.
    let mut s = Sim::new(PStatus::Running);
    s.pp.schedtick = u32::MAX;
    assert_eq!(s.visit(MS), Retake::Nothing);
    assert_eq!(s.visit(10 * MS), Retake::Preempt);
    s.pp.schedtick = 0;
    assert_eq!(s.visit(MS), Retake::Nothing, "u32::MAX to 0 is a new slice");
    assert_eq!((s.pd.schedtick, s.pd.schedwhen), (0, s.now));
    assert_eq!(s.visit(9 * MS), Retake::Nothing);
    assert_eq!(s.visit(MS), Retake::Preempt);
}

#[test]
fn force_preempt_ns_is_a_parameter() {
    // The forcepreemptns= boot parameter: a 100 us slice, and a 1 s one.
    let mut s = Sim::new(PStatus::Running);
    s.limit = 100_000;
    s.pp.schedtick = 3;
    assert_eq!(s.visit(MS), Retake::Nothing);
    assert_eq!(s.visit(99_999), Retake::Nothing);
    assert_eq!(s.visit(1), Retake::Preempt);
    let mut s = Sim::new(PStatus::Running);
    s.limit = 1_000 * MS;
    s.pp.schedtick = 3;
    assert_eq!(s.visit(MS), Retake::Nothing);
    for _ in 0..999 {
        assert_eq!(s.visit(MS), Retake::Nothing);
    }
    assert_eq!(s.visit(MS), Retake::Preempt);
}

#[test]
fn idle_and_stopped_ps_are_left_alone() {
    for status in [PStatus::Idle, PStatus::GcStop, PStatus::Dead] {
        let mut s = Sim::new(status);
        s.pp.schedtick = 5;
        s.pp.syscalltick = 5;
        s.pp.runq_empty = false;
        for _ in 0..50 {
            assert_eq!(s.visit(MS), Retake::Nothing, "{status:?}");
        }
        assert_eq!(s.pd, SysmonTick::default(), "{status:?}: sysmon remembers nothing of it");
    }
}

#[test]
fn syscall_new_syscalltick_is_remembered() {
    let mut s = Sim::new(PStatus::Syscall);
    s.pp.syscalltick = 1;
    s.pp.runq_empty = false;
    assert_eq!(s.visit(MS), Retake::Nothing, "first sight of this syscall");
    assert_eq!((s.pd.syscalltick, s.pd.syscallwhen), (1, s.now));
    assert_eq!(s.pd.schedwhen, 0, "a P in a syscall is judged by syscalltick only");
    // Seen again in the same syscall, with work waiting: hand it off.
    assert_eq!(s.visit(MS), Retake::HandOff);
    // The G left the syscall and entered another one (the kernel's hand-off also bumps the
    // tick): remembered again, not handed off.
    s.pp.syscalltick = 2;
    assert_eq!(s.visit(MS), Retake::Nothing);
    assert_eq!((s.pd.syscalltick, s.pd.syscallwhen), (2, s.now));
}

#[test]
fn syscall_kept_while_cheap() {
    // Nothing queued on it, someone spinning or idle, younger than 10 ms: keep the P.
    let mut s = Sim::new(PStatus::Syscall);
    s.pp.syscalltick = 4;
    s.pp.nmspinning_npidle = 1;
    assert_eq!(s.visit(MS), Retake::Nothing);
    let since = s.now;
    for _ in 0..9 {
        assert_eq!(s.visit(MS - 1), Retake::Nothing, "{} ns into the syscall", s.now - since);
    }
    assert!(s.now - since < SYSCALL_KEEP_NS);
    // syscallwhen + 10 ms > now no longer holds: hand it off.
    s.now = since + SYSCALL_KEEP_NS - 1;
    assert_eq!(s.visit(1), Retake::HandOff, "exactly 10 ms");
}

#[test]
fn syscall_handed_off_when_work_waits_or_nobody_else() {
    // Each condition of the keep rule alone is not enough.
    for (runq_empty, spin_idle) in [(false, 3), (true, 0), (false, 0)] {
        let mut s = Sim::new(PStatus::Syscall);
        s.pp.syscalltick = 9;
        s.pp.runq_empty = runq_empty;
        s.pp.nmspinning_npidle = spin_idle;
        assert_eq!(s.visit(MS), Retake::Nothing);
        assert_eq!(s.visit(MS), Retake::HandOff, "runq_empty={runq_empty} nmspinning+npidle={spin_idle}");
    }
}

#[test]
fn running_and_syscall_memories_are_separate() {
    // A G runs a slice, enters a syscall, comes back: each counter is judged on its own.
    let mut s = Sim::new(PStatus::Running);
    s.pp.schedtick = 1;
    assert_eq!(s.visit(MS), Retake::Nothing);
    let slice = s.now;
    s.pp.status = PStatus::Syscall;
    s.pp.syscalltick = 1;
    s.pp.nmspinning_npidle = 1;
    assert_eq!(s.visit(MS), Retake::Nothing);
    assert_eq!(s.visit(MS), Retake::Nothing, "kept: cheap");
    assert_eq!(s.pd.schedwhen, slice, "a syscall visit does not touch the slice's memory");
    s.pp.status = PStatus::Running;
    assert_eq!(s.visit(MS), Retake::Nothing, "3 ms into the slice");
    assert_eq!(s.visit(7 * MS), Retake::Preempt, "10 ms into the slice (exitsyscall kept the tick)");
}

proptest! {
    /// Random runs of a P against the rule stated from the P's side: at a visit to a running
    /// P, retake preempts if and only if the P has been on the same schedtick at every visit
    /// for at least forcePreemptNS since the first visit that saw it.
    #[test]
    fn preempts_iff_one_slice_lasted_force_preempt_ns(
        steps in proptest::collection::vec((0u64..4 * MS, 0u32..4, any::<bool>()), 1..200),
        limit in prop_oneof![Just(FORCE_PREEMPT_NS), 100_000u64..20 * MS],
    ) {
        let mut s = Sim::new(PStatus::Running);
        s.limit = limit;
        // When sysmon first saw the current tick (None: not seen yet).
        let mut first_seen: Option<u64> = None;
        for (dt, new_slice, running) in steps {
            // new_slice == 0: the P starts a new slice before this visit (1 in 4).
            if new_slice == 0 {
                s.pp.schedtick = s.pp.schedtick.wrapping_add(1);
                first_seen = None;
            }
            s.pp.status = if running { PStatus::Running } else { PStatus::Idle };
            let got = s.visit(dt);
            if !running {
                prop_assert_eq!(got, Retake::Nothing);
                continue;
            }
            let want = match first_seen {
                Some(t) if s.now - t >= limit => Retake::Preempt,
                Some(_) => Retake::Nothing,
                None => {
                    // The very first visit of a fresh P with schedtick 0 matches pd's zero:
                    // sysmon's memory then says it saw tick 0 at time 0.
                    if s.pd.schedtick == s.pp.schedtick && s.pd.schedwhen == 0 {
                        first_seen = Some(0);
                        if s.now >= limit { Retake::Preempt } else { Retake::Nothing }
                    } else {
                        first_seen = Some(s.now);
                        Retake::Nothing
                    }
                }
            };
            prop_assert_eq!(got, want, "at {} ns, tick {}, first seen {:?}", s.now, s.pp.schedtick, first_seen);
        }
    }
}
