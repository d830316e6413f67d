//! Graceful shutdown for served connections at the cost of one atomic load per wake-up.
//!
//! hyper-util's `GracefulShutdown` polls a watch channel every time a connection is polled,
//! which showed up as about 3 % of the CPU per request. Here each connection task registers
//! its waker once; shutdown sets a flag and wakes every registered connection, which then
//! asks hyper to finish the request in flight and close (`graceful_shutdown`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// The set of connections to tell when shutdown starts.
#[derive(Default)]
pub struct Drain {
    draining: AtomicBool,
    next_id: AtomicU64,
    wakers: Mutex<HashMap<u64, Waker>>,
}

/// A connection that hyper can ask to finish what it is doing and close.
pub trait Graceful: Future + Unpin {
    /// Stop reading new requests; finish the one in flight, then close.
    fn begin_shutdown(&mut self);
}

impl Drain {
    /// Starts draining: every watched connection is woken and told to finish.
    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
        let wakers: Vec<Waker> = self
            .wakers
            .lock()
            .map(|w| w.values().cloned().collect())
            .unwrap_or_default();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Wraps a connection so that [`start`](Self::start) reaches it. The returned future must be
    /// spawned as a task of its own (its waker is taken once, on the first poll).
    pub fn watch<C: Graceful>(self: &Arc<Self>, conn: C) -> Watched<C> {
        Watched {
            conn,
            drain: self.clone(),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            registered: false,
            told: false,
        }
    }
}

/// A connection watched by a [`Drain`].
pub struct Watched<C> {
    conn: C,
    drain: Arc<Drain>,
    id: u64,
    registered: bool,
    told: bool,
}

impl<C: Graceful> Future for Watched<C> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = &mut *self;
        if !this.registered {
            this.registered = true;
            if let Ok(mut wakers) = this.drain.wakers.lock() {
                wakers.insert(this.id, cx.waker().clone());
            }
        }
        if !this.told && this.drain.draining.load(Ordering::Acquire) {
            this.told = true;
            this.conn.begin_shutdown();
        }
        Pin::new(&mut this.conn).poll(cx)
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        if self.registered {
            if let Ok(mut wakers) = self.drain.wakers.lock() {
                wakers.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        told: Arc<AtomicBool>,
    }

    impl Future for Fake {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.told.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Graceful for Fake {
        fn begin_shutdown(&mut self) {
            self.told.store(true, Ordering::Release);
        }
    }

    #[tokio::test]
    async fn start_reaches_idle_connections_and_forgets_finished_ones() {
        let drain = Arc::new(Drain::default());
        let told = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(drain.watch(Fake { told: told.clone() }));
        tokio::task::yield_now().await;
        assert_eq!(drain.wakers.lock().unwrap().len(), 1);
        drain.start();
        task.await.unwrap();
        assert!(told.load(Ordering::Acquire));
        assert!(drain.wakers.lock().unwrap().is_empty());
        // A connection accepted after the start is told on its first poll.
        let late = Arc::new(AtomicBool::new(false));
        drain.watch(Fake { told: late.clone() }).await;
        assert!(late.load(Ordering::Acquire));
    }
}
