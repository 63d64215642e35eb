//! Group commit: the writes of concurrent callers made by one statement, in one transaction.
//!
//! Under load most of a small write's cost in Postgres is the statement around the row (the
//! round trip, binding the parameters, starting the executor, the commit and its WAL flush), not
//! the row itself. So a write joins a queue; whichever writes are waiting when a writer takes its
//! next batch are written together by [`Batch::write`], and each caller is answered once the
//! batch has committed. A lone write is written at once, as a batch of one: nothing waits for
//! company.
//!
//! A batch holds each [`Batch::key`] once: two changes of one row in one statement would fail or
//! lose one, so the later write waits, in its place, for a later batch. If a batch fails, its
//! writes are made one by one, so one write that cannot be made fails no other. Writers are
//! tasks of their own, on the service's tracker: a caller that goes away does not cut the batch
//! it leads, and shutdown waits for every batch in flight to commit and answer.

use std::collections::{HashSet, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

/// How a kind of write is made many at a time.
pub trait Batch: Send + Sync + 'static {
    type Write: Send + Sync + 'static;
    type Written: Send + 'static;
    type Error: Display + Send + 'static;
    type Key: Eq + Hash;

    /// What no two writes of one batch may share.
    fn key(write: &Self::Write) -> Self::Key;

    /// Makes `writes` in one statement and commits; what each came to, in the same order.
    fn write(
        &self,
        writes: &[&Self::Write],
    ) -> impl Future<Output = Result<Vec<Self::Written>, Self::Error>> + Send;

    /// What a caller gets if its batch's writer ended without answering (it panicked).
    fn writer_lost() -> Self::Error;
}

/// One field of every write in a batch (borrowed, or worked out from the write), as the array a
/// `SELECT ... FROM unnest($1, $2, ...)` statement binds: a batch is written as one row per
/// write, column by column.
pub fn column<'a, W, T>(batch: &[&'a W], field: impl Fn(&'a W) -> T) -> Vec<T> {
    batch.iter().copied().map(field).collect()
}

/// Whether each of a batch's `len` writes was made, from the `WITH ORDINALITY` numbers (from
/// 1) of those the statement answered; a number out of range is ignored.
pub fn answered(len: usize, numbers: impl IntoIterator<Item = i64>) -> Vec<bool> {
    let mut answers = vec![false; len];
    for n in numbers {
        if let Some(answer) = usize::try_from(n - 1)
            .ok()
            .and_then(|index| answers.get_mut(index))
        {
            *answer = true;
        }
    }
    answers
}

/// The bounds of a group commit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Writes per statement at most.
    pub max_batch: usize,
    /// Batches in flight at once. One would leave Postgres idle while its batch travels; a few
    /// keep it busy, and every waiting write still joins the next one.
    pub writers: usize,
}

/// The queue of writes and their writers. Cloning shares it.
pub struct GroupCommit<B: Batch> {
    inner: Arc<Inner<B>>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<B: Batch> {
    batch: B,
    limits: Limits,
    queue: Mutex<Queue<B>>,
    tracker: TaskTracker,
}

struct Queue<B: Batch> {
    waiting: VecDeque<Waiting<B>>,
    writers: usize,
}

struct Waiting<B: Batch> {
    write: B::Write,
    reply: oneshot::Sender<Result<B::Written, B::Error>>,
}

impl<B: Batch> GroupCommit<B> {
    pub fn new(batch: B, limits: Limits, tracker: TaskTracker) -> Self {
        assert!(
            limits.max_batch > 0 && limits.writers > 0,
            "a group commit needs room"
        );
        Self {
            inner: Arc::new(Inner {
                batch,
                limits,
                queue: Mutex::new(Queue {
                    waiting: VecDeque::new(),
                    writers: 0,
                }),
                tracker,
            }),
        }
    }

