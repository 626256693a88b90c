//! The machine a run happened on, for the report: results mean little without it.

use std::fs;
use std::process::Command;

use procfs::{CpuInfo, Current, Meminfo};

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
        let cpuinfo = CpuInfo::current().ok();
        let cpu_model = cpuinfo
            .as_ref()
            .and_then(|info| info.model_name(0))
            .unwrap_or("unknown")
            .to_string();
        let mem_bytes = Meminfo::current().map_or(0, |m| m.mem_total);
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".to_string(), |k| k.trim().to_string());
        let rustc = Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map_or("unknown".to_string(), |v| v.trim().to_string());
        Machine {
            // The online CPUs /proc/cpuinfo lists, not available_parallelism(): that one
            // honours our own pinning.
            cpus: cpuinfo.map_or(0, |info| info.num_cores()),
            cpu_model,
            kernel: format!("Linux {kernel}"),
            memory_gib: mem_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
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
