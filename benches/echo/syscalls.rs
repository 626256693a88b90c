//! Counting a server's system calls with `perf stat`, over exactly the measurement window.
//!
//! `perf stat -p PID` attaches to the running server; `-D -1` starts it with counting
//! disabled, and `--control fifo:CTL,ACK` lets the load generator send `enable` and
//! `disable` at the window's edges and wait for perf's `ack`, so the counts and the
//! message count cover the same interval. The counters are kernel tracepoints: the total
//! (`raw_syscalls:sys_enter`) and one per system call of interest, which shows *which*
//! calls a server spends (the tracepoints cost far less than `strace`, which stops the
//! server at every call).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};

use crate::Fallible;

/// The total, then the calls an echo server may make per message or per turn.
const TOTAL: &str = "raw_syscalls:sys_enter";
const CALLS: &[&str] = &[
    "recvfrom",
    "sendto",
    "read",
    "write",
    "readv",
    "writev",
    "recvmsg",
    "sendmsg",
    // Datagrams in batches (the reactor's UDP, issue 22).
    "recvmmsg",
    "sendmmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "accept4",
    "futex",
];

/// System calls counted over one window: the total and the count of each call by name.
#[derive(Debug, Clone, Default)]
pub struct SyscallCounts {
    pub total: u64,
    pub by_call: Vec<(String, u64)>,
}

/// Whether `perf` can count system calls here (it needs tracepoint access).
pub fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", TOTAL, "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A `perf stat` attached to one process, counting only while enabled.
pub struct SyscallCounter {
    perf: Child,
    ctl: File,
    ack: File,
    dir: PathBuf,
    output: PathBuf,
}

impl SyscallCounter {
    pub fn attach(pid: u32) -> Fallible<SyscallCounter> {
        let dir =
            std::env::temp_dir().join(format!("echo-bench-perf-{}-{pid}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let (ctl_path, ack_path, output) = (dir.join("ctl"), dir.join("ack"), dir.join("counts"));
        make_fifo(&ctl_path)?;
        make_fifo(&ack_path)?;
        let mut events = vec![TOTAL.to_string()];
        events.extend(
            CALLS
                .iter()
                .map(|call| format!("syscalls:sys_enter_{call}")),
        );
        let perf = Command::new("perf")
            .arg("stat")
            .args(["-x,", "-D", "-1", "-e", &events.join(",")])
            .arg("--control")
            .arg(format!(
                "fifo:{},{}",
                ctl_path.display(),
                ack_path.display()
            ))
            .arg("-o")
            .arg(&output)
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // It says "Events disabled/enabled" there; kept for error messages.
            .stderr(File::create(dir.join("stderr"))?)
            .spawn()?;
        // The ack fifo first, non-blocking: opening it needs no writer yet.
        let ack = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&ack_path)?;
        let mut counter = SyscallCounter {
            perf,
            // Replaced below once perf has opened its end.
            ctl: File::open("/dev/null")?,
            ack,
            dir,
            output,
        };
        // Opening the control fifo for writing fails (ENXIO) until perf has opened it.
        let deadline = Instant::now() + Duration::from_secs(10);
        counter.ctl = loop {
            match OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&ctl_path)
            {
                Ok(file) => break file,
                Err(err) if err.raw_os_error() == Some(libc::ENXIO) => {}
                Err(err) => return Err(err.into()),
            }
            if let Some(status) = counter.perf.try_wait()? {
                return Err(format!("perf stat exited at start: {status}").into());
            }
            if Instant::now() > deadline {
                return Err("perf stat did not open its control fifo in 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(counter)
    }

    pub fn enable(&mut self) -> Fallible<()> {
        self.command("enable")
    }

    pub fn disable(&mut self) -> Fallible<()> {
        self.command("disable")
    }

    /// Sends a command and waits for perf's `ack`.
    fn command(&mut self, command: &str) -> Fallible<()> {
        self.ctl.write_all(format!("{command}\n").as_bytes())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut reply = Vec::new();
        let mut buf = [0; 64];
        // perf writes "ack\n" and the string's terminating NUL.
        let acked = |reply: &[u8]| reply.windows(4).any(|w| w == b"ack\n");
        while !acked(&reply) {
            match self.ack.read(&mut buf) {
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err.into()),
            }
            if Instant::now() > deadline {
                let log = fs::read_to_string(self.dir.join("stderr")).unwrap_or_default();
                return Err(format!("perf stat did not acknowledge {command:?}: {log}").into());
            }
            if !acked(&reply) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(())
    }

    /// Stops perf (SIGINT, which makes it print its counts) and reads the counts.
    pub fn finish(mut self) -> Fallible<SyscallCounts> {
        // Our own child, not reaped yet: the PID is still its.
        kill(Pid::from_raw(self.perf.id() as i32), Signal::SIGINT)?;
        self.perf.wait()?;
        let text = fs::read_to_string(&self.output)?;
        let mut counts = SyscallCounts::default();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            // CSV: count,unit,event,...  ("<not counted>" when the event never ran).
            let fields: Vec<&str> = line.split(',').collect();
            let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            let count: u64 = count.parse().unwrap_or(0);
            if *event == TOTAL {
                counts.total = count;
            } else if let Some(call) = event.strip_prefix("syscalls:sys_enter_") {
                counts.by_call.push((call.to_string(), count));
            }
        }
        if counts.total == 0 {
            return Err(format!("perf stat counted no system calls:\n{text}").into());
        }
        Ok(counts)
    }
}

impl Drop for SyscallCounter {
    fn drop(&mut self) {
        if let Ok(None) = self.perf.try_wait() {
            let _ = self.perf.kill();
        }
        let _ = self.perf.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    Ok(mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)?)
}
