//! The node's background thread: a tokio runtime on one thread of its own, running at
//! a lower CPU priority than the threads that serve requests (its nice value
//! [`NICE_INCREMENT`] above theirs, on Linux). Work that no request waits for (the
//! email workers) runs here, so that when the cores are full the checkouts take them
//! first and the mail waits; when they are not, the mail runs as fast as before.
//!
//! The scheduler still gives the thread a share when the cores are full (a weight of
//! about a tenth of a serving thread's at nice 10), so background work is slowed, never
//! starved.

use std::future::Future;
use std::thread::JoinHandle as ThreadHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How much higher the background thread's nice value is than that of the thread that
/// starts it (capped at 19, the lowest priority).
pub const NICE_INCREMENT: i32 = 10;

/// The running background thread. Dropping it drops `stop`, which the thread sees as
/// its signal to end, dropping the tasks still on it; nothing waits for it then.
pub struct BackgroundThread {
    runtime: Handle,
    stop: oneshot::Sender<()>,
    thread: ThreadHandle<()>,
}

impl BackgroundThread {
    /// Starts the thread and its runtime.
    pub fn start() -> std::io::Result<Self> {
        let (runtime_sender, runtime_receiver) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("souk-background".to_owned())
            .spawn(move || {
                lower_priority();
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = runtime_sender.send(Err(error));
                        return;
                    }
                };
                let _ = runtime_sender.send(Ok(runtime.handle().clone()));
                // Runs the spawned tasks until told to stop (or the owner is gone).
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })?;
        let runtime = runtime_receiver.recv().map_err(|_| {
            std::io::Error::other("the background thread ended before its runtime started")
        })??;
        Ok(Self {
            runtime,
            stop,
            thread,
        })
    }

    /// Runs `task` on the background thread.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(task)
    }

    /// Ends the thread, dropping the tasks still on it, and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Raises the calling thread's nice value by [`NICE_INCREMENT`]. On Linux a thread's
/// nice value is its own, so this leaves the rest of the process as it was.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let target = (current_nice() + NICE_INCREMENT).min(19);
        // SAFETY: setpriority reads no memory of ours; `who` 0 is the calling thread.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, target) };
        if result != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "background thread: could not lower its priority; it runs at the serving threads'"
            );
        }
    }
}

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
fn current_nice() -> i32 {
    // SAFETY: getpriority reads no memory of ours; `who` 0 is the calling thread. Its
    // -1 is also a valid nice value, which is what it is read as.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_a_thread_of_lower_priority_that_stops_when_told() {
        let background = BackgroundThread::start().expect("background thread starts");
        let (name, nice) = background
            .spawn(async {
                let name = std::thread::current().name().map(str::to_owned);
                #[cfg(target_os = "linux")]
                let nice = Some(current_nice());
                #[cfg(not(target_os = "linux"))]
                let nice: Option<i32> = None;
                (name, nice)
            })
            .await
            .expect("the task runs");
        assert_eq!(name.as_deref(), Some("souk-background"));
        #[cfg(target_os = "linux")]
        {
            let serving = current_nice();
            assert_eq!(nice, Some((serving + NICE_INCREMENT).min(19)));
        }
        let _ = nice;

        // A task still running when the thread stops is dropped with it.
        let pending = background.spawn(std::future::pending::<()>());
        tokio::time::timeout(std::time::Duration::from_secs(5), background.stop())
            .await
            .expect("the thread stops");
        let outcome = pending.await;
        assert!(
            outcome.as_ref().is_err_and(|error| error.is_cancelled()),
            "{outcome:?}"
        );
    }
}
