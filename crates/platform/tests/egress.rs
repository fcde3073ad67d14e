//! The egress guard against real sockets on loopback. Addresses outside
//! loopback are only ever refused at the guard's decision: nothing here
//! sends traffic anywhere else. Where a refused target is a loopback
//! listener, the listener proves that nothing arrived.

use futures::future::BoxFuture;
use messenger_platform::egress::{Egress, EgressError, EgressPolicy, Forbidden, Lookup};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Names the tests resolve, without a DNS server.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl Lookup for Table {
    fn lookup(&self, host: String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> {
        let found = self.0.get(host.as_str()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        })
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

fn guard(policy: EgressPolicy, names: &[(&'static str, &[&str])]) -> Egress {
    let table = names
        .iter()
        .map(|(name, ips)| (*name, ips.iter().map(|text| ip(text)).collect()))
        .collect();
    Egress::with_lookup(policy, Arc::new(Table(table))).expect("a client")
}

/// Loopback may be reached only on 127.0.0.1, plain HTTP allowed: the
/// tests' servers live there, and 127.0.0.2 stays forbidden.
fn local_policy() -> EgressPolicy {
    EgressPolicy {
        allow_networks: vec!["127.0.0.1/32".parse().expect("cidr")],
        allow_plain_http: true,
        timeout_ms: 2_000,
        connect_timeout_ms: 1_000,
        ..EgressPolicy::default()
    }
}

async fn get(
    egress: &Egress,
    url: &str,
) -> Result<messenger_platform::egress::EgressResponse, EgressError> {
    let request = egress.client().get(url).build().expect("a request");
    egress.execute(request).await
}

/// A listener that answers every connection with `response` and counts
/// the connections it accepted.
async fn serve(bind: &str, response: String) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind(bind).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

fn accepted(count: &std::sync::atomic::AtomicUsize) -> usize {
    count.load(std::sync::atomic::Ordering::SeqCst)
}

fn assert_refused(outcome: Result<impl std::fmt::Debug, EgressError>, expected: Forbidden) {
    match outcome {
        Err(EgressError::Refused { reason, .. }) => assert_eq!(reason, expected),
        other => panic!("expected a refusal ({expected}), got {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_by_default_and_nothing_arrives() {
    let (addr, count) = serve("127.0.0.1:0", ok("secret")).await;
    let egress = guard(
        EgressPolicy {
            allow_plain_http: true,
            ..EgressPolicy::default()
        },
        &[("localhost.test", &["127.0.0.1"])],
    );
    let port = addr.port();
    assert_refused(
        get(&egress, &format!("http://127.0.0.1:{port}/")).await,
        Forbidden::Loopback,
    );
    assert_refused(
        get(&egress, &format!("http://[::ffff:127.0.0.1]:{port}/")).await,
        Forbidden::Loopback,
    );
    // The URL parser turns odd spellings of 127.0.0.1 into the usual one.
    assert_refused(
        get(&egress, &format!("http://2130706433:{port}/")).await,
        Forbidden::Loopback,
    );
    assert_refused(
        get(&egress, &format!("http://localhost.test:{port}/")).await,
        Forbidden::Loopback,
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted(&count),
        0,
        "a refused request reached the listener"
    );
}

#[tokio::test]
async fn metadata_and_private_names_are_refused_at_the_decision() {
    let egress = guard(
        EgressPolicy::default(),
        &[
            ("intranet.test", &["10.0.0.5"]),
            ("mixed.test", &["93.184.216.34", "192.168.1.10"]),
            ("metadata.test", &["169.254.169.254"]),
        ],
    );
    // Addresses: refused before any connection is attempted.
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
    ] {
        let request = egress.client().get(url).build().expect("a request");
        assert_refused(egress.check_url(request.url()), Forbidden::Metadata);
        assert_refused(egress.execute(request).await, Forbidden::Metadata);
    }
    // Names: refused by the resolver, before the connector sees an address.
    assert_refused(
        get(&egress, "https://intranet.test/").await,
        Forbidden::Private,
    );
    assert_refused(
        get(&egress, "https://metadata.test/").await,
        Forbidden::Metadata,
    );
    // One private answer among public ones refuses the name.
    assert_refused(
        get(&egress, "https://mixed.test/").await,
        Forbidden::Private,
    );
}

#[tokio::test]
async fn what_the_operator_allows_is_reached() {
    let (addr, count) = serve("127.0.0.1:0", ok("hello")).await;
    let egress = guard(local_policy(), &[("relay.test", &["127.0.0.1"])]);
    for url in [
        format!("http://127.0.0.1:{}/push", addr.port()),
        format!("http://relay.test:{}/push", addr.port()),
    ] {
        let response = get(&egress, &url).await.expect("allowed");
        assert_eq!(response.status, 200);
        assert_eq!(&response.body[..], b"hello");
    }
    assert_eq!(accepted(&count), 2);
}

#[tokio::test]
async fn redirects_are_judged_like_the_first_url() {
    // 127.0.0.2 is loopback but outside the allowed 127.0.0.1/32.
    let (forbidden, forbidden_count) = serve("127.0.0.2:0", ok("inside")).await;
    let by_address = format!("http://127.0.0.2:{}/", forbidden.port());
    let by_name = format!("http://rebound.test:{}/", forbidden.port());
    let (hop_a, _) = serve("127.0.0.1:0", redirect(&by_address)).await;
    let (hop_b, _) = serve("127.0.0.1:0", redirect(&by_name)).await;
    let egress = guard(local_policy(), &[("rebound.test", &["127.0.0.2"])]);

    for hop in [hop_a, hop_b] {
        let outcome = get(&egress, &format!("http://127.0.0.1:{}/", hop.port())).await;
        assert_refused(outcome, Forbidden::Loopback);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        accepted(&forbidden_count),
        0,
        "a redirect reached a forbidden host"
    );
}

#[tokio::test]
async fn redirect_chains_stop_at_the_limit() {
    let (end, _) = serve("127.0.0.1:0", ok("end")).await;
    let mut next = format!("http://127.0.0.1:{}/", end.port());
    for _ in 0..2 {
        let (hop, _) = serve("127.0.0.1:0", redirect(&next)).await;
        next = format!("http://127.0.0.1:{}/", hop.port());
    }
    let two_allowed = guard(
        EgressPolicy {
            max_redirects: 2,
            ..local_policy()
        },
        &[],
    );
    let response = get(&two_allowed, &next).await.expect("two redirects");
    assert_eq!(&response.body[..], b"end");
    let one_allowed = guard(
        EgressPolicy {
            max_redirects: 1,
            ..local_policy()
        },
        &[],
    );
    assert!(matches!(
        get(&one_allowed, &next).await,
        Err(EgressError::TooManyRedirects(1))
    ));
}

#[tokio::test]
async fn answers_are_limited_in_size_and_time() {
    let policy = EgressPolicy {
        max_response_bytes: 1024,
        timeout_ms: 500,
        ..local_policy()
    };
    let egress = guard(policy, &[]);
    // Announced too large, and too large without announcing it.
    let (announced, _) = serve("127.0.0.1:0", ok(&"x".repeat(4096))).await;
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n800\r\n{}\r\n800\r\n{}\r\n0\r\n\r\n",
        "y".repeat(0x800),
        "y".repeat(0x800)
    );
    let (unannounced, _) = serve("127.0.0.1:0", chunked).await;
    for addr in [announced, unannounced] {
        let outcome = get(&egress, &format!("http://127.0.0.1:{}/", addr.port())).await;
        assert!(
            matches!(outcome, Err(EgressError::TooLarge { limit: 1024 })),
            "{outcome:?}"
        );
    }
    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let outcome = get(&egress, &format!("http://127.0.0.1:{port}/")).await;
    assert!(matches!(outcome, Err(EgressError::Timeout)), "{outcome:?}");
    hold.abort();
}

#[tokio::test]
async fn schemes_and_credentials_are_checked() {
    let strict = guard(
        EgressPolicy::default(),
        &[("push.test", &["93.184.216.34"])],
    );
    for url in [
        "http://push.test/",
        "ftp://push.test/",
        "file:///etc/passwd",
        "https://user:pass@push.test/",
    ] {
        let url = url.parse().expect("a URL");
        assert!(
            matches!(strict.check_url(&url), Err(EgressError::BadTarget(_))),
            "{url} passed"
        );
    }
    let url = "https://push.test/".parse().expect("a URL");
    assert!(strict.check_url(&url).is_ok());
}
