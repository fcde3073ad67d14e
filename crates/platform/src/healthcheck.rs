//! `<binary> healthcheck`: asks the service running on this host whether it
//! is serving, for container HEALTHCHECKs and compose's `service_healthy`
//! (images carry no curl or grpc_health_probe).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a service answers health checks.
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// The standard `grpc.health.v1.Health/Check` on its gRPC listener.
    Grpc,
    /// `GET <path>` on its HTTP listener, healthy on 200.
    Http { path: &'static str },
}

const DEADLINE: Duration = Duration::from_secs(3);

/// Probes the service listening on `listen` (a bind address: 0.0.0.0 and ::
/// mean this host's loopback); gRPC over TLS when the fleet's transport is
/// mutual (`grpc.mtls.enabled`).
pub async fn check(probe: Probe, listen: &str, tls: bool) -> anyhow::Result<()> {
    let mut addr: SocketAddr = tokio::net::lookup_host(listen)
        .await
        .map_err(|err| anyhow::anyhow!("cannot resolve {listen}: {err}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{listen} resolves to no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    tokio::time::timeout(DEADLINE, async {
        match probe {
            Probe::Grpc => grpc(addr, tls).await,
            Probe::Http { path } => http(addr, path).await,
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("{addr} did not answer within {DEADLINE:?}"))?
}

async fn grpc(addr: SocketAddr, tls: bool) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let channel = if tls {
        endpoint
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                crate::mtls::probe::connect(addr)
            }))
            .await
    } else {
        endpoint.connect().await
    }
    .map_err(|err| anyhow::anyhow!("cannot connect to {addr}: {err}"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|status| anyhow::anyhow!("health check failed: {}", status.message()))?
        .into_inner()
        .status();
    anyhow::ensure!(
        status == ServingStatus::Serving,
        "service reports {}",
        status.as_str_name()
    );
    Ok(())
}

async fn http(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to {addr}: {err}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).await?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    anyhow::ensure!(status == "200", "GET {path} answered {status}");
    Ok(())
}
