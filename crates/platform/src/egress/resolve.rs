//! Name resolution that judges every address before the connector sees it.

use super::{EgressError, EgressPolicy, refused};
use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Turns a host name into addresses. The system's resolver in service;
/// a fixed table in tests, so "a name resolving to a private address" is
/// tested without a DNS server.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>>;
}

/// `getaddrinfo`, through tokio's blocking pool.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// reqwest's resolver: a name with any forbidden address is refused as a
/// whole (a name that mixes public and private answers is an attack or a
/// mistake), so the connector never dials a forbidden one.
pub(super) struct Guarded {
    lookup: Arc<dyn Lookup>,
    policy: Arc<EgressPolicy>,
}

impl Guarded {
    pub(super) fn new(lookup: Arc<dyn Lookup>, policy: Arc<EgressPolicy>) -> Self {
        Guarded { lookup, policy }
    }
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.lookup.lookup(host.clone());
        let policy = self.policy.clone();
        Box::pin(async move {
            let ips = lookup.await?;
            let addrs = judge(&host, ips, &policy)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses to dial, or the refusal naming the first forbidden one.
fn judge(
    host: &str,
    ips: Vec<IpAddr>,
    policy: &EgressPolicy,
) -> Result<Vec<SocketAddr>, EgressError> {
    if ips.is_empty() {
        return Err(EgressError::Unreachable(format!("{host} has no address")));
    }
    if let Some((ip, reason)) = ips
        .iter()
        .find_map(|ip| refused(*ip, &policy.allow_networks).map(|reason| (ip, reason)))
    {
        tracing::warn!(%host, %ip, %reason, "egress refused");
        return Err(EgressError::Refused {
            host: format!("{host} ({ip})"),
            reason,
        });
    }
    // Port 0: reqwest puts the URL's port (or the scheme's) in its place.
    Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
}
