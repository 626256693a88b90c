//! What Linux says about a process, from `/proc` (read through the `procfs` crate): resident
//! memory, open descriptors and CPU time. These are the figures the suite reports and bounds:
//! they are measured from outside the server, so they count everything, allocator and kernel
//! objects included.

use std::io;
use std::time::Duration;

use procfs::process::Process;
use procfs::ProcError;

fn process(pid: u32) -> io::Result<Process> {
    Process::new(pid as i32).map_err(to_io)
}

fn to_io(err: ProcError) -> io::Error {
    io::Error::other(err)
}

/// Resident set size in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = process(pid)?.status().map_err(to_io)?;
    status
        .vmrss
        .ok_or_else(|| io::Error::other(format!("no VmRSS for process {pid}")))
}

/// Open file descriptors (entries of `/proc/PID/fd`).
pub fn fd_count(pid: u32) -> io::Result<usize> {
    process(pid)?.fd_count().map_err(to_io)
}

/// Open file descriptors numbered below `limit`. Under `RLIMIT_NOFILE = limit` these are
/// the ones that take room: a new descriptor gets the lowest free number below the limit,
/// and descriptors inherited above it (a shell's, say) do not count against it.
pub fn fds_below(pid: u32, limit: u64) -> io::Result<usize> {
    let fds = process(pid)?.fd().map_err(to_io)?;
    // A descriptor closed between listing and reading is an error item: it is gone, skip it.
    let below = fds
        .filter_map(Result::ok)
        .filter(|info| u64::try_from(info.fd).is_ok_and(|fd| fd < limit));
    Ok(below.count())
}

/// User plus system CPU time of all the process's threads (`utime` and `stime` in
/// `/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = process(pid)?.stat().map_err(to_io)?;
    // The kernel reports these in USER_HZ ticks.
    let ticks = stat.utime + stat.stime;
    Ok(Duration::from_millis(
        ticks * 1000 / procfs::ticks_per_second(),
    ))
}
