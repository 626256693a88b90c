//! Pinning: the server on one core, the load on the other, so that neither steals the
//! other's CPU and the server's CPU time is its own work.
//!
//! `sched_setaffinity(0, ..)` pins the calling thread, and threads and processes it creates
//! later inherit the mask; so each process pins itself first thing in `main`.

use std::io;
use std::mem;

/// The CPUs this process may run on (its affinity mask, which may be narrower than the
/// machine).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data for which all-zero is a valid (empty) value;
    // sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Pins the calling thread (and whatever it spawns afterwards) to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: as above; CPU_SET only writes inside the set for cpu < CPU_SETSIZE, which
    // sched_setaffinity then reads.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::other(format!("CPU {cpu} is out of range")));
        }
        let mut set: libc::cpu_set_t = mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Which CPU the server and which the load get: the first two CPUs we may use, or `None`
/// when there are fewer than two (then nothing is pinned and the report says so).
pub fn plan() -> Option<(usize, usize)> {
    match allowed_cpus()[..] {
        [server, load, ..] => Some((server, load)),
        _ => None,
    }
}
