//! From declared tests to trials: test x core count x case (x `--count`),
//! filtered, skipped where a setting says so, and shuffled on request.

use std::sync::Arc;
use std::time::Duration;

use gmp_core::ktest::glob;

use super::list::TestInfo;
use super::Options;

/// One boot's worth of work (or one test's share of a suite boot).
#[derive(Debug, Clone)]
pub struct Trial {
    /// Position in the plan (reports are in this order).
    pub index: usize,
    pub test: Arc<TestInfo>,
    /// Shown name: `sched::spawn_storm[smp=4]`, `x::y[case,smp=2,schedrandom=1]`.
    pub name: String,
    pub case: Option<String>,
    pub smp: u32,
    /// Boot parameters of this trial, without `test=`/`case=`/`seed=`.
    pub params: Vec<String>,
    /// The `--count` iteration (0-based).
    pub iteration: u32,
    pub seed: u64,
    pub timeout: Duration,
    /// Why this trial is skipped without booting, if it is.
    pub skip: Option<String>,
}

/// The timeout of a trial when its test declares none: 90 s, 120 s at 4 or more cores.
pub fn default_timeout(smp: u32) -> u64 {
    if smp >= 4 {
        120
    } else {
        90
    }
}

/// Does `filter` select `name`? A glob if it has `*` or `?`, else a substring; `exact`
/// wants equality.
pub fn filter_matches(filter: &str, name: &str, exact: bool) -> bool {
    if exact {
        filter == name
    } else if filter.contains(['*', '?']) {
        glob(filter, name)
    } else {
        name.contains(filter)
    }
}

/// A 64-bit mixer (splitmix64's finaliser), for per-trial seeds.
pub fn mix(x: u64) -> u64 {
    gmp_core::rand::mix64(x)
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Every trial the options select, in declaration order (or shuffled).
pub fn plan(tests: &[Arc<TestInfo>], opt: &Options, base_seed: u64) -> Vec<Trial> {
    let mut out = Vec::new();
    for t in tests {
        if !opt.tags.is_empty() && !opt.tags.iter().any(|g| t.tags.contains(g)) {
            continue;
        }
        if opt.skip_tags.iter().any(|g| t.tags.contains(g)) {
            continue;
        }
        // `manual` tests (failure demonstrations...) run only when a filter or --tags names them.
        if t.tags.iter().any(|g| g == "manual") && !opt.tags.iter().any(|g| g == "manual") && opt.filters.is_empty() {
            continue;
        }
        // (cores, extra params) pairs: the matrix, then the `also` trials.
        let mut shapes: Vec<(u32, Vec<String>)> = match &opt.smp {
            Some(list) => list.iter().map(|&c| (c, Vec::new())).collect(),
            None => t.smp.iter().map(|&c| (c, Vec::new())).collect(),
        };
        if opt.smp.is_none() {
            shapes.extend(t.also.iter().cloned());
        }
        let cases: Vec<Option<&(String, Vec<String>)>> =
            if t.cases.is_empty() { vec![None] } else { t.cases.iter().map(Some).collect() };
        for case in &cases {
            for (smp, extra) in &shapes {
                let mut label: Vec<String> = Vec::new();
                if let Some((c, _)) = case {
                    label.push(c.clone());
                }
                label.push(format!("smp={smp}"));
                label.extend(extra.iter().cloned());
                let name = format!("{}[{}]", t.name, label.join(","));
                let selected = opt.filters.is_empty()
                    || opt.filters.iter().any(|f| filter_matches(f, &name, opt.exact) || filter_matches(f, &t.name, opt.exact));
                if !selected || opt.skip.iter().any(|f| filter_matches(f, &name, false)) {
                    continue;
                }
                let mut params = t.params.clone();
                if let Some((_, p)) = case {
                    params.extend(p.iter().cloned());
                }
                params.extend(extra.iter().cloned());
                params.extend(opt.params.iter().cloned());
                let skip = if *smp < t.min_cpus {
                    Some(format!("needs {} or more cores", t.min_cpus))
                } else if t.smp_only && opt.smp.is_some() && !own_counts(t).contains(smp) {
                    // Only a --smp list can name a count outside the test's own trials.
                    let only: Vec<String> = own_counts(t).iter().map(|c| c.to_string()).collect();
                    Some(format!("holds only at smp={} (smp_only)", only.join(",")))
                } else {
                    t.skip_params.iter().find(|w| params.contains(w)).map(|w| format!("not run with {w}"))
                };
                let secs = t.timeout.unwrap_or_else(|| default_timeout(*smp));
                let timeout = Duration::from_secs_f64(secs as f64 * opt.timeout_multiplier);
                for iteration in 0..opt.count {
                    let seed = opt.seed.unwrap_or_else(|| mix(base_seed ^ hash(&name) ^ (iteration as u64) << 32));
                    out.push(Trial {
                        index: 0,
                        test: t.clone(),
                        name: name.clone(),
                        case: case.map(|c| c.0.clone()),
                        smp: *smp,
                        params: params.clone(),
                        iteration,
                        seed,
                        timeout,
                        skip: skip.clone(),
                    });
                }
            }
        }
    }
    if let Some(s) = opt.shuffle {
        shuffle(&mut out, s);
    }
    for (i, t) in out.iter_mut().enumerate() {
        t.index = i;
    }
    out
}

/// The core counts a test declares: its matrix, then those of its `also` trials, each once.
fn own_counts(t: &TestInfo) -> Vec<u32> {
    let mut v = t.smp.clone();
    for (c, _) in &t.also {
        if !v.contains(c) {
            v.push(*c);
        }
    }
    v
}

/// Fisher-Yates with Go's cheap generator, seeded: the same seed gives the same order.
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut r = gmp_core::rand::FastRand::new(mix(seed));
    for i in (1..v.len()).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
