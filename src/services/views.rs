//! View counting with group commit: requests queue on a channel, and one
//! worker writes everything queued so far in a single transaction. While a
//! write runs, the next batch gathers, so batches grow with load and no
//! delay is added when idle. Each request is answered only after its batch
//! commits, with the count its own view made: exact, and nothing answered is
//! ever lost. On shutdown the queue is drained before the worker stops.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::Id;
use crate::error::{Error, Result};
use crate::ports::store::{Store, StoreError};

const MAX_BATCH: usize = 8192;

struct ViewRequest {
    tweet: Id,
    reply: oneshot::Sender<Result<i64>>,
}

#[derive(Clone)]
pub struct ViewCounter {
    queue: mpsc::Sender<ViewRequest>,
}

impl ViewCounter {
    pub fn start(store: Arc<dyn Store>, tasks: &TaskTracker, stop: CancellationToken) -> Self {
        let (queue, rx) = mpsc::channel(64 * 1024);
        tasks.spawn(run(store, rx, stop));
        Self { queue }
    }

    /// Counts one view; returns the tweet's count including it.
    pub async fn add_view(&self, tweet: Id) -> Result<i64> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Unavailable { what: "view counting", source: anyhow::anyhow!("shutting down") };
        self.queue.send(ViewRequest { tweet, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<ViewRequest>, stop: CancellationToken) {
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            request = rx.recv() => request,
            _ = stop.cancelled() => None,
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        flush(store.as_ref(), &mut batch).await;
    }
    // Stopping: answer whatever is still queued.
    rx.close();
    while let Some(request) = rx.recv().await {
        batch.push(request);
        if batch.len() >= MAX_BATCH {
            flush(store.as_ref(), &mut batch).await;
        }
    }
    flush(store.as_ref(), &mut batch).await;
}

async fn flush(store: &dyn Store, batch: &mut Vec<ViewRequest>) {
    if batch.is_empty() {
        return;
    }
    let mut per_tweet: HashMap<Id, i64> = HashMap::new();
    for r in batch.iter() {
        *per_tweet.entry(r.tweet).or_default() += 1;
    }
    let views: Vec<(Id, i64)> = per_tweet.iter().map(|(id, n)| (*id, *n)).collect();
    metrics::histogram!("chirp_view_batch_size").record(batch.len() as f64);
    match store.add_views(&views).await {
        Ok(counts) => {
            let mut after: HashMap<Id, i64> = counts.into_iter().collect();
            // The batch's views of a tweet take the counts just below its new total, in order.
            let mut next: HashMap<Id, i64> =
                per_tweet.iter().filter_map(|(id, n)| after.remove(id).map(|total| (*id, total - n + 1))).collect();
            for r in batch.drain(..) {
                let answer = match next.get_mut(&r.tweet) {
                    Some(count) => {
                        let mine = *count;
                        *count += 1;
                        Ok(mine)
                    }
                    None => Err(Error::NotFound),
                };
                let _ = r.reply.send(answer);
            }
        }
        Err(e) => {
            let unavailable = matches!(e, StoreError::Unavailable(_));
            tracing::error!(error = format!("{:#}", anyhow::Error::from(e)), views = batch.len(), "view batch failed");
            for r in batch.drain(..) {
                let source = anyhow::anyhow!("the view batch failed");
                let e = if unavailable { Error::Unavailable { what: "the database", source } } else { Error::Internal(source) };
                let _ = r.reply.send(Err(e));
            }
        }
    }
}
