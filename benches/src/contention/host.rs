//! Souk's actors need an actix `System`; the harness's clients run on a multi-threaded
//! tokio runtime. The system lives on its own thread, as it would in a node, and the
//! clients reach it through actor addresses and sockets.

use std::future::Future;

pub struct ActixHost {
    system: actix_rt::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActixHost {
    /// Starts a system thread, runs `make` on it and hands back what it built.
    pub async fn start<T, F, Fut>(make: F) -> anyhow::Result<(Self, T)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<T>> + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("souk-bench-actix".into())
            .spawn(move || {
                let system = actix_rt::System::new();
                let (handle, made) =
                    system.block_on(async move { (actix_rt::System::current(), make().await) });
                let failed = made.is_err();
                let _ = sender.send((handle, made));
                if !failed {
                    let _ = system.run();
                }
            })?;
        let (system, made) = receiver.await?;
        let mut host = Self {
            system,
            thread: Some(thread),
        };
        match made {
            Ok(value) => Ok((host, value)),
            Err(error) => {
                host.thread.take();
                Err(error)
            }
        }
    }
}

impl Drop for ActixHost {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
