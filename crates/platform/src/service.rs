//! The shared `main` of every service binary: parse the command line, load
//! and check the configuration (before any port is bound), then either run
//! migrations or serve until SIGINT/SIGTERM.

use crate::config::{Config, ConfigError};
use crate::shutdown::CancellationToken;
use clap::{Parser, Subcommand};
use sqlx::migrate::Migrator;
use std::future::Future;
use std::process::ExitCode;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve requests until SIGINT/SIGTERM (the default).
    Serve,
    /// Exit 0 when the service running on this host answers its health
    /// check (for container health checks).
    Healthcheck,
    /// Apply or revert this service's database migrations.
    Migrate {
        #[command(subcommand)]
        direction: Direction,
    },
}

#[derive(Subcommand)]
enum Direction {
    /// Apply every pending migration.
    Up,
    /// Revert the newest migration (or more).
    Down {
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1)]
        steps: usize,
        /// Revert every migration of this service.
        #[arg(long, conflicts_with = "steps")]
        all: bool,
    },
}

/// What a service binary is made of.
pub struct ServiceSpec<F> {
    /// Short name: `users`, `gateway`, …
    pub name: &'static str,
    /// Its Postgres schema and migrations, if it has any.
    pub database: Option<(&'static str, &'static Migrator)>,
    /// Where it listens, from the configuration.
    pub listen_addr: fn(&Config) -> String,
    /// How it answers health checks on that address.
    pub probe: crate::healthcheck::Probe,
    /// Checks of keys only this service needs (e.g. JWT keys).
    pub check: fn(&Config) -> Result<(), ConfigError>,
    /// Runs the service on a bound listener until the token is cancelled.
    pub serve: F,
}

pub fn main<F, Fut>(spec: ServiceSpec<F>) -> ExitCode
where
    F: FnOnce(Config, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let cli = Cli::parse();
    block_on_main(run(spec, cli.command.unwrap_or(Command::Serve)))
}

/// Runs a binary's async entry point on a multi-threaded runtime and turns
/// its outcome into the exit code, printing the error chain on failure.
pub fn block_on_main(entry: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(entry) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("messenger: {err:#}");
            tracing::error!(error = format!("{err:#}"), "exiting");
            ExitCode::FAILURE
        }
    }
}

/// Loads configuration from the environment, then Vault.
pub async fn load_config() -> anyhow::Result<Config> {
    let mut config = Config::from_env()?;
    // The session is dropped: the services that must follow rotations log in
    // again for their own refresher.
    crate::vault::apply_secrets(&mut config).await?;
    Ok(config)
}

async fn run<F, Fut>(spec: ServiceSpec<F>, command: Command) -> anyhow::Result<()>
where
    F: FnOnce(Config, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if let Command::Healthcheck = command {
        // Needs neither Vault nor secrets: only where the service listens.
        let config = Config::from_env()?;
        let addr = (spec.listen_addr)(&config);
        crate::healthcheck::check(spec.probe, &addr, config.grpc.mtls.enabled).await?;
        println!("{}: serving on {addr}", spec.name);
        return Ok(());
    }
    let config = load_config().await?;
    (spec.check)(&config)?;
    let _telemetry = crate::telemetry::init(&config, spec.name)?;
    match command {
        Command::Migrate { direction } => {
            let Some((schema, migrator)) = spec.database else {
                anyhow::bail!("the {} service has no database", spec.name);
            };
            let pool = crate::db::connect(&config, schema).await?;
            match direction {
                Direction::Up => {
                    crate::db::migrate_up(&pool, migrator).await?;
                    println!("{schema}: migrations applied");
                }
                Direction::Down { steps, all } => {
                    let reverted =
                        crate::db::migrate_down(&pool, migrator, (!all).then_some(steps)).await?;
                    println!("{schema}: reverted migrations {reverted:?}");
                }
            }
            Ok(())
        }
        Command::Healthcheck => Ok(()),
        Command::Serve => {
            let addr = (spec.listen_addr)(&config);
            let listener = TcpListener::bind(&addr)
                .await
                .map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))?;
            tracing::info!(service = spec.name, %addr, "listening");
            let shutdown = crate::shutdown::on_signal();
            let serve = (spec.serve)(config, listener, shutdown.clone());
            crate::shutdown::with_grace_period(&shutdown, serve).await
        }
    }
}

/// No extra checks.
pub fn no_check(_: &Config) -> Result<(), ConfigError> {
    Ok(())
}
