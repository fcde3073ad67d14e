use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main, no_check};
use std::process::ExitCode;

fn main() -> ExitCode {
    service_main(ServiceSpec {
        name: "messages",
        database: Some((messenger_messages::SCHEMA, &messenger_messages::MIGRATOR)),
        listen_addr: |config| config.grpc.messages.listen.clone(),
        probe: Probe::Grpc,
        check: no_check,
        serve: messenger_messages::serve,
    })
}
