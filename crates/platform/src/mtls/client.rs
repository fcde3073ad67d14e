//! The client side: each new connection to a service is a TLS handshake
//! that presents our current certificate and accepts only a server whose
//! certificate names the service we meant to reach.

use super::Tls;
use crate::callers::Caller;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const CONNECT_LIMIT: Duration = Duration::from_secs(2);

/// Opens a mutually authenticated connection to `target` at the address in
/// `uri` (its scheme is ignored: the transport decides).
pub(crate) async fn connect(
    tls: Arc<Tls>,
    target: Caller,
    uri: http::Uri,
) -> io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {what}"));
    let host = uri
        .host()
        .ok_or_else(|| invalid("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
    let tcp = tokio::time::timeout(CONNECT_LIMIT, TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connecting to {uri}")))??;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(super::identity_name(target, tls.domain()))
        .map_err(|err| invalid(&err.to_string()))?;
    let stream = tokio::time::timeout(
        CONNECT_LIMIT,
        TlsConnector::from(tls.client_config()).connect(name, tcp),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("TLS handshake with {uri}")))??;
    Ok(TokioIo::new(stream))
}
