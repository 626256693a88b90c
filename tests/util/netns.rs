//! A peer on another host, as far as TCP can tell: a network namespace joined to this one by
//! a veth pair, where a program runs as the peer, and a firewall inside the namespace that
//! makes the peer vanish at once (every packet in or out dropped: no FIN, no RST, no ACK),
//! as a crashed host or an expired NAT entry does.
//!
//! Needs root (`ip netns add`), iproute2 and nftables. Names are unique per process and
//! per peer, so tests run in parallel; everything is removed on drop, also when the test
//! fails, and every program started here is waited for. Traffic stays on the veth pair.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Peers made by this process so far: part of each one's names and addresses.
static PEERS: AtomicU32 = AtomicU32::new(0);

/// How long a program in the namespace may take to exit once its standard input closes.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// A namespace with one end of a veth pair; the other end is in this namespace.
pub struct VethPeer {
    namespace: String,
    host_link: String,
    /// The address of this side's end (listen here for the peer).
    pub host_ip: Ipv4Addr,
    /// The peer's address.
    pub peer_ip: Ipv4Addr,
    vanished: bool,
    programs: Vec<Child>,
}

impl VethPeer {
    /// A new namespace joined by a veth pair, both ends up, on a /30 of 10.200.0.0/16 of its
    /// own. `None` (with a note on stderr) where namespaces cannot be made: not root, or no
    /// iproute2.
    pub fn create() -> Option<VethPeer> {
        let pid = std::process::id();
        let n = PEERS.fetch_add(1, Ordering::Relaxed);
        // 16384 subnets of 4 addresses in 10.200.0.0/16, spread by process and peer.
        let subnet = (pid.wrapping_mul(64).wrapping_add(n) % 16384) * 4;
        let base = u32::from(Ipv4Addr::new(10, 200, 0, 0)) + subnet;
        let mut peer = VethPeer {
            namespace: format!("mio-reactor-dp-{pid}-{n}"),
            // Link names are at most 15 bytes.
            host_link: format!("dp{}h{n}", pid % 10_000_000),
            host_ip: Ipv4Addr::from(base + 1),
            peer_ip: Ipv4Addr::from(base + 2),
            vanished: false,
            programs: Vec::new(),
        };
        if !run("ip", &["netns", "add", &peer.namespace]) {
            eprintln!("note: `ip netns add` failed (not root? no iproute2?): skipping");
            peer.namespace.clear(); // nothing to remove
            return None;
        }
        let peer_link = format!("dp{}p{n}", pid % 10_000_000);
        let host_cidr = format!("{}/30", peer.host_ip);
        let peer_cidr = format!("{}/30", peer.peer_ip);
        let ns = peer.namespace.clone();
        let steps: [&[&str]; 6] = [
            &[
                "link",
                "add",
                &peer.host_link,
                "type",
                "veth",
                "peer",
                "name",
                &peer_link,
                "netns",
                &ns,
            ],
            &["addr", "add", &host_cidr, "dev", &peer.host_link],
            &["link", "set", &peer.host_link, "up"],
            &["-n", &ns, "addr", "add", &peer_cidr, "dev", &peer_link],
            &["-n", &ns, "link", "set", &peer_link, "up"],
            &["-n", &ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            if !run("ip", step) {
                panic!("ip {}: failed (see stderr)", step.join(" "));
            }
        }
        Some(peer)
    }

    /// Runs `program args` inside the namespace, its standard input and output piped: the
    /// program runs until its standard input closes (when this peer is dropped).
    pub fn spawn(&mut self, program: &str, args: &[&str]) -> ChildStdout {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.namespace, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ip netns exec");
        let stdout = child.stdout.take().expect("piped");
        self.programs.push(child);
        stdout
    }

    /// Limits what this side sends to the peer to `rate` (tc's units, `8mbit`) with a token
    /// bucket (`tbf`) on this side's end: a slow link, whose queue holds what senders are
    /// faster than it, charged to their sockets' send buffers until it leaves.
    pub fn limit_rate(&self, rate: &str) {
        let tbf = [
            "qdisc",
            "add",
            "dev",
            &self.host_link,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            "16kb",
            "limit",
            "4mb",
        ];
        assert!(run("tc", &tbf), "tc {}: failed (see stderr)", tbf.join(" "));
    }

    /// The peer vanishes: from now on every packet into or out of the namespace is dropped
    /// (an nftables table inside it), so that nothing, not even a RST, reaches this side.
    pub fn vanish(&mut self) {
        let rules = format!(
            "table inet {TABLE} {{
                chain input {{ type filter hook input priority 0; policy drop; }}
                chain output {{ type filter hook output priority 0; policy drop; }}
            }}"
        );
        let added = Command::new("ip")
            .args(["netns", "exec", &self.namespace, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut nft| {
                use std::io::Write;
                nft.stdin
                    .take()
                    .expect("piped")
                    .write_all(rules.as_bytes())?;
                nft.wait()
            })
            .is_ok_and(|status| status.success());
        assert!(added, "nft: could not add the drop rules");
        self.vanished = true;
    }
}

/// The nftables table of a vanished peer (inside its namespace, so the name cannot clash).
const TABLE: &str = "mio_reactor_vanished";

impl Drop for VethPeer {
    fn drop(&mut self) {
        for mut program in self.programs.drain(..) {
            drop(program.stdin.take()); // EOF: the program ends
            wait_or_kill(&mut program);
        }
        if self.namespace.is_empty() {
            return;
        }
        if self.vanished {
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.namespace,
                    "nft",
                    "delete",
                    "table",
                    "inet",
                    TABLE,
                ],
            );
        }
        // Deleting one end of a veth pair deletes the other; the namespace's end goes with
        // the namespace. Both are tried: a half-made pair must not stay behind.
        run("ip", &["link", "delete", &self.host_link]);
        run("ip", &["netns", "delete", &self.namespace]);
    }
}

/// Waits for `child` to exit, killing it if it takes longer than [`EXIT_WAIT`].
fn wait_or_kill(child: &mut Child) {
    let deadline = Instant::now() + EXIT_WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command to completion, its output silenced; whether it succeeded.
fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The next line `stdout` prints, or a failure after `wait`.
pub fn next_line(stdout: ChildStdout, wait: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(wait)
        .expect("the program in the namespace printed a line in time")
}
