//! sysmon's decision in `retake`: leave a P alone, preempt the G running on
//! it, or take the P away from a G blocked in a system call (Go's `retake`
//! in `proc.go`, one iteration of its loop over `allp`).
//!
//! # The protocol
//!
//! sysmon never looks at a goroutine's clock. It keeps, per P, what it saw
//! at its last visit ([`SysmonTick`], Go's `p.sysmontick`) and compares it
//! with the P's counters now ([`PSnapshot`]):
//!
//! * **`schedtick`** counts the times the P's scheduler picked a G with a new
//!   time slice (`execute` with `inheritTime == false`). If it moved since
//!   the last visit, sysmon only remembers it (`pd.schedtick = t`) and the
//!   time it first saw it (`pd.schedwhen = now`). If it has not moved and
//!   `pd.schedwhen + forcePreemptNS <= now`, the same slice has lasted at
//!   least `forcePreemptNS` (10 ms): preempt (`preemptone`). A chain of Gs
//!   handed over through `runnext` inherits one slice, so it is preempted
//!   the same way. `schedwhen` is when sysmon *first saw* the tick, not when
//!   the slice began, so a slice runs between `forcePreemptNS` and
//!   `forcePreemptNS` plus one sysmon period. (The kernel's `retake` fills
//!   in a new tick itself, with the slice's start that `execute` stamped:
//!   its sysmon runs on a 1 ms timer tick, not every 20 us as Go's does when
//!   busy, and a late first sight would add up to a tick to every slice.
//!   `decide` then finds the tick already seen.)
//! * **`syscalltick`** counts the system calls the P's G entered. A P in
//!   `_Psyscall` whose `syscalltick` moved is remembered the same way
//!   (`pd.syscalltick`, `pd.syscallwhen`). A P seen in the same syscall twice
//!   is handed off (`handoffp`), unless keeping it is cheaper: its run queue
//!   is empty, some M is spinning or some P idle (someone else can take new
//!   work), and the syscall is younger than 10 ms.
//!
//! `pd` is sysmon's (the kernel's `entersyscall` also stamps `syscallwhen`);
//! the P's own counters are written by the P's M, so sysmon's snapshot of
//! them may be a moment old, which only delays a decision by one period.
//!
//! This function is pure: the kernel's `retake` (`kernel/src/runtime/
//! preempt.rs`) reads the P, calls it, and does what it returns. The host
//! tests drive it with a fake clock.
//!
//! One difference from Go: Go also runs the `schedtick` check on a P in
//! `_Psyscall` (and, if it fires, hands the P off without waiting for a
//! second visit). Here a P in a syscall is judged by `syscalltick` only.

/// Go's `forcePreemptNS`: the longest time slice, 10 ms. The kernel's
/// `retake` passes the `forcepreemptns=` boot parameter, whose default this is.
pub const FORCE_PREEMPT_NS: u64 = 10_000_000;

/// A syscall younger than this keeps its P when nobody else needs it
/// (Go's `10*1000*1000` in `retake`).
pub const SYSCALL_KEEP_NS: u64 = 10_000_000;

/// sysmon's memory of one P (Go's `sysmontick`): the P's counters at the
/// last visit where they had changed, and when that visit was (ns).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysmonTick {
    /// `pp.schedtick` when sysmon last saw it change.
    pub schedtick: u32,
    /// When sysmon saw `schedtick` change (ns).
    pub schedwhen: u64,
    /// `pp.syscalltick` when sysmon last saw it change.
    pub syscalltick: u32,
    /// When sysmon saw `syscalltick` change (ns).
    pub syscallwhen: u64,
}

/// A P's status, as `retake` distinguishes it (Go's `_Pidle` ... `_Pdead`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PStatus {
    /// `_Pidle`: no M, nothing to preempt.
    Idle,
    /// `_Prunning`: an M runs a G (or the scheduler) on it.
    Running,
    /// `_Psyscall`: its G is in a system call; the P waits to be retaken.
    Syscall,
    /// `_Pgcstop`: stopped for a stop-the-world.
    GcStop,
    /// `_Pdead`: beyond `gomaxprocs`.
    Dead,
}

/// What sysmon sees of one P at this visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PSnapshot {
    /// `pp.status`.
    pub status: PStatus,
    /// `pp.schedtick`: incremented at each new time slice.
    pub schedtick: u32,
    /// `pp.syscalltick`: incremented at each system call.
    pub syscalltick: u32,
    /// `runqempty(pp)`: nothing in its ring nor in `runnext`.
    pub runq_empty: bool,
    /// `sched.nmspinning + sched.npidle`: Ms looking for work plus idle Ps.
    pub nmspinning_npidle: u32,
}

/// What `retake` does with the P.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retake {
    /// Leave it alone (perhaps after remembering a new tick in `pd`).
    Nothing,
    /// Its G has run `forcePreemptNS` on one time slice: `preemptone(pp)`.
    Preempt,
    /// Its G is stuck in a system call: take the P (`_Psyscall` to `_Pidle`,
    /// `pp.syscalltick++`, `handoffp`).
    HandOff,
}

/// One iteration of Go's `retake` loop for the P `pp`, at time `now` (ns):
/// updates sysmon's memory `pd` and says what to do.
pub fn decide(pd: &mut SysmonTick, pp: &PSnapshot, now: u64, force_preempt_ns: u64) -> Retake {
    //~ lab5 begin retake: a running P: a new schedtick is remembered (tick and now) and left alone; the
    //~ same tick since schedwhen + forcePreemptNS <= now is Preempt. A P in a syscall: the same with
    //~ syscalltick/syscallwhen, then HandOff unless runq empty, spinning+idle > 0 and younger than 10 ms.
    match pp.status {
        PStatus::Running => {
            // Preempt the G if it has run on the same schedtick for too long:
            // one long-running G, or a chain of Gs handed over through
            // runnext, which share one time slice.
            if pd.schedtick != pp.schedtick {
                pd.schedtick = pp.schedtick;
                pd.schedwhen = now;
                Retake::Nothing
            } else if pd.schedwhen + force_preempt_ns <= now {
                Retake::Preempt
            } else {
                Retake::Nothing
            }
        }
        PStatus::Syscall => {
            // Retake the P from the syscall once it has been there for more
            // than one sysmon tick.
            if pd.syscalltick != pp.syscalltick {
                pd.syscalltick = pp.syscalltick;
                pd.syscallwhen = now;
                return Retake::Nothing;
            }
            // Keep the P if it has no work, someone else can pick up new work
            // (a spinning M or an idle P), and the syscall is younger than
            // 10 ms: a cheap exitsyscall beats a hand-off.
            if pp.runq_empty && pp.nmspinning_npidle > 0 && pd.syscallwhen + SYSCALL_KEEP_NS > now {
                return Retake::Nothing;
            }
            Retake::HandOff
        }
        PStatus::Idle | PStatus::GcStop | PStatus::Dead => Retake::Nothing,
    }
    //~ lab5 end
}

#[cfg(test)]
mod tests;
