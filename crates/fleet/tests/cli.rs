//! Bad configuration stops a binary before it binds a port, naming the key.

use std::process::Command;

fn run(binary: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn invalid_or_missing_values_name_the_key() {
    let fleet = env!("CARGO_BIN_EXE_messenger");
    let (ok, stderr) = run(fleet, &[("SERVER_PORT", "eighty")]);
    assert!(!ok);
    assert!(
        stderr.contains("server.port") && stderr.contains("SERVER_PORT"),
        "{stderr}"
    );

    let (ok, stderr) = run(fleet, &[("KAFKA_ENABLED", "perhaps")]);
    assert!(!ok);
    assert!(stderr.contains("KAFKA_ENABLED"), "{stderr}");

    // The gateway cannot sign tokens without keys.
    let (ok, stderr) = run(fleet, &[]);
    assert!(!ok);
    assert!(
        stderr.contains("auth.jwt_keys") && stderr.contains("JWT_KEYS"),
        "{stderr}"
    );
    assert!(!stderr.contains("cannot listen"), "{stderr}");

    let (ok, stderr) = run(fleet, &[("JWT_KEYS", "k:short")]);
    assert!(!ok);
    assert!(stderr.contains("shorter than 32 bytes"), "{stderr}");
}
