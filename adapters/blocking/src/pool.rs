//! A cached pool of worker threads and the tiny executor built on it.
//!
//! Workers run [`Job`]s: handshakes (see `handshake.rs`), flushing a connection's queued
//! output (see `conn.rs`) and polling the core's async handlers ([`wskit::Task`]). A worker is
//! started when a job arrives and every worker is busy, and exits after [`IDLE_EXIT`] without
//! work, so the pool is as large as the concurrent work and no larger: idle connections cost no
//! worker. There is no upper bound, because a worker can be held by a handshake (at most the
//! handshake and auth timeouts) or by a write to a client that does not read (for at most as
//! long as that connection lives); a bound would let such clients starve everyone else.
//!
//! The executor is the classic one: a task is its future behind a mutex, and its [`Waker`]
//! submits the task to the pool again. [`block_on_until`] drives one future on the calling
//! thread (the handshake's authentication), parking between polls.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a worker waits for a job before exiting.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// Work for a pool thread. `Arc` receivers let a job be queued without another allocation.
pub(crate) trait Job: Send + Sync + 'static {
    /// Runs on a pool thread.
    fn run(self: Arc<Self>);
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<dyn Job>>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers alive.
    threads: usize,
    /// Idle workers exit at once instead of after [`IDLE_EXIT`].
    closed: bool,
}

/// The worker pool.
pub(crate) struct Pool {
    state: Mutex<State>,
    work: Condvar,
    stack_size: usize,
}

impl Pool {
    pub(crate) fn new(stack_size: usize) -> Arc<Self> {
        Arc::new(Pool {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            stack_size,
        })
    }

    /// Queues a job; starts a worker when every idle one already has a job to take.
    pub(crate) fn submit(self: &Arc<Self>, job: Arc<dyn Job>) {
        let mut state = self.state.lock();
        state.queue.push_back(job);
        if state.queue.len() <= state.idle {
            self.work.notify_one();
            return;
        }
        state.threads += 1;
        drop(state);
        let pool = self.clone();
        let spawned = thread::Builder::new()
            .name("wskit-pool".into())
            .stack_size(self.stack_size)
            .spawn(move || pool.work());
        if let Err(e) = spawned {
            // Out of threads: the job waits for a busy worker to come back.
            tracing::warn!(error = %e, "could not start a pool thread");
            self.state.lock().threads -= 1;
        }
    }

    fn work(&self) {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job.run();
                state = self.state.lock();
                continue;
            }
            if state.closed {
                break;
            }
            state.idle += 1;
            let timed_out = self.work.wait_for(&mut state, IDLE_EXIT).timed_out();
            state.idle -= 1;
            if timed_out && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }

    /// Lets idle workers exit now (the server stopped). Jobs submitted later still run.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.work.notify_all();
    }

    /// Runs `f` once on the pool.
    pub(crate) fn execute(self: &Arc<Self>, f: impl FnOnce() + Send + 'static) {
        let job: Box<dyn FnOnce() + Send> = Box::new(f);
        self.submit(Arc::new(Once(Mutex::new(Some(job)))));
    }

    /// Runs a future to completion on the pool.
    pub(crate) fn spawn(self: &Arc<Self>, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let task = Arc::new(Task {
            future: Mutex::new(Some(future)),
            queued: AtomicBool::new(true),
            pool: self.clone(),
        });
        self.submit(task);
    }

    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.state.lock().threads
    }
}

/// A closure run once.
struct Once(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Job for Once {
    fn run(self: Arc<Self>) {
        if let Some(f) = self.0.lock().take() {
            f();
        }
    }
}

/// A spawned future. Its waker is the task itself.
struct Task {
    /// `None` once finished.
    future: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    /// In the pool's queue (or about to be): further wakes need not queue it again.
    queued: AtomicBool,
    pool: Arc<Pool>,
}

impl Job for Task {
    fn run(self: Arc<Self>) {
        // Cleared before polling: a wake during the poll queues the task again.
        self.queued.store(false, Ordering::SeqCst);
        let waker = Waker::from(self.clone());
        let mut slot = self.future.lock();
        if let Some(future) = slot.as_mut() {
            if future
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                *slot = None;
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            let pool = self.pool.clone();
            pool.submit(self);
        }
    }
}

/// Unparks the thread that blocks on a future.
pub(crate) struct Unpark(pub(crate) Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Why [`block_on_until`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The deadline passed.
    TimedOut,
    /// `stop` turned true.
    Stopped,
}

/// Polls `future` on this thread until it completes, `deadline` passes or `stop` is set (check
/// it after unparking this thread).
pub(crate) fn block_on_until<T>(
    future: Pin<Box<dyn Future<Output = T> + Send>>,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<T, Interrupted> {
    let mut future = future;
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Ok(value);
        }
        if stop.load(Ordering::SeqCst) {
            return Err(Interrupted::Stopped);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Interrupted::TimedOut);
        }
        // Spurious unparks only cost a poll.
        thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Pending until another thread completes it.
    struct Later(Arc<Mutex<(bool, Option<Waker>)>>);

    impl Future for Later {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = self.0.lock();
            if state.0 {
                return Poll::Ready(());
            }
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn later() -> (Later, impl FnOnce()) {
        let state = Arc::new(Mutex::new((false, None::<Waker>)));
        let done = state.clone();
        (Later(state), move || {
            let waker = {
                let mut s = done.lock();
                s.0 = true;
                s.1.take()
            };
            waker.expect("polled once").wake();
        })
    }

    #[test]
    fn spawned_task_resumes_when_woken_from_another_thread() {
        let pool = Pool::new(256 * 1024);
        let (fut, complete) = later();
        let (tx, rx) = mpsc::channel();
        pool.spawn(Box::pin(async move {
            fut.await;
            tx.send(()).unwrap();
        }));
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        complete();
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the task finished");
    }

    #[test]
    fn idle_workers_exit_once_closed() {
        let pool = Pool::new(256 * 1024);
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            pool.spawn(Box::pin(async move { tx.send(()).unwrap() }));
        }
        for _ in 0..4 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert!(pool.threads() >= 1);
        pool.close();
        let until = Instant::now() + Duration::from_secs(5);
        while pool.threads() > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.threads(), 0);
    }

    #[test]
    fn block_on_until_times_out_and_stops() {
        let stop = AtomicBool::new(false);
        let (fut, _complete) = later();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        assert_eq!(
            block_on_until(Box::pin(fut), deadline, &stop),
            Err(Interrupted::TimedOut)
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        stop.store(true, Ordering::SeqCst);
        let (fut, _complete) = later();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            block_on_until(Box::pin(fut), far, &stop),
            Err(Interrupted::Stopped)
        );
        let (fut, complete) = later();
        let t = thread::spawn(move || {
            block_on_until(
                Box::pin(fut),
                Instant::now() + Duration::from_secs(5),
                &AtomicBool::new(false),
            )
        });
        thread::sleep(Duration::from_millis(20));
        complete();
        assert_eq!(t.join().unwrap(), Ok(()));
    }
}
