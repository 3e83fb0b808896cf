//! Where the adapter's tasks run. Sockets and timers always come from `async-io`'s reactor
//! (async-std and smol share it), so only spawning differs between the runtimes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[cfg(not(any(feature = "async-std", feature = "smol")))]
compile_error!(
    "wskit-async-std needs a runtime feature: `async-std` (the default) or `smol` \
     (a custom executor is then still possible with `Spawner::new`)"
);

/// A boxed task, as handed to a [`Spawner::new`] function.
pub type BoxTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs the adapter's tasks: one per connection, the accept loop, the timer driver and the
/// route's async handlers. Tasks are detached; the adapter tracks their end itself.
///
/// The default ([`Spawner::default`]) is async-std's global executor when the `async-std`
/// feature is on (the default), otherwise smol's global executor. Spawning on a runtime's own
/// executor costs no extra allocation; [`Spawner::new`] boxes each task once.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::sync::Arc;
/// let ex = Arc::new(smol::Executor::new());
/// let spawner = wskit_async_std::Spawner::executor(ex.clone());
/// // ... Builder::new(server).spawner(spawner), then run `ex` on your threads.
/// # }
/// ```
#[derive(Clone)]
pub struct Spawner(Kind);

#[derive(Clone)]
enum Kind {
    #[cfg(feature = "async-std")]
    AsyncStd,
    #[cfg(feature = "smol")]
    Smol,
    #[cfg(feature = "smol")]
    Executor(Arc<smol::Executor<'static>>),
    Custom(Arc<dyn Fn(BoxTask) + Send + Sync>),
}

impl Spawner {
    /// async-std's global executor (`async_std::task::spawn`).
    #[cfg(feature = "async-std")]
    pub fn async_std() -> Self {
        Spawner(Kind::AsyncStd)
    }

    /// smol's global executor (`smol::spawn`; `SMOL_THREADS` sets its thread count).
    #[cfg(feature = "smol")]
    pub fn smol() -> Self {
        Spawner(Kind::Smol)
    }

    /// Your own `smol::Executor` (or `async_executor::Executor`); you run it, e.g. with
    /// `ex.run(..)` on a few threads. Tasks only make progress while something runs it.
    #[cfg(feature = "smol")]
    pub fn executor(ex: Arc<smol::Executor<'static>>) -> Self {
        Spawner(Kind::Executor(ex))
    }

    /// Any other executor: `spawn` must run the task to completion (detached).
    pub fn new(spawn: impl Fn(BoxTask) + Send + Sync + 'static) -> Self {
        Spawner(Kind::Custom(Arc::new(spawn)))
    }

    /// Spawns a detached task.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.0 {
            #[cfg(feature = "async-std")]
            Kind::AsyncStd => drop(async_std::task::spawn(future)),
            #[cfg(feature = "smol")]
            Kind::Smol => smol::spawn(future).detach(),
            #[cfg(feature = "smol")]
            Kind::Executor(ex) => ex.spawn(future).detach(),
            Kind::Custom(spawn) => spawn(Box::pin(future)),
        }
    }
}

impl Default for Spawner {
    fn default() -> Self {
        #[cfg(feature = "async-std")]
        return Spawner::async_std();
        #[cfg(all(feature = "smol", not(feature = "async-std")))]
        return Spawner::smol();
        #[cfg(not(any(feature = "async-std", feature = "smol")))]
        unreachable!("a runtime feature is required")
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.0 {
            #[cfg(feature = "async-std")]
            Kind::AsyncStd => "async-std",
            #[cfg(feature = "smol")]
            Kind::Smol => "smol",
            #[cfg(feature = "smol")]
            Kind::Executor(_) => "smol::Executor",
            Kind::Custom(_) => "custom",
        };
        f.debug_tuple("Spawner").field(&name).finish()
    }
}
