DROP INDEX IF EXISTS users_display_name_prefix;
DROP INDEX IF EXISTS users_username_prefix;
