//! Live notification streams. A new notification is announced as
//! (owner, notification id); every open stream of that owner on any node
//! then loads and sends it. In-process: a broadcast channel. With Redis,
//! announcements go through Redis pub/sub, so a like handled by one node
//! reaches a stream held by another.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::Id;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub owner: Id,
    pub notification: Id,
}

enum Fanout {
    Local,
    Redis { conn: redis::aio::ConnectionManager, channel: String },
}

pub struct LiveHub {
    local: broadcast::Sender<Announcement>,
    fanout: Fanout,
}

fn encode(a: Announcement) -> String {
    format!("{}:{}", a.owner, a.notification)
}

fn decode(s: &str) -> Option<Announcement> {
    let (owner, notification) = s.split_once(':')?;
    Some(Announcement { owner: owner.parse().ok()?, notification: notification.parse().ok()? })
}

impl LiveHub {
    pub fn local() -> Arc<Self> {
        Arc::new(Self { local: broadcast::channel(4096).0, fanout: Fanout::Local })
    }

    /// Announces through Redis pub/sub on `{prefix}notifications`, and relays
    /// what any node announces to this node's streams.
    pub async fn redis(url: &str, prefix: &str, tasks: &TaskTracker, stop: CancellationToken) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client.clone()).await?;
        let channel = format!("{prefix}notifications");
        let hub = Arc::new(Self { local: broadcast::channel(4096).0, fanout: Fanout::Redis { conn, channel: channel.clone() } });
        let local = hub.local.clone();
        tasks.spawn(async move {
            loop {
                let listened = listen(&client, &channel, &local, &stop).await;
                if stop.is_cancelled() {
                    return;
                }
                if let Err(e) = listened {
                    tracing::warn!(error = %e, "live notifications: Redis subscription lost; reconnecting");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(hub)
    }

    pub async fn announce(&self, a: Announcement) {
        match &self.fanout {
            Fanout::Local => {
                let _ = self.local.send(a);
            }
            Fanout::Redis { conn, channel } => {
                let mut conn = conn.clone();
                let sent: redis::RedisResult<i64> =
                    redis::cmd("PUBLISH").arg(channel).arg(encode(a)).query_async(&mut conn).await;
                if let Err(e) = sent {
                    // The notification is stored; only the live push is missed. Deliver locally at least.
                    tracing::warn!(error = %e, "live notifications: Redis publish failed");
                    let _ = self.local.send(a);
                }
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Announcement> {
        self.local.subscribe()
    }
}

async fn listen(
    client: &redis::Client,
    channel: &str,
    local: &broadcast::Sender<Announcement>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let mut messages = pubsub.on_message();
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = messages.next() => m,
        };
        let Some(message) = message else { anyhow::bail!("subscription closed") };
        let payload: String = message.get_payload()?;
        if let Some(a) = decode(&payload) {
            let _ = local.send(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip() {
        let a = Announcement { owner: Id::from_i64(12), notification: Id::from_i64(34) };
        assert_eq!(decode(&encode(a)), Some(a));
        assert_eq!(decode("x:1"), None);
    }
}
