//! Per-client-IP rate limits for the endpoints that guess at secrets
//! (register, verify-register, login): GCRA, a burst of the configured size
//! refilled evenly over a minute. With Redis configured the limit is kept
//! there, shared by every node (one atomic script per request); otherwise,
//! and while Redis cannot be reached, it is kept in process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::IpBlock;
use crate::error::Error;
use crate::ports::cache::{Cache, MemoryCache, RateDecision};

/// Addresses tracked in process at once; past it (only under an attack from
/// very many addresses) requests are let through rather than refused.
const LOCAL_ENTRIES: usize = 1_000_000;

pub struct RateLimit {
    /// Which allowance this is (each endpoint has its own).
    name: &'static str,
    shared: Option<Arc<dyn Cache>>,
    local: MemoryCache,
    per_minute: u32,
    trusted_proxies: Arc<Vec<IpBlock>>,
}

impl RateLimit {
    /// `None` when `per_minute` is 0 (limits off). `shared` is where nodes
    /// keep the limit together (Redis), if anywhere.
    pub fn per_minute(
        name: &'static str,
        per_minute: u32,
        trusted_proxies: Arc<Vec<IpBlock>>,
        shared: Option<Arc<dyn Cache>>,
    ) -> Option<Arc<Self>> {
        (per_minute > 0)
            .then(|| Arc::new(Self { name, shared, local: MemoryCache::new(LOCAL_ENTRIES), per_minute, trusted_proxies }))
    }

    async fn check(&self, ip: IpAddr) -> RateDecision {
        let key = format!("rate:{}:{ip}", self.name);
        let interval = Duration::from_secs(60) / self.per_minute;
        if let Some(shared) = &self.shared {
            match shared.rate_limit(&key, interval, self.per_minute).await {
                Ok(decision) => return decision,
                Err(e) => tracing::warn!(error = %e, "shared rate limit unavailable; limiting this node alone"),
            }
        }
        match self.local.rate_limit(&key, interval, self.per_minute).await {
            Ok(decision) => decision,
            Err(e) => {
                tracing::warn!(error = %e, "rate limit table full; letting the request through");
                RateDecision { allowed: true, remaining: 0, retry_after: Duration::ZERO }
            }
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// last address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpBlock]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|b| b.contains(ip));
    if !is_trusted(peer) {
        return peer.to_canonical();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|ip| !is_trusted(*ip)).unwrap_or(peer).to_canonical()
}

pub async fn limit(State(limit): State<Arc<RateLimit>>, request: Request, next: Next) -> Response {
    let peer =
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let ip = client_ip(peer, request.headers(), &limit.trusted_proxies);
    let decision = limit.check(ip).await;
    let (remaining, mut response) = if decision.allowed {
        (decision.remaining, next.run(request).await)
    } else {
        metrics::counter!("chirp_rate_limited_total").increment(1);
        (0, Error::RateLimited { retry_after: decision.retry_after }.into_response())
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit.per_minute));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 5.6.7.8".parse().unwrap());
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(proxy, &headers, &trusted), "5.6.7.8".parse::<IpAddr>().unwrap());
    }
}
