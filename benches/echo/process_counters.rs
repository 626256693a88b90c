//! What the kernel says about a process: CPU time and memory, read from `/proc` (through the
//! `procfs` crate) by the driver, so the server does nothing extra to be measured.
//!
//! CPU time comes from `/proc/PID/task/*/schedstat` (nanoseconds on CPU, per thread,
//! summed): the same clock as `getrusage`'s utime+stime, without the 10 ms tick rounding of
//! `/proc/PID/stat`. The user/system split does come from `/proc/PID/stat`, in ticks: it is
//! only ever shown as a share.

use std::io;

use nix::time::{clock_gettime, ClockId};
use procfs::process::Process;
use procfs::{CurrentSI, KernelStats, ProcError};

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// CPU time of all its threads, nanoseconds.
    pub cpu_ns: u64,
    /// User and system time, clock ticks (`USER_HZ`, see [`ticks_per_second`]).
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// Resident memory now, and its peak (`VmHWM`), KiB.
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn sample(pid: u32) -> io::Result<ProcSample> {
    let process = Process::new(pid as i32).map_err(to_io)?;
    let mut cpu_ns = 0;
    for task in process.tasks().map_err(to_io)? {
        // A thread may exit between listing and reading: skip it.
        if let Ok(schedstat) = task.and_then(|task| task.schedstat()) {
            cpu_ns += schedstat.sum_exec_runtime;
        }
    }
    let stat = process.stat().map_err(to_io)?;
    let status = process.status().map_err(to_io)?;
    Ok(ProcSample {
        cpu_ns,
        user_ticks: stat.utime,
        system_ticks: stat.stime,
        rss_kib: status.vmrss.unwrap_or(0),
        hwm_kib: status.vmhwm.unwrap_or(0),
    })
}

/// `USER_HZ`: what a tick of [`ProcSample::user_ticks`] is worth (100 per second on Linux).
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

/// The CPU time of the calling thread, nanoseconds: the load generator's own cost.
pub fn thread_cpu_ns() -> u64 {
    // The thread CPU clock always exists on Linux; 0 would only make one figure read 0.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}

/// Busy time of the whole machine (all CPUs), nanoseconds, from `/proc/stat`: with the
/// server's and the load's own time it shows how much *other* work shared the machine.
pub fn machine_busy_ns() -> u64 {
    let Ok(stats) = KernelStats::current() else {
        return 0;
    };
    let cpu = stats.total;
    // Everything but idle and iowait.
    let ticks = cpu.user
        + cpu.nice
        + cpu.system
        + cpu.irq.unwrap_or(0)
        + cpu.softirq.unwrap_or(0)
        + cpu.steal.unwrap_or(0);
    ticks * 1_000_000_000 / ticks_per_second()
}

fn to_io(err: ProcError) -> io::Error {
    io::Error::other(err)
}
