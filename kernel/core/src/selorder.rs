//! The two orders of a `select` (the top of Go's `selectgo` in `runtime/select.go`).
//!
//! - The **poll order** is a random permutation of the cases (nil channels left out): pass 1
//!   of `selectgo` looks at the cases in this order and takes the first that can proceed, so
//!   when several are ready each is equally likely to win. Without it, `select` would always
//!   favour the case written first, and a busy first channel would starve the others.
//! - The **lock order** is the same cases sorted by channel address: every goroutine that
//!   holds several channel locks takes them in that order, so two selects on the same
//!   channels cannot deadlock (each waiting for a lock the other holds).
//!
//! The kernel (`kernel/src/sync/select.rs`) calls these two with its `scases` and its P's
//! `cheaprandn`; they are plain functions so that the host can test them.

/// Go's poll order: writes into `order` the indexes `i` in `0..ncases` with `!is_nil(i)`, in a
/// uniformly random order, and returns how many (`norder`). `randn(n)` is a random number in
/// `0..n` (Go's `cheaprandn`). `order` has room for `ncases` entries; `ncases <= 1 << 16`.
///
/// The shuffle is Go's *inside-out* Fisher-Yates: the cases are taken one by one, and case
/// `i`, the `norder+1`-th live one, goes to a random position `j` among the first `norder+1`
/// (possibly its own, the last), while what stood at `j` moves to the end. One pass, no swap
/// loop after, and nothing but `order` to write.
pub fn pollorder(
    ncases: usize,
    is_nil: impl Fn(usize) -> bool,
    order: &mut [u16],
    mut randn: impl FnMut(u32) -> u32,
) -> usize {
    //~ lab6 begin pollorder: for each live case i: j = randn(norder + 1); the entry at j moves to
    //~ order[norder], i goes to order[j]; norder += 1. Nil cases get no entry. Return norder.
    let mut norder = 0;
    for i in 0..ncases {
        if is_nil(i) {
            continue;
        }
        let j = randn(norder as u32 + 1) as usize;
        order[norder] = order[j];
        // i < ncases <= 1 << 16 (the caller checks): fits.
        order[j] = i as u16;
        norder += 1;
    }
    norder
    //~ lab6 end
}

/// Go's lock order: `lockorder` (as long as `pollorder`) gets the same case indexes sorted by
/// `addr(i)`, the address of case `i`'s channel, so that cases on one channel are neighbours
/// (`sellock` then locks that channel once).
pub fn lockorder(pollorder: &[u16], lockorder: &mut [u16], addr: impl Fn(u16) -> usize) {
    //~ lab6 begin lockorder: copy the poll order, then sort by channel address. (Go uses a
    //~ heap sort, to bound its stack; core's sort_unstable allocates nothing either.)
    lockorder.copy_from_slice(pollorder);
    lockorder.sort_unstable_by_key(|&i| addr(i));
    //~ lab6 end
}

#[cfg(test)]
mod tests;
