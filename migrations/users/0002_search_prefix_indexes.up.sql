-- Prefix search in index order: C-collated btrees serve both
-- `LIKE 'abc%'` and `ORDER BY ... COLLATE "C"`, so a prefix shared by tens of
-- thousands of users still returns its first page from the index.
CREATE INDEX users_username_prefix ON users (username COLLATE "C");
CREATE INDEX users_display_name_prefix ON users ((lower(display_name) COLLATE "C"), id);
