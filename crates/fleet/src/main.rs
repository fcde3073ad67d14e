//! `messenger`: runs the whole fleet in one process, or migrates every
//! schema. Production runs one binary per service instead.

use clap::{Parser, Subcommand};
use messenger_platform::auth::TokenSigner;
use messenger_platform::service::{block_on_main, load_config};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "All messenger services in one process")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every service (the default).
    Serve,
    /// Apply every service's pending migrations.
    Migrate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    block_on_main(run(cli.command.unwrap_or(Command::Serve)))
}

async fn run(command: Command) -> anyhow::Result<()> {
    let config = load_config().await?;
    TokenSigner::from_config(&config.auth)?;
    let _telemetry = messenger_platform::telemetry::init(&config, "fleet")?;
    match command {
        Command::Migrate => {
            use messenger_platform::db;
            for (schema, migrator) in [
                (messenger_users::SCHEMA, &messenger_users::MIGRATOR),
                (messenger_groups::SCHEMA, &messenger_groups::MIGRATOR),
                (messenger_messages::SCHEMA, &messenger_messages::MIGRATOR),
                (messenger_media::SCHEMA, &messenger_media::MIGRATOR),
                (messenger_notifier::SCHEMA, &messenger_notifier::MIGRATOR),
            ] {
                let pool = db::connect(&config, schema).await?;
                db::migrate_up(&pool, migrator).await?;
                println!("{schema}: migrations applied");
            }
            Ok(())
        }
        Command::Serve => {
            let listeners = messenger_fleet::Listeners::bind(&config).await?;
            tracing::info!(
                port = config.server.port,
                "fleet listening: gateway on {}:{}",
                config.server.host,
                config.server.port
            );
            let shutdown = messenger_platform::shutdown::on_signal();
            let fleet = messenger_fleet::run(config, listeners, shutdown.clone());
            messenger_platform::shutdown::with_grace_period(&shutdown, fleet).await
        }
    }
}
