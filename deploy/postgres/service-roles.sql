-- One Postgres role per service, each the owner of its own schema and
-- without any right on the others' (docs/security.md): the media service,
-- which decodes untrusted images, cannot read the users schema's password
-- hashes. Idempotent; run as a superuser (or the database owner with
-- CREATEROLE) on the fleet's database:
--
--   psql -d messenger -v prefix=messenger_ \
--     -v users_password=… -v groups_password=… \
--     -v messages_password=… -v media_password=… -v notifier_password=… \
--     -f deploy/postgres/service-roles.sql
--
-- then give each service its own URL (Vault keys users_database_url …
-- notifier_database_url, e.g. postgres://messenger_users:…@host:5432/messenger).
-- Objects that already exist in a schema (a database migrated before the
-- roles existed) are handed to the schema's role.
\set ON_ERROR_STOP on

-- Extensions need a superuser; the services' migrations then find them.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
-- Nobody but the owner creates objects in public (the default since 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE TEMPORARY TABLE service_roles (schema_name text, role_name text, password text);
INSERT INTO service_roles VALUES
  ('users',    :'prefix' || 'users',    :'users_password'),
  ('groups',   :'prefix' || 'groups',   :'groups_password'),
  ('messages', :'prefix' || 'messages', :'messages_password'),
  ('media',    :'prefix' || 'media',    :'media_password'),
  ('notifier', :'prefix' || 'notifier', :'notifier_password');

SELECT format('CREATE ROLE %I', role_name) FROM service_roles
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) \gexec
-- LOGIN only: no CREATEDB, CREATEROLE, BYPASSRLS or membership in any other
-- role; a bounded number of connections.
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS CONNECTION LIMIT 50 PASSWORD %L',
              role_name, password) FROM service_roles \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role_name) FROM service_roles \gexec
SELECT format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', schema_name, role_name) FROM service_roles \gexec
SELECT format('ALTER SCHEMA %I OWNER TO %I', schema_name, role_name) FROM service_roles \gexec
-- Existing tables (with their indexes and sequences), views and functions.
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, r.role_name)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN service_roles r ON r.schema_name = n.nspname
 WHERE c.relkind IN ('r', 'p', 'v', 'm') \gexec
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, r.role_name)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN service_roles r ON r.schema_name = n.nspname \gexec
-- Whatever the superuser holds in a schema it does not own is revoked from
-- everyone else: the owner alone uses its schema.
SELECT format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema_name) FROM service_roles \gexec
