use messenger_platform::auth::TokenSigner;
use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main};
use std::process::ExitCode;

fn main() -> ExitCode {
    service_main(ServiceSpec {
        name: "users",
        database: Some((messenger_users::SCHEMA, &messenger_users::MIGRATOR)),
        listen_addr: |config| config.grpc.users.listen.clone(),
        probe: Probe::Grpc,
        check: |config| TokenSigner::from_config(&config.auth).map(drop),
        serve: messenger_users::serve,
    })
}
