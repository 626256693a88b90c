//! What the kernel says about a process: CPU time and memory, read from `/proc` by the
//! driver, so the server does nothing extra to be measured.
//!
//! CPU time comes from `/proc/PID/task/*/schedstat` (nanoseconds on CPU, per thread,
//! summed): the same clock as `getrusage`'s utime+stime, without the 10 ms tick rounding of
//! `/proc/PID/stat`. The user/system split does come from `/proc/PID/stat`, in ticks: it is
//! only ever shown as a share.

use std::fs;
use std::io;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// CPU time of all its threads, nanoseconds.
    pub cpu_ns: u64,
    /// User and system time, clock ticks (`USER_HZ`, 100 per second).
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Resident memory now, and its peak (`VmHWM`), KiB.
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let mut cpu_ns = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        if let Ok(text) = fs::read_to_string(path) {
            cpu_ns += first_number(&text);
        }
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields after its ')' are plain numbers.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(ProcSample {
        cpu_ns,
        user_ticks: tick(11),
        system_ticks: tick(12),
        rss_kib: status_kib(&status, "VmRSS:"),
        hwm_kib: status_kib(&status, "VmHWM:"),
    })
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .map_or(0, first_number)
}

/// The CPU time of the calling thread, nanoseconds: the load generator's own cost.
pub fn thread_cpu_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec, which we own.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Busy time of the whole machine (all CPUs), nanoseconds, from `/proc/stat`: with the
/// server's and the load's own time it shows how much *other* work shared the machine.
pub fn machine_busy_ns() -> u64 {
    let Ok(stat) = fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    // user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    ticks * 10_000_000 // USER_HZ is 100 on Linux
}
