-- What a message's attachments are, as the media service described them
-- when the message was sent, so history shows them without a call per file.
ALTER TABLE message_attachments
    ADD COLUMN filename     text NOT NULL DEFAULT '',
    ADD COLUMN content_type text NOT NULL DEFAULT '',
    ADD COLUMN size         bigint NOT NULL DEFAULT 0;
