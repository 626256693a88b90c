//! Pinning: the server on one core, the load on the other, so that neither steals the
//! other's CPU and the server's CPU time is its own work.
//!
//! Pinning applies to the calling thread, and threads and processes it creates later
//! inherit the mask; so each process pins itself first thing in `main`. `core_affinity`
//! wraps `sched_getaffinity`/`sched_setaffinity` safely.

use std::io;

use core_affinity::CoreId;

/// The CPUs this process may run on (its affinity mask, which may be narrower than the
/// machine).
pub fn allowed_cpus() -> Vec<usize> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    ids.into_iter().map(|core| core.id).collect()
}

/// Pins the calling thread (and whatever it spawns afterwards) to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    if core_affinity::set_for_current(CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(io::Error::other(format!("cannot pin to CPU {cpu}")))
    }
}

/// Which CPU the server and which the load get: the first two CPUs we may use, or `None`
/// when there are fewer than two (then nothing is pinned and the report says so).
pub fn plan() -> Option<(usize, usize)> {
    match allowed_cpus()[..] {
        [server, load, ..] => Some((server, load)),
        _ => None,
    }
}
