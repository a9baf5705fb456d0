//! The test's way into a host: a TCP port on the test's own loopback whose connections are made
//! again from inside the host's namespace (a thread that `setns` into it connects there) and
//! copied both ways. So the test reads a node's API or anvil's RPC without any interface or
//! route in the root namespace, and the lab's faults never touch these connections (they run
//! on the host's loopback, which no rule matches).

use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sched::CloneFlags;

/// A loopback port forwarded into a namespace; it stops accepting when dropped.
#[derive(Debug)]
pub struct Forward {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// Listens on a free loopback port and forwards each connection to `target` as seen from
    /// inside the namespace whose file is `ns` (`/run/netns/<name>`).
    pub fn start(ns: PathBuf, target: SocketAddr) -> io::Result<Forward> {
        File::open(&ns)?; // fail here, not in a connection thread, if there is no such namespace
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let ns = ns.clone();
                std::thread::spawn(move || {
                    if let Err(e) = relay(client, &ns, target) {
                        eprintln!("forward to {target} in {}: {e}", ns.display());
                    }
                });
            }
        });
        Ok(Forward { local, stop })
    }

    /// The test's end: `127.0.0.1:<port>`.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_secs(1));
    }
}

/// Runs `work` on a thread that has moved into the namespace `ns`: the sockets it makes belong
/// to that namespace, and stay usable from any thread afterwards.
pub fn in_namespace<T: Send>(ns: &Path, work: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(ns)?;
                work()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Moves the calling thread into the network namespace `ns` for good.
fn enter(ns: &Path) -> io::Result<()> {
    nix::sched::setns(File::open(ns)?, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Connects to `target` from inside the namespace `ns` (this thread moves into it for good)
/// and copies bytes both ways until either side closes.
fn relay(client: TcpStream, ns: &Path, target: SocketAddr) -> io::Result<()> {
    enter(ns)?;
    let upstream = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
        Ok(stream) => stream,
        Err(e) => {
            let _ = client.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    let (mut client_read, mut upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let to_target = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = to_target.join();
    Ok(())
}
