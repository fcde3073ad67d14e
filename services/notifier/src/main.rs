use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main, no_check};
use std::process::ExitCode;

fn main() -> ExitCode {
    service_main(ServiceSpec {
        name: "notifier",
        database: Some((messenger_notifier::SCHEMA, &messenger_notifier::MIGRATOR)),
        listen_addr: |config| config.grpc.notifier.listen.clone(),
        probe: Probe::Grpc,
        check: no_check,
        serve: messenger_notifier::serve,
    })
}
