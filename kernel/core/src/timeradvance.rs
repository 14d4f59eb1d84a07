//! The timer advance: how early a parked core arms its one-shot timer, so that it is awake
//! when its deadline comes. KVM does this for its guests' LAPIC timers
//! (`lapic_timer_advance_ns`, adaptive); there is no Go counterpart (Go sleeps in the host
//! kernel, which does its own).
//!
//! The kernel measures each one-shot wake-up's lateness (the time it resumed minus the time
//! the timer was armed for) and folds it in with [`next`]; it arms the next one-shot
//! `advance` early and polls the clock from there to the deadline (`kernel/src/runtime/irq.rs`,
//! "Timer advance").

/// The advance never exceeds this (ns): a poll longer than this would cost more than the
/// late wake-up it saves, and a vCPU the host descheduled for milliseconds is not a lateness
/// to learn.
pub const MAX_NS: u64 = 200_000;

/// The advance after a wake-up that came `late` ns after its timer: a moving average with
/// weight 1/8 (as Linux's and KVM's estimators use), with samples capped at [`MAX_NS`].
pub fn next(advance: u64, late: u64) -> u64 {
    let late = late.min(MAX_NS);
    let advance = advance.min(MAX_NS);
    if late >= advance {
        advance + (late - advance) / 8
    } else {
        advance - (advance - late) / 8
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converges_to_a_steady_lateness() {
        let mut a = 0;
        for _ in 0..100 {
            a = next(a, 80_000);
        }
        assert!((79_000..=80_000).contains(&a), "{a}");
        for _ in 0..100 {
            a = next(a, 2_000);
        }
        assert!((2_000..=3_000).contains(&a), "{a}");
    }

    #[test]
    fn one_outlier_moves_it_an_eighth_of_the_cap() {
        // A vCPU descheduled for 10 ms counts as MAX_NS, once.
        assert_eq!(next(0, 10_000_000), MAX_NS / 8);
        assert_eq!(next(MAX_NS, u64::MAX), MAX_NS);
    }

    proptest! {
        #[test]
        fn moves_toward_the_sample_and_stays_capped(a in 0..=MAX_NS, late in any::<u64>()) {
            let n = next(a, late);
            let l = late.min(MAX_NS);
            prop_assert!(n <= MAX_NS);
            prop_assert!(n >= a.min(l) && n <= a.max(l));
        }
    }
}
