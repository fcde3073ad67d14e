//! The hostile insider at the gRPC door: a process on the fleet's network
//! that is not the service a method admits. Against the fleet as shipped
//! (mutual TLS, certificates from OpenBao's PKI engine), every method of
//! every service is called bare, in plaintext, with each identity's
//! certificate, with a certificate from another CA and with an expired one;
//! only the callers crates/platform/src/callers.rs admits get through.

use crate::helpers::TestApp;
use messenger_platform::Config;
use messenger_platform::callers::{self, Admits, Caller};
use messenger_platform::grpc::lazy_channel;
use messenger_platform::mtls::{Transport, identity_name};
use messenger_platform::vault::{IssuedCertificate, Session};
use prost::Message as _;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

/// Every method of a service's contract, by full path.
pub(crate) fn methods_of(service: &str) -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(messenger_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut paths = Vec::new();
    for file in &set.file {
        for declared in &file.service {
            if format!("{}.{}", file.package(), declared.name()) == service {
                for method in &declared.method {
                    paths.push(format!("/{service}/{}", method.name()));
                }
            }
        }
    }
    assert!(!paths.is_empty(), "{service} has no methods");
    paths
}

/// The services and where this fleet serves them.
pub(crate) fn services(config: &Config) -> Vec<(Caller, String, &'static str)> {
    let grpc = &config.grpc;
    vec![
        (
            Caller::Users,
            grpc.users.url.clone(),
            "messenger.users.v1.UsersService",
        ),
        (
            Caller::Groups,
            grpc.groups.url.clone(),
            "messenger.groups.v1.GroupsService",
        ),
        (
            Caller::Messages,
            grpc.messages.url.clone(),
            "messenger.messages.v1.MessagesService",
        ),
        (
            Caller::Media,
            grpc.media.url.clone(),
            "messenger.media.v1.MediaService",
        ),
    ]
}

/// One call of `path` with an empty message (a valid encoding of every
/// request type), as a stream so that every method shape accepts it.
async fn call(channel: Channel, path: &str) -> Result<(), tonic::Status> {
    call_as(channel, path, None).await
}

/// [`call`] with a user's access token, as the gateway forwards it.
pub(crate) async fn call_as(
    channel: Channel,
    path: &str,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).expect("path");
    let mut request = tonic::Request::new(futures::stream::iter([()]));
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("metadata value");
        request.metadata_mut().insert("authorization", value);
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let mut answers = grpc.streaming(request, path, codec).await?.into_inner();
    while answers.message().await?.is_some() {}
    Ok(())
}

/// Whether the callers' gate (not the method's own rules) refused.
fn refused_at_the_door(outcome: &Result<(), tonic::Status>) -> bool {
    matches!(outcome, Err(status)
        if (status.code() == Code::Unauthenticated && status.message().contains("needs a client certificate"))
        || (status.code() == Code::PermissionDenied && status.message().contains("may not call")))
}

async fn session(config: &Config) -> Session {
    Session::login(&config.vault).await.expect("Vault login")
}

pub(crate) async fn issue(
    config: &Config,
    mount: &str,
    caller: Caller,
    ttl: u64,
) -> IssuedCertificate {
    session(config)
        .await
        .issue_certificate(
            mount,
            caller.name(),
            &identity_name(caller, &config.grpc.mtls.domain),
            ttl,
        )
        .await
        .expect("certificate")
}

pub(crate) fn require_mtls(app: &TestApp) {
    assert!(
        app.config.grpc.mtls.enabled,
        "these tests need OpenBao with the fleet's CA (./dev up; VAULT_ADDR and VAULT_TOKEN set)"
    );
}

