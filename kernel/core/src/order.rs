//! The order in which `stealWork` visits the Ps: Go's `randomOrder` and
//! `randomEnum`.
//!
//! # Why a random order, and why this one
//!
//! A spinning M that found nothing locally tries to steal from the other Ps.
//! If every M scanned `allp[0], allp[1], ...` they would all pile onto P0. So
//! each M starts at a random P and walks with a random stride. To visit every
//! P exactly once in `count` steps the stride must be coprime with `count`:
//! then `pos, pos+inc, pos+2inc, ... (mod count)` is a permutation of
//! `0..count` (if `inc` and `count` shared a factor `d`, the walk would close
//! after `count/d` steps).
//!
//! `reset(count)` is run when GOMAXPROCS changes (in `procresize`) and lists
//! all strides coprime with `count`. `start(r)` takes one random `r` and
//! derives both the start (`r % count`) and the stride (`coprimes[(r / count)
//! % len]`), so one cheap random number picks one of `count * len(coprimes)`
//! distinct walks. No allocation: the coprimes live in a fixed array sized for
//! [`MAX_PROCS`].
//!
//! Lines starting with `//~ lab2` mark the code that lab 2 of the course
//! (`labs/lab2/`) takes out of a student's tree; they change nothing here.

/// The largest number of Ps (and cores) the kernel supports. QEMU 10 with an
/// x2APIC gave 1024 here and the demo passed on all of them (README, "Many
/// cores").
pub const MAX_PROCS: u32 = 1024;

/// The coprimes of the current P count (Go: `randomOrder`, the global
/// `stealOrder`).
#[derive(Clone, Debug)]
pub struct RandomOrder {
    count: u32,
    ncoprimes: u32,
    /// `coprimes[..ncoprimes]` are the `i` in `1..=count` with `gcd(i, count) == 1`.
    coprimes: [u16; MAX_PROCS as usize],
}

/// One walk over all `count` positions (Go: `randomEnum`).
///
/// Use it like Go does (`while !e.done() { e.position(); e.next() }`) or
/// through [`RandomEnum::positions`].
#[derive(Clone, Debug)]
pub struct RandomEnum {
    i: u32,
    count: u32,
    pos: u32,
    inc: u32,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Default for RandomOrder {
    fn default() -> Self {
        Self::new()
    }
}

impl RandomOrder {
    /// An order for one P. Call [`Self::reset`] with the real count.
    pub const fn new() -> Self {
        let mut coprimes = [0u16; MAX_PROCS as usize];
        coprimes[0] = 1;
        RandomOrder { count: 1, ncoprimes: 1, coprimes }
    }

    /// Recomputes the coprimes for `count` Ps (Go: `randomOrder.reset`, called
    /// from `procresize`).
    ///
    /// # Panics
    /// If `count` is 0 or above [`MAX_PROCS`].
    pub fn reset(&mut self, count: u32) {
        assert!(
            (1..=MAX_PROCS).contains(&count),
            "RandomOrder::reset({count}): count must be 1..={MAX_PROCS}"
        );
        //~ lab2 begin randomOrder_reset: remember count, and list the strides: every i in 1..=count with
        //~ gcd(i, count) == 1, in increasing order, in coprimes[..ncoprimes] (start from none).
        self.count = count;
        self.ncoprimes = 0;
        for i in 1..=count {
            if gcd(i, count) == 1 {
                self.coprimes[self.ncoprimes as usize] = i as u16;
                self.ncoprimes += 1;
            }
        }
        //~ lab2 end
    }

    /// The current P count.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The strides coprime with the count.
    pub fn coprimes(&self) -> &[u16] {
        &self.coprimes[..self.ncoprimes as usize]
    }

    /// A walk chosen by the random number `i` (Go: `randomOrder.start`;
    /// `stealWork` passes `cheaprand()`).
    pub fn start(&self, i: u32) -> RandomEnum {
        //~ lab2 begin randomOrder_start: one random i picks both the first position, i % count, and the
        //~ stride, coprimes[(i / count) % ncoprimes]; no step taken yet.
        RandomEnum {
            i: 0,
            count: self.count,
            pos: i % self.count,
            inc: self.coprimes[((i / self.count) % self.ncoprimes) as usize] as u32,
        }
        //~ lab2 end
    }
}

impl RandomEnum {
    /// True once all `count` positions have been visited.
    pub fn done(&self) -> bool {
        self.i == self.count
    }

    /// Steps to the next position.
    pub fn next(&mut self) {
        //~ lab2 begin randomEnum_next: count the step, and move pos by the stride, modulo count.
        self.i += 1;
        // pos < count <= MAX_PROCS and inc <= MAX_PROCS, so the sum cannot overflow.
        self.pos = (self.pos + self.inc) % self.count;
        //~ lab2 end
    }

    /// The current position (an index into `allp`).
    pub fn position(&self) -> u32 {
        self.pos
    }

    /// The stride of this walk.
    pub fn stride(&self) -> u32 {
        self.inc
    }
}

impl RandomEnum {
    /// The remaining positions as an [`Iterator`] (for `for p in ...` loops).
    pub fn positions(self) -> Positions {
        Positions(self)
    }
}

/// Iterator over the positions of a [`RandomEnum`], from [`RandomEnum::positions`].
#[derive(Clone, Debug)]
pub struct Positions(RandomEnum);

impl Iterator for Positions {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0.done() {
            return None;
        }
        let p = self.0.position();
        self.0.next();
        Some(p)
    }
}

#[cfg(test)]
mod tests;
