use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main, no_check};
use std::process::ExitCode;

fn main() -> ExitCode {
    service_main(ServiceSpec {
        name: "groups",
        database: Some((messenger_groups::SCHEMA, &messenger_groups::MIGRATOR)),
        listen_addr: |config| config.grpc.groups.listen.clone(),
        probe: Probe::Grpc,
        check: no_check,
        serve: messenger_groups::serve,
    })
}
