use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main, no_check};
use std::process::ExitCode;

fn main() -> ExitCode {
    service_main(ServiceSpec {
        name: "gateway",
        database: None,
        listen_addr: |config| format!("{}:{}", config.server.host, config.server.port),
        probe: Probe::Http {
            path: "/api/v1/health",
        },
        check: no_check,
        serve: messenger_gateway::serve,
    })
}
