//! The queue between a stream's task and its response body, bounded in **bytes**: the frames
//! that restdis has built but hyper has not yet taken. [`Sender::push`] refuses a frame that
//! would take the queue past its bound ([`PushError::Full`]); the stream's task then ends the
//! stream with [`Sender::end_with`], which frees every waiting frame at once and leaves only
//! the final event. A frame pushed into an empty queue is always taken, so one message larger
//! than the bound still goes through; the bound is therefore `max_bytes` or one message,
//! whichever is larger.
//!
//! The receiving side ([`Receiver`]) is polled by hyper; dropping it (hyper gave up on the
//! client) wakes [`Sender::gone`], so the task stops and its Redis connection closes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds too many bytes already: the client does not keep up.
    Full,
    /// The receiver is gone: the client left.
    Gone,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// Bytes in `frames`.
    bytes: usize,
    /// No more frames will come (after those queued).
    ended: bool,
    /// The receiver was dropped.
    gone: bool,
    waker: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    gone: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here can panic while holding the lock; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The task's side.
pub struct Sender {
    shared: Arc<Shared>,
    max_bytes: usize,
}

/// The body's side.
pub struct Receiver {
    shared: Arc<Shared>,
}

/// A queue that holds at most `max_bytes` (or one frame, if that is larger).
pub fn channel(max_bytes: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        gone: Notify::new(),
    });
    (
        Sender {
            shared: shared.clone(),
            max_bytes,
        },
        Receiver { shared },
    )
}

impl Sender {
    /// Queues `frame`, unless that takes a non-empty queue past the bound.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        let waker = {
            let mut state = self.shared.lock();
            if state.gone {
                return Err(PushError::Gone);
            }
            if state.bytes > 0 && state.bytes.saturating_add(frame.len()) > self.max_bytes {
                return Err(PushError::Full);
            }
            state.bytes += frame.len();
            state.frames.push_back(frame);
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Queues `frame` only if nothing is waiting (for heartbeats: a client with frames
    /// waiting gets bytes anyway). Fails only when the receiver is gone.
    pub fn push_if_idle(&self, frame: Bytes) -> Result<(), PushError> {
        if self.queued_bytes() > 0 {
            return if self.shared.lock().gone {
                Err(PushError::Gone)
            } else {
                Ok(())
            };
        }
        self.push(frame)
    }

    /// Discards every waiting frame (their memory is freed now), queues `last`, and ends the
    /// queue: the body sends `last` and then finishes.
    pub fn end_with(self, last: Bytes) {
        let dropped = {
            let mut state = self.shared.lock();
            let dropped = std::mem::take(&mut state.frames);
            state.bytes = last.len();
            state.frames.push_back(last);
            dropped
        };
        drop(dropped);
        // Dropping `self` ends the queue and wakes the body.
    }

    /// Bytes waiting now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Resolves once the receiver is gone.
    pub async fn gone(&self) {
        loop {
            // Ask for the notification before looking, so none is missed in between.
            let notified = self.shared.gone.notified();
            if self.shared.lock().gone {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.lock();
            state.ended = true;
            state.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Receiver {
    /// The next frame; `None` once the queue has ended and is empty.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut state = self.shared.lock();
        if let Some(frame) = state.frames.pop_front() {
            state.bytes -= frame.len();
            return Poll::Ready(Some(frame));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.gone = true;
            state.bytes = 0;
            std::mem::take(&mut state.frames)
        };
        drop(dropped);
        self.shared.gone.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(rx: &mut Receiver) -> Poll<Option<Bytes>> {
        rx.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn bounds_bytes_not_frames() {
        let (tx, mut rx) = channel(10);
        tx.push(Bytes::from_static(b"aaaa")).unwrap();
        tx.push(Bytes::from_static(b"bbbbbb")).unwrap();
        assert_eq!(tx.queued_bytes(), 10);
        assert_eq!(tx.push(Bytes::from_static(b"c")), Err(PushError::Full));
        assert_eq!(next(&mut rx), Poll::Ready(Some(Bytes::from_static(b"aaaa"))));
        assert_eq!(tx.queued_bytes(), 6);
        tx.push(Bytes::from_static(b"cccc")).unwrap();
        assert_eq!(tx.push(Bytes::from_static(b"d")), Err(PushError::Full));
    }

    #[test]
    fn one_large_frame_passes_an_empty_queue() {
        let (tx, mut rx) = channel(10);
        tx.push(Bytes::from(vec![b'x'; 100])).unwrap();
        assert_eq!(tx.push(Bytes::from_static(b"y")), Err(PushError::Full));
        assert!(matches!(next(&mut rx), Poll::Ready(Some(b)) if b.len() == 100));
        tx.push(Bytes::from_static(b"y")).unwrap();
    }

    #[test]
    fn end_with_frees_the_backlog_and_ends_after_the_last_frame() {
        let (tx, mut rx) = channel(1000);
        for _ in 0..10 {
            tx.push(Bytes::from(vec![b'x'; 100])).unwrap();
        }
        assert_eq!(tx.push(Bytes::from_static(b"z")), Err(PushError::Full));
        tx.end_with(Bytes::from_static(b"bye"));
        assert_eq!(next(&mut rx), Poll::Ready(Some(Bytes::from_static(b"bye"))));
        assert_eq!(next(&mut rx), Poll::Ready(None));
    }

    #[test]
    fn heartbeats_only_when_idle_and_a_dropped_receiver_is_seen() {
        let (tx, mut rx) = channel(1000);
        assert_eq!(next(&mut rx), Poll::Pending);
        tx.push_if_idle(Bytes::from_static(b"ping")).unwrap();
        tx.push_if_idle(Bytes::from_static(b"ping")).unwrap();
        assert_eq!(tx.queued_bytes(), 4);
        drop(rx);
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(tx.push(Bytes::from_static(b"x")), Err(PushError::Gone));
        assert_eq!(tx.push_if_idle(Bytes::from_static(b"x")), Err(PushError::Gone));
        let gone = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(5), tx.gone()).await });
        assert!(gone.is_ok());
    }
}
