DROP INDEX IF EXISTS media_unattached;
ALTER TABLE media DROP COLUMN IF EXISTS unattached_since;
