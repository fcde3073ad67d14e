use messenger_platform::healthcheck::Probe;
use messenger_platform::service::{ServiceSpec, main as service_main, no_check};
use std::process::ExitCode;

fn main() -> ExitCode {
    // `objects export|import`: the media store as a tar stream (backups).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("objects") {
        return messenger_media::backup::main(&args[1..]);
    }
    service_main(ServiceSpec {
        name: "media",
        database: Some((messenger_media::SCHEMA, &messenger_media::MIGRATOR)),
        listen_addr: |config| config.grpc.media.listen.clone(),
        probe: Probe::Grpc,
        check: no_check,
        serve: messenger_media::serve,
    })
}