#[tokio::test]
async fn every_method_admits_only_the_callers_its_table_row_names() {
    let app = TestApp::spawn().await;
    require_mtls(&app);
    let domain = app.config.grpc.mtls.domain.clone();
    let mut identities = Vec::new();
    for caller in Caller::ALL {
        let issued = issue(&app.config, &app.config.grpc.mtls.pki_mount, caller, 300).await;
        let transport =
            Transport::client(&domain, &issued.ca_chain_pem, Some(&issued)).expect("transport");
        identities.push((Some(caller), transport));
    }
    let authorities = identities_ca(&app.config).await;
    identities.push((
        None,
        Transport::client(&domain, &authorities, None).expect("transport"),
    ));

    let mut checked = 0;
    for (target, url, service) in services(&app.config) {
        for path in methods_of(service)
            .into_iter()
            .chain(["/grpc.health.v1.Health/Check".to_owned()])
        {
            let admits = callers::admits(&path).expect("in the table");
            for (caller, transport) in &identities {
                let channel =
                    lazy_channel(transport, target, &url, Duration::from_secs(5)).expect("channel");
                let outcome = call(channel, &path).await;
                let admitted = callers::check(&path, *caller).is_ok();
                assert_eq!(
                    !refused_at_the_door(&outcome),
                    admitted,
                    "{path} called by {caller:?} ({admits:?}): {outcome:?}"
                );
                if caller.is_none() && admits != Admits::Anyone {
                    let Err(status) = &outcome else {
                        unreachable!()
                    };
                    assert_eq!(status.code(), Code::Unauthenticated, "{path}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} calls made");
    app.cleanup().await;
}

/// Calls `path` at `url` (expecting `target` there) through `transport` and
/// checks the call died in the TLS handshake, before any server code ran.
async fn no_handshake(transport: &Transport, target: Caller, url: &str, path: &str, who: &str) {
    let channel = lazy_channel(transport, target, url, Duration::from_secs(5)).expect("channel");
    let outcome = call(channel, path).await;
    assert!(
        matches!(&outcome, Err(status) if matches!(status.code(), Code::Unavailable | Code::Unknown)),
        "{who} got {outcome:?}"
    );
}

/// The CA chain of the fleet, as a caller without a certificate trusts it.
async fn identities_ca(config: &Config) -> Vec<String> {
    issue(config, &config.grpc.mtls.pki_mount, Caller::Operator, 60)
        .await
        .ca_chain_pem
}

#[tokio::test]
async fn plaintext_forged_and_expired_callers_never_reach_a_method() {
    let app = TestApp::spawn().await;
    require_mtls(&app);
    let config = &app.config;
    let domain = &config.grpc.mtls.domain;
    let authorize = "/messenger.groups.v1.GroupsService/Authorize";
    let groups_url = &config.grpc.groups.url;

    // Plaintext h2c, as every caller was before: the server speaks TLS only.
    no_handshake(
        &Transport::plaintext(),
        Caller::Groups,
        groups_url,
        authorize,
        "plaintext",
    )
    .await;

    // A certificate naming the gateway, from a CA of the attacker's own (a
    // PKI mount made for this test): refused in the handshake.
    let rogue_mount = format!("pki-rogue-{}", uuid::Uuid::new_v4().simple());
    let vault = VaultAdmin::new(config);
    vault.rogue_ca(&rogue_mount, domain).await;
    let forged = issue(config, &rogue_mount, Caller::Gateway, 300).await;
    vault.delete_mount(&rogue_mount).await;
    let real_ca = identities_ca(config).await;
    let forger = Transport::client(domain, &real_ca, Some(&forged)).expect("transport");
    no_handshake(
        &forger,
        Caller::Groups,
        groups_url,
        authorize,
        "a forged gateway certificate",
    )
    .await;

    // The gateway's own kind of certificate, expired.
    let expired = issue(config, &config.grpc.mtls.pki_mount, Caller::Gateway, 1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stale = Transport::client(domain, &real_ca, Some(&expired)).expect("transport");
    no_handshake(
        &stale,
        Caller::Groups,
        groups_url,
        authorize,
        "an expired gateway certificate",
    )
    .await;

    // A client that expects the groups service but reaches another service
    // (a hijacked address) refuses it: the name in the server's
    // certificate is checked too.
    let gateway = issue(config, &config.grpc.mtls.pki_mount, Caller::Gateway, 300).await;
    let honest =
        Transport::client(domain, &gateway.ca_chain_pem, Some(&gateway)).expect("transport");
    no_handshake(
        &honest,
        Caller::Groups,
        &config.grpc.media.url,
        "/messenger.media.v1.MediaService/GetMedia",
        "a server with the wrong name",
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn traffic_keeps_flowing_while_certificates_renew() {
    // Certificates of 6 s are renewed every 4 s: a 15 s run sees several.
    let app = TestApp::spawn_with(|config| config.grpc.mtls.cert_ttl_seconds = 6).await;
    require_mtls(&app);
    let owner = crate::groups::user(&app, "renewal_owner").await;
    let (_, channel) = crate::messages::group_with_channel(&app, &owner, "renewals").await;
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(15) {
        // Asserts that each send is accepted.
        crate::messages::send(&app, &owner, &channel, &format!("message {sent}")).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // New connections after the renewals: a second gateway handshakes with
    // every backend's current certificate.
    let (second, stop) = app.second_gateway().await;
    let response = app
        .http
        .get(format!(
            "{second}/api/v1/channels/{channel}/messages?limit=1"
        ))
        .bearer_auth(&owner.token)
        .send()
        .await
        .expect("second gateway");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    stop.cancel();
    let metrics = app
        .http
        .get(format!("{}/metrics", app.internal))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let renewed: f64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with("mtls_renewals_total") && line.contains("outcome=\"renewed\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // Five identities (four services and the gateway), each renewed at
    // least twice in 15 s.
    assert!(
        renewed >= 10.0,
        "{renewed} renewals in {sent} sends:\n{metrics}"
    );
    app.cleanup().await;
}

/// Vault calls an attacker cannot make, done here with the dev root token.
struct VaultAdmin {
    http: reqwest::Client,
    addr: String,
    token: String,
}

impl VaultAdmin {
    fn new(config: &Config) -> Self {
        VaultAdmin {
            http: reqwest::Client::new(),
            addr: config.vault.addr.trim().to_owned(),
            token: config.vault.token.expose().to_owned(),
        }
    }

    async fn post(&self, path: &str, body: serde_json::Value) {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token)
            .json(&body)
            .send()
            .await
            .expect("Vault");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    /// A PKI mount with its own root and a role issuing the fleet's names.
    async fn rogue_ca(&self, mount: &str, domain: &str) {
        self.post(
            &format!("sys/mounts/{mount}"),
            serde_json::json!({"type": "pki"}),
        )
        .await;
        self.post(
            &format!("{mount}/root/generate/internal"),
            serde_json::json!({"common_name": "messenger internal CA", "key_type": "ec", "key_bits": 256}),
        )
        .await;
        self.post(
            &format!("{mount}/roles/gateway"),
            serde_json::json!({"allowed_domains": format!("gateway.{domain}"), "allow_bare_domains": true,
                "server_flag": true, "client_flag": true, "key_type": "ec", "key_bits": 256}),
        )
        .await;
    }

    async fn delete_mount(&self, mount: &str) {
        let _ = self
            .http
            .delete(format!("{}/v1/sys/mounts/{mount}", self.addr))
            .header("X-Vault-Token", &self.token)
            .send()
            .await;
    }
}
