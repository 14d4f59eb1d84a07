//! Go's channels, `select` and the `sync` package, on the GMP scheduler.
//!
//! Read these files beside Go's runtime and standard library:
//!
//! | here | Go |
//! | --- | --- |
//! | [`sudog`] | `runtime2.go` (`sudog`), `proc.go` (`acquireSudog`, `releaseSudog`) |
//! | [`chan`] | `runtime/chan.go` (`hchan`, `waitq`, `chansend`, `chanrecv`, `closechan`) and `time.After` |
//! | [`select`] | `runtime/select.go` (`selectgo`, `sellock`, `selparkcommit`) and the compiler's lowering of `select` |
//! | [`sema`] | `runtime/sema.go` (`semaRoot`, `semacquire1`, `semrelease1`) |
//! | [`mutex`] | `sync/mutex.go` (normal and starvation modes) |
//! | [`waitgroup`] | `sync/waitgroup.go` |
//! | [`once`] | `sync/once.go` |
//!
//! Everything blocks the same way: the goroutine describes what it waits
//! for in a [`sudog`] on a wait queue, then parks ([`crate::park`]) with a
//! commit function that releases the queue's lock once the goroutine is
//! marked waiting; whoever satisfies the wait takes the sudog off the queue
//! under the same lock and calls [`crate::ready`]. Holding the lock across
//! the switch to the scheduler is what makes a lost wake-up impossible.
//!
//! Failures are Go's: `panic: send on closed channel`, `panic: close of
//! closed channel`, `panic: sync: negative WaitGroup counter`, `fatal error:
//! sync: unlock of unlocked mutex`, and a program whose goroutines all wait
//! on each other ends in `fatal error: all goroutines are asleep - deadlock!`.
pub mod chan;
pub mod mutex;
pub mod once;
pub mod select;
pub mod sema;
pub(crate) mod sudog;
pub mod waitgroup;

pub use chan::{after, Chan, RecvChan, Receiver, Timer, TryRecvError};
pub use mutex::{Mutex, MutexGuard, RawMutex};
pub use once::Once;
pub use sema::{semacquire, semrelease, Semaphore};
pub use waitgroup::WaitGroup;
