//! Per-client-IP rate limits for the endpoints that guess at secrets
//! (register, verify-register, login). GCRA from `governor`: a burst of the
//! configured size, refilled evenly over a minute. Limits are per node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::IpBlock;
use crate::error::Error;

type Limiter = DefaultKeyedRateLimiter<IpAddr, StateInformationMiddleware>;

pub struct RateLimit {
    limiter: Limiter,
    per_minute: u32,
    trusted_proxies: Arc<Vec<IpBlock>>,
}

impl RateLimit {
    /// `None` when `per_minute` is 0 (limits off).
    pub fn per_minute(per_minute: u32, trusted_proxies: Arc<Vec<IpBlock>>) -> Option<Arc<Self>> {
        let n = NonZeroU32::new(per_minute)?;
        let limiter = RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>();
        Some(Arc::new(Self { limiter, per_minute, trusted_proxies }))
    }

    /// Forgets addresses that have not been seen for a while.
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
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
    let (remaining, mut response) = match limit.limiter.check_key(&ip) {
        Ok(state) => (state.remaining_burst_capacity(), next.run(request).await),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("chirp_rate_limited_total").increment(1);
            (0, Error::RateLimited { retry_after: wait }.into_response())
        }
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
