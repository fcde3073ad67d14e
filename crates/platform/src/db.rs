//! Postgres pools scoped to one service's schema, and its migrations.
//!
//! Every connection of a service's pool has `search_path = <schema>, public`,
//! so its SQL names tables unqualified, its migrations table
//! (`<schema>._sqlx_migrations`) lives in its own schema, and it cannot
//! accidentally read another service's tables.

use crate::config::Config;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// Connection options for `schema`: its URL override, or the shared
/// host/port/user/password/name settings.
pub fn connect_options(config: &Config, schema: &str) -> anyhow::Result<PgConnectOptions> {
    let db = &config.database;
    let url = match schema {
        "users" => &db.urls.users,
        "groups" => &db.urls.groups,
        "messages" => &db.urls.messages,
        "media" => &db.urls.media,
        "notifier" => &db.urls.notifier,
        _ => anyhow::bail!("unknown service schema {schema:?}"),
    };
    let options = if url.is_empty() {
        let mut options = PgConnectOptions::new()
            .host(&db.host)
            .port(db.port)
            .username(&db.user)
            .database(&db.name);
        if !db.password.is_empty() {
            options = options.password(db.password.expose());
        }
        options
    } else {
        PgConnectOptions::from_str(url.expose()).map_err(|err| {
            anyhow::anyhow!(
                "config key `database.urls.{schema}` is not a valid Postgres URL: {err}"
            )
        })?
    };
    Ok(options
        .options([("search_path", format!("{schema},public"))])
        .application_name(&format!("messenger-{schema}"))
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
}

/// Opens the service's pool and makes sure its schema exists.
pub async fn connect(config: &Config, schema: &str) -> anyhow::Result<PgPool> {
    let options = connect_options(config, schema)?;
    let pool = PgPoolOptions::new()
        .max_connections(config.database.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|err| anyhow::anyhow!("cannot connect to Postgres for schema {schema}: {err}"))?;
    ensure_schema(&pool, schema).await?;
    Ok(pool)
}

// The catalog query is the same for every service.
#[allow(clippy::disallowed_methods)]
async fn ensure_schema(pool: &PgPool, schema: &str) -> anyhow::Result<()> {
    // A service running as its own role (deploy/postgres/service-roles.sql)
    // owns its schema but may not create schemas: Postgres checks that
    // right before it looks whether the schema exists.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(pool)
            .await?;
    if exists {
        return Ok(());
    }
    // Replicas starting together race on CREATE SCHEMA IF NOT EXISTS; a
    // unique violation there only means another replica won.
    let statement = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    match pool.execute(statement.as_str()).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("23505") => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Applies pending migrations (holding Postgres' advisory lock, so replicas
/// starting together apply each migration once).
pub async fn migrate_up(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    migrator.run(pool).await?;
    Ok(())
}

/// Reverts the newest `steps` applied migrations (all of them for `None`).
// Reads sqlx's own bookkeeping table, present in every schema.
#[allow(clippy::disallowed_methods)]
pub async fn migrate_down(
    pool: &PgPool,
    migrator: &Migrator,
    steps: Option<usize>,
) -> anyhow::Result<Vec<i64>> {
    let mut applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version DESC",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let count = steps.unwrap_or(applied.len()).min(applied.len());
    let reverted: Vec<i64> = applied.drain(..count).collect();
    let target = applied.first().copied().unwrap_or(0);
    if !reverted.is_empty() {
        migrator.undo(pool, target).await?;
    }
    Ok(reverted)
}
