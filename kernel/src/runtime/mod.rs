//! The Go-style runtime: scheduler (proc), preemption (preempt, sysmon),
//! timers (time), failure reports (fatal), and the public API (api).
pub mod api;
pub mod fatal;
pub mod irq;
pub mod lock;
pub mod preempt;
pub mod proc;
pub mod profiler;
pub mod runtime2;
pub mod stw;
pub mod time;
pub mod trace;
pub mod tracer;
