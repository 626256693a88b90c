//! What Linux says about a process, from `/proc`: resident memory, open descriptors and CPU
//! time. These are the figures the suite reports and bounds: they are measured from outside
//! the server, so they count everything, allocator and kernel objects included.

use std::io;
use std::time::Duration;

/// Resident set size in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS for process {pid}")))
}

/// Open file descriptors (entries of `/proc/PID/fd`).
pub fn fd_count(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Open file descriptors numbered below `limit`. Under `RLIMIT_NOFILE = limit` these are
/// the ones that take room: a new descriptor gets the lowest free number below the limit,
/// and descriptors inherited above it (a shell's, say) do not count against it.
pub fn fds_below(pid: u32, limit: u64) -> io::Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let number: Option<u64> = entry?.file_name().to_str().and_then(|n| n.parse().ok());
        if number.is_some_and(|n| n < limit) {
            count += 1;
        }
    }
    Ok(count)
}

/// User plus system CPU time of all the process's threads (`utime` and `stime` in
/// `/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields from
    // the last ')'. The next field is the 3rd (state); utime and stime are the 14th and 15th.
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    // The kernel reports these in USER_HZ, which is 100 on every Linux architecture in use
    // (it is fixed for the sake of exactly this interface, whatever the kernel's own HZ).
    Ok(Duration::from_millis(total * 10))
}
