//! Ctrl-C as a value: set once by the signal handler, checked between requests and raced
//! against every batch, so an interrupted run stops the server and keeps its finished rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Set by Ctrl-C; checked between requests and raced against every request.
#[derive(Debug, Default, Clone)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Marks the run interrupted and wakes whoever waits.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// True once triggered.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once triggered.
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if !self.is_set() {
            notified.await;
        }
    }
}

/// Triggers `interrupt` on Ctrl-C.
pub fn spawn_ctrl_c(interrupt: Interrupt) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping the server and keeping finished cells");
            crate::util::interrupt::note_process_interrupted();
            interrupt.trigger();
        }
    })
}
