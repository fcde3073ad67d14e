//! The server side: TLS handshakes off the accept loop, the caller's
//! identity read from its certificate once per connection (which
//! [`crate::gate`] checks on every call).

use super::Tls;
use crate::callers::Caller;
use crate::shutdown::CancellationToken;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// Who is on the other end of a connection, as its certificate says.
#[derive(Clone, Debug)]
pub struct Peer {
    /// `None`: no certificate, or one naming nobody of the fleet.
    pub caller: Option<Caller>,
    pub remote: Option<SocketAddr>,
}

/// A TLS connection together with its caller's identity, so the gate finds
/// the identity in every request's extensions.
pub struct Authenticated {
    stream: TlsStream<TcpStream>,
    peer: Peer,
}

impl Connected for Authenticated {
    type ConnectInfo = Peer;
    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Authenticated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Authenticated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A peer that has not finished its handshake by then is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Accepts connections and completes their handshakes concurrently (one
/// slow or hostile client must not hold up the others), yielding finished
/// ones until `shutdown`.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Arc<Tls>,
    shutdown: CancellationToken,
) -> mpsc::Receiver<std::io::Result<Authenticated>> {
    let (ready_tx, ready_rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Without TCP_NODELAY a response written in several segments
            // waits for the peer's delayed ACK.
            let _ = tcp.set_nodelay(true);
            let Some(config) = tls.server_config() else {
                tracing::error!("a client-only transport cannot serve");
                return;
            };
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            let tls = Arc::clone(&tls);
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let peer = Peer {
                            caller: identify(&stream, tls.domain()),
                            remote: Some(remote),
                        };
                        let _ = ready_tx.send(Ok(Authenticated { stream, peer })).await;
                    }
                    Ok(Err(err)) => {
                        metrics::counter!("mtls_handshake_failures_total").increment(1);
                        tracing::info!(%remote, error = %err, "TLS handshake refused");
                    }
                    Err(_) => {
                        metrics::counter!("mtls_handshake_failures_total").increment(1);
                        tracing::info!(%remote, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ready_rx
}

/// The fleet identity the verified client certificate names, if any. The
/// verifier already checked the chain up to our CA, the validity period and
/// the client-auth usage.
fn identify(stream: &TlsStream<TcpStream>, domain: &str) -> Option<Caller> {
    let leaf = stream.get_ref().1.peer_certificates()?.first()?;
    let certificate = webpki::EndEntityCert::try_from(leaf).ok()?;
    Caller::ALL.into_iter().find(|caller| {
        rustls::pki_types::ServerName::try_from(super::identity_name(*caller, domain))
            .ok()
            .is_some_and(|name| certificate.verify_is_valid_for_subject_name(&name).is_ok())
    })
}
