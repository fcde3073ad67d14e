ALTER TABLE message_attachments
    DROP COLUMN IF EXISTS filename,
    DROP COLUMN IF EXISTS content_type,
    DROP COLUMN IF EXISTS size;
