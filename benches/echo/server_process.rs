//! A server under test as a child process: started from this same binary (`--serve`),
//! pinned to its own CPU, sampled through `/proc`, stopped by closing its stdin.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process_counters::{self, ProcSample};
use crate::servers::{ServeOptions, ServerKind};
use crate::Fallible;

pub struct ServerProcess {
    pub kind: ServerKind,
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts a `kind` server on an ephemeral loopback port, pinned to `cpu` if given, over
    /// TLS with the certificate in `tls_dir` if given, and waits until it listens.
    pub fn start(
        kind: ServerKind,
        cpu: Option<usize>,
        options: ServeOptions,
        tls_dir: Option<&Path>,
    ) -> Fallible<ServerProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--serve", kind.name(), "--addr", "127.0.0.1:0"]);
        command.args(["--tokio-buffer", &options.tokio_buffer.to_string()]);
        command.args(["--reply-pieces", &options.reply_pieces.to_string()]);
        if options.udp {
            command.arg("--udp");
        }
        if let Some(cpu) = cpu {
            command.args(["--cpu", &cpu.to_string()]);
        }
        if let Some(dir) = tls_dir {
            command.arg("--tls-dir").arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut process = ServerProcess {
            kind,
            addr: "127.0.0.1:0".parse().expect("an address"),
            child,
            stdin,
        };
        // The first line says where it listens. If the server dies first, this is EOF.
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        process.addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| format!("{} server did not start (said {line:?})", kind.name()))?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its CPU time and memory now. Fails loudly if it died.
    pub fn sample(&mut self) -> Fallible<ProcSample> {
        if let Some(status) = self.child.try_wait()? {
            return Err(format!("the {} server exited early: {status}", self.kind.name()).into());
        }
        Ok(process_counters::sample(self.pid())?)
    }

    /// Closes its stdin (its cue to exit) and waits for it; kills it (by PID) if it has
    /// not exited within 5 s.
    pub fn stop(mut self) -> Fallible<()> {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    return Err(format!("the {} server failed: {status}", self.kind.name()).into());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                return Err(format!("the {} server did not stop", self.kind.name()).into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ServerProcess {
    /// On an error path: never leave a child behind, nor an unreaped zombie.
    fn drop(&mut self) {
        self.stdin.take();
        if let Ok(None) = self.child.try_wait() {
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}
