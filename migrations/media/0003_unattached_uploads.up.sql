-- Uploads nobody uses yet, for the sweeper that deletes them after
-- media.unattached_upload_ttl_seconds. An upload is stored with
-- unattached_since = now(); attaching it to a message (CheckAttachable) or
-- using it as an avatar (ClaimMedia) sets it to NULL for good. NULL also
-- means "never swept": rows stored before this migration, and rows a
-- previous release's binary stores during a rolling deploy, cannot be told
-- apart from used ones, so they are kept.
ALTER TABLE media ADD COLUMN unattached_since timestamptz;

-- The sweeper's scan: only unattached rows, oldest first.
CREATE INDEX media_unattached ON media (unattached_since)
    WHERE unattached_since IS NOT NULL;
