-- Uploaded files. Runs with search_path = media, public.
-- Content lives in object storage under its SHA-256 (identical uploads are
-- stored once); each upload is a row of its own (owner, name).
CREATE TABLE media (
    id             uuid PRIMARY KEY,  -- UUIDv7
    owner_id       uuid NOT NULL,
    filename       text NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 255),
    content_type   text NOT NULL,
    size           bigint NOT NULL CHECK (size > 0),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width          integer,
    height         integer,
    -- Images are 'pending' until metadata is stripped and thumbnails exist.
    state          text NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    failure        text,
    -- [{"size": 64, "width": .., "height": .., "content_type": ..}, ...]
    thumbnails     text NOT NULL DEFAULT '[]',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX media_owner ON media (owner_id, id);
CREATE INDEX media_sha256 ON media (sha256);
