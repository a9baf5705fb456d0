//! Child processes for the devnet and the tests: each leads a process group of its own, and the
//! whole group is stopped when its [`Proc`] is stopped or dropped, so a failing test or an
//! interrupted devnet leaves nothing behind.
//!
//! ```text
//!   Proc::piped ── stdout+stderr lines ──▶ test output ([name] line) + wait_for_line
//!   Proc::logged ─ stdout+stderr ─────────▶ a log file (the devnet's <dir>/logs/)
//!   stop(grace): SIGTERM to the group, SIGKILL after grace │ drop / kill: SIGKILL to the group
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process that leads its own process group; the group is killed on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub name: String,
    /// The output lines, for [`Proc::piped`] children.
    lines: Option<mpsc::Receiver<String>>,
}

impl Proc {
    /// Spawns `cmd`, forwarding its stdout and stderr lines (prefixed with `name`) to this
    /// process's stderr and to [`Proc::wait_for_line`].
    pub fn piped(name: &str, mut cmd: Command) -> std::io::Result<Proc> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn()?;
        let (tx, lines) = mpsc::channel();
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped above")),
            Box::new(child.stderr.take().expect("piped above")),
        ];
        for stream in streams {
            let tx = tx.clone();
            let name = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Proc { child, name: name.to_owned(), lines: Some(lines) })
    }

    /// Spawns `cmd` with its stdout and stderr appended to the file `log`.
    pub fn logged(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<Proc> {
        let file = std::fs::File::create(log)?;
        cmd.stdout(file.try_clone()?).stderr(file).stdin(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn()?;
        Ok(Proc { child, name: name.to_owned(), lines: None })
    }

    /// Waits for an output line containing `needle` and returns it; panics with the name and
    /// the needle after `timeout` (a test helper).
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let lines = self.lines.as_ref().unwrap_or_else(|| panic!("{}: output goes to a log file", self.name));
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("{}: no line containing {needle:?} within {timeout:?}", self.name),
            }
        }
    }

    /// Every output line not yet taken by [`Proc::wait_for_line`] or an earlier call, without
    /// waiting.
    pub fn lines_so_far(&self) -> Vec<String> {
        let lines = self.lines.as_ref().unwrap_or_else(|| panic!("{}: output goes to a log file", self.name));
        lines.try_iter().collect()
    }

    /// An error naming the process if it has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("{} exited early ({status}); see its log", self.name)),
            Ok(None) => Ok(()),
            Err(e) => Err(format!("cannot check {}: {e}", self.name)),
        }
    }

    /// SIGTERM to the group, then SIGKILL if it has not exited after `grace`.
    pub fn stop(mut self, grace: Duration) {
        self.signal_group("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop within {grace:?}; killing it", self.name);
    }

    /// SIGKILL to the process and everything it started, no chance to flush.
    pub fn kill(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal_group(&self, signal: &str) {
        let group = format!("-{}", self.child.id());
        let _ =
            Command::new("kill").args([&format!("-{signal}"), "--", &group]).stderr(Stdio::null()).status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The repository root (the workspace of this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ has a parent").to_path_buf()
}

/// The anvil to run: `explicit` (a flag), else `FIXD_ANVIL`, else `.tools/bin/anvil` in the
/// working directory or the repository (`scripts/install-tools.sh` installs it there), else
/// `anvil` on PATH.
pub fn anvil_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os("FIXD_ANVIL") {
        return PathBuf::from(path);
    }
    [PathBuf::from(".tools/bin/anvil"), repo_root().join(".tools/bin/anvil")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("anvil"))
}

/// The first of `run` consecutive loopback ports that are free for TCP and UDP when asked (the
/// caller binds them soon after), or `None`.
///
/// Taken from 10000..32000, below Linux's ephemeral range (32768..60999), so that the outgoing
/// connections of the many processes a test run starts (their dials take ephemeral ports) can
/// never grab one between this check and the bind. Each process walks the range from its own
/// random start and skips ports in use, so concurrent tests and devnets do not pick the same.
pub fn free_ports(run: u16) -> Option<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let start = (std::process::id().wrapping_mul(7919) ^ nanos) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    let free = |port: u16| {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
    };
    let run = u32::from(run.max(1));
    for _ in 0..SPAN {
        let first = LOW + NEXT.fetch_add(run, Ordering::SeqCst) % (SPAN - run);
        let first = u16::try_from(first).ok()?;
        if (0..run).all(|k| u16::try_from(k).ok().and_then(|k| first.checked_add(k)).is_some_and(free)) {
            return Some(first);
        }
    }
    None
}
