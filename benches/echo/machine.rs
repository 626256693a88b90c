//! The machine a run happened on, for the report: results mean little without it.

use std::fs;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory_gib: f64,
    pub rustc: String,
    /// Which CPU the servers and the load ran on, or why nothing was pinned.
    pub pinning: String,
}

impl Machine {
    pub fn describe(pinning: String) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map_or("unknown".to_string(), |(_, model)| model.trim().to_string());
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".to_string(), |k| k.trim().to_string());
        let rustc = Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map_or("unknown".to_string(), |v| v.trim().to_string());
        Machine {
            // Online CPUs, not available_parallelism(): that one honours our own pinning.
            // SAFETY: sysconf only reads a configuration value.
            cpus: unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(0) as usize,
            cpu_model,
            kernel: format!("Linux {kernel}"),
            memory_gib: mem_kib / (1024.0 * 1024.0),
            rustc,
            pinning,
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} CPUs ({}), {:.0} GiB, {}, {}; {}",
            self.cpus, self.cpu_model, self.memory_gib, self.kernel, self.rustc, self.pinning
        )
    }
}