    /// Makes `write` with the writes waiting beside it; what it came to, once committed.
    pub async fn write(&self, write: B::Write) -> Result<B::Written, B::Error> {
        let (reply, written) = oneshot::channel();
        let start_writer = {
            let mut queue = self.queue();
            queue.waiting.push_back(Waiting { write, reply });
            let start = queue.writers < self.inner.limits.writers;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            self.inner.tracker.spawn(self.clone().write_while_waiting());
        }
        written.await.unwrap_or_else(|_| Err(B::writer_lost()))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue<B>> {
        self.inner
            .queue
            .lock()
            .expect("the group commit's queue is never poisoned")
    }

    /// Writes batches until nothing waits, then retires.
    async fn write_while_waiting(self) {
        loop {
            let batch = {
                let mut queue = self.queue();
                let batch = take_batch::<B>(&mut queue.waiting, self.inner.limits.max_batch);
                if batch.is_empty() {
                    queue.writers -= 1;
                    return;
                }
                batch
            };
            self.write_batch(batch).await;
        }
    }

    async fn write_batch(&self, batch: Vec<Waiting<B>>) {
        let writes: Vec<&B::Write> = batch.iter().map(|waiting| &waiting.write).collect();
        match self.inner.batch.write(&writes).await {
            Ok(written) => {
                for (waiting, written) in batch.into_iter().zip(written) {
                    let _ = waiting.reply.send(Ok(written));
                }
            }
            Err(err) if batch.len() == 1 => {
                let waiting = batch.into_iter().next().expect("a batch of one");
                let _ = waiting.reply.send(Err(err));
            }
            Err(err) => {
                tracing::debug!(error = %err, writes = batch.len(),
                    "a batch failed; making its writes one by one");
                for waiting in batch {
                    Box::pin(self.write_batch(vec![waiting])).await;
                }
            }
        }
    }
}

/// The oldest waiting writes, each key once, at most `max`; a write of a key already in the
/// batch stays queued, in its place, for the next one.
fn take_batch<B: Batch>(waiting: &mut VecDeque<Waiting<B>>, max: usize) -> Vec<Waiting<B>> {
    let mut batch = Vec::new();
    let mut keys = HashSet::new();
    let mut kept = VecDeque::new();
    while batch.len() < max {
        let Some(next) = waiting.pop_front() else {
            break;
        };
        if keys.insert(B::key(&next.write)) {
            batch.push(next);
        } else {
            kept.push_back(next);
        }
    }
    kept.append(waiting);
    *waiting = kept;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Records each batch's writes; a write of `u32::MAX` fails any batch it is in.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<(u32, u32)>>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl Batch for Arc<Recorder> {
        type Write = (u32, u32);
        type Written = u32;
        type Error = String;
        type Key = u32;

        fn key(write: &Self::Write) -> u32 {
            write.0
        }

        async fn write(&self, writes: &[&(u32, u32)]) -> Result<Vec<u32>, String> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.batches
                .lock()
                .unwrap()
                .push(writes.iter().map(|write| **write).collect());
            if writes.iter().any(|write| write.1 == u32::MAX) {
                return Err("unwritable".to_owned());
            }
            Ok(writes.iter().map(|write| write.1 * 10).collect())
        }

        fn writer_lost() -> String {
            "lost".to_owned()
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_batches_within_the_bounds_and_keys_never_repeat() {
        let recorder = Arc::new(Recorder::default());
        let tracker = TaskTracker::new();
        let group = GroupCommit::new(
            Arc::clone(&recorder),
            Limits {
                max_batch: 8,
                writers: 2,
            },
            tracker.clone(),
        );
        // 60 writes over 30 keys, each key written twice.
        let answers = futures::future::join_all((0..60u32).map(|n| group.write((n % 30, n)))).await;
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer, Ok(n as u32 * 10), "each caller gets its own answer");
        }
        let batches = recorder.batches.lock().unwrap().clone();
        assert!(
            batches.len() < 60,
            "writes were batched: {} batches",
            batches.len()
        );
        for batch in &batches {
            assert!(batch.len() <= 8, "a batch over the bound: {batch:?}");
            let keys: HashSet<u32> = batch.iter().map(|write| write.0).collect();
            assert_eq!(
                keys.len(),
                batch.len(),
                "a key twice in one batch: {batch:?}"
            );
        }
        assert!(recorder.most_in_flight.load(Ordering::SeqCst) <= 2);
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone() {
        let recorder = Arc::new(Recorder::default());
        let group = GroupCommit::new(
            Arc::clone(&recorder),
            Limits {
                max_batch: 8,
                writers: 1,
            },
            TaskTracker::new(),
        );
        let answers = futures::future::join_all(
            [(1, 1), (2, u32::MAX), (3, 3), (4, 4)].map(|write| group.write(write)),
        )
        .await;
        assert_eq!(answers[0], Ok(10));
        assert_eq!(answers[1], Err("unwritable".to_owned()));
        assert_eq!(answers[2], Ok(30));
        assert_eq!(answers[3], Ok(40));
    }
}
