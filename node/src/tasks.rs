//! Every task a node spawns, by name, with one shutdown path.
//!
//! ```text
//!   node::start ── Tasks::service("network" | "settlements" | …) ──▶ JoinSet: the first to end
//!        │                                                         (error, panic, or return)
//!        │                                                          stops the node, by name
//!   services ─── TaskSpawner::spawn("bond check" | "review" …) ──▶ TaskTracker: helpers that
//!        │                                                          end on their own
//!   shutdown: cancel the token ──▶ every service and helper returns ──▶ wait for all ──▶ flush
//! ```
//!
//! A panic keeps the task's name: a panicking service stops the node with "task NAME panicked:
//! MESSAGE", and a panicking helper is logged as an error with its name (the service that
//! spawned it goes on, and catch-up recovers what the helper would have delivered).

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's services (long-running, critical) and helpers (short, spawned by services).
#[derive(Debug)]
pub struct Tasks {
    cancel: CancellationToken,
    services: JoinSet<(&'static str, anyhow::Result<()>)>,
    helpers: TaskTracker,
}

/// Spawns helper tasks that stop with the node. Cloneable; handed to the services.
#[derive(Clone, Debug)]
pub struct TaskSpawner {
    cancel: CancellationToken,
    helpers: TaskTracker,
}

impl Tasks {
    pub fn new(cancel: CancellationToken) -> Self {
        Tasks { cancel, services: JoinSet::new(), helpers: TaskTracker::new() }
    }

    /// The token every service watches.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// A spawner of helpers for the services.
    pub fn spawner(&self) -> TaskSpawner {
        TaskSpawner { cancel: self.cancel.clone(), helpers: self.helpers.clone() }
    }

    /// Spawns a service: it runs until the node stops (it watches [`Tasks::cancel_token`] and
    /// returns), and ending any other way stops the node.
    pub fn service(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.services.spawn(async move {
            let ended = AssertUnwindSafe(task).catch_unwind().await;
            (name, ended.unwrap_or_else(|panic| Err(anyhow::anyhow!("panicked: {}", panic_message(&*panic)))))
        });
    }

    /// Waits until a service ends on its own, and says which and why.
    pub async fn first_failure(&mut self) -> anyhow::Error {
        match self.services.join_next().await {
            Some(Ok((name, Ok(())))) => anyhow::anyhow!("task {name} stopped unexpectedly"),
            Some(Ok((name, Err(e)))) => e.context(format!("task {name} failed")),
            Some(Err(join)) => anyhow::anyhow!("a task was aborted: {join}"),
            None => {
                // No services: nothing can fail.
                std::future::pending::<()>().await;
                unreachable!("pending never resolves")
            }
        }
    }

    /// Cancels every service and helper and waits for all of them.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while let Some(ended) = self.services.join_next().await {
            if let Ok((name, Err(e))) = ended {
                tracing::warn!(task = name, error = %e, "task ended with an error during shutdown");
            }
        }
        self.helpers.close();
        self.helpers.wait().await;
    }
}

impl TaskSpawner {
    /// Spawns a helper named `name`. It is dropped at its next await once the node stops; a
    /// panic is logged with the name.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.helpers.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                ended = AssertUnwindSafe(task).catch_unwind() => {
                    if let Err(panic) = ended {
                        tracing::error!(task = name, panic = panic_message(&*panic), "helper task panicked");
                    }
                }
            }
        });
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_panicking_service_stops_the_node_under_its_name() {
        let mut tasks = Tasks::new(CancellationToken::new());
        let token = tasks.cancel_token();
        tasks.service("quiet", async move {
            token.cancelled().await;
            Ok(())
        });
        tasks.service("faulty", async { panic!("the disk is on fire") });
        let failure = format!("{:#}", tasks.first_failure().await);
        assert!(
            failure.contains("task faulty failed") && failure.contains("the disk is on fire"),
            "{failure}"
        );
        tasks.shutdown().await;
    }

    #[tokio::test]
    async fn helpers_stop_with_the_node_and_a_panic_does_not_take_the_node_down() {
        let mut tasks = Tasks::new(CancellationToken::new());
        let spawner = tasks.spawner();
        spawner.spawn("panicking helper", async { panic!("boom") });
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        spawner.spawn("waiting helper", async move {
            std::future::pending::<()>().await;
            drop(tx);
        });
        let token = tasks.cancel_token();
        tasks.service("service", async move {
            token.cancelled().await;
            Ok(())
        });
        // The panicking helper did not end the service.
        let ended = tokio::time::timeout(Duration::from_millis(200), tasks.first_failure()).await;
        assert!(ended.is_err(), "no service ended");
        tokio::time::timeout(Duration::from_secs(5), tasks.shutdown())
            .await
            .expect("shutdown waits for helpers");
        // The waiting helper was dropped, and with it its sender.
        assert_eq!(rx.recv().await, None);
    }
}
