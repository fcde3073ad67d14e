-- Messages, threads, edits, reactions, attachments, read positions,
-- notifications and idempotency keys. Runs with search_path = messages, public.

-- One row per channel that has messages: the sequence counter. Sending
-- locks this row, so sequence numbers increase by exactly one, in commit
-- order, without gaps.
CREATE TABLE channel_state (
    channel_id uuid PRIMARY KEY,
    group_id   uuid NOT NULL,
    last_seq   bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
    id             uuid PRIMARY KEY,  -- UUIDv7
    channel_id     uuid NOT NULL REFERENCES channel_state (channel_id) ON DELETE CASCADE,
    group_id       uuid NOT NULL,
    seq            bigint NOT NULL CHECK (seq > 0),
    author_id      uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('text', 'image', 'file', 'system')),
    content        text NOT NULL CHECK (char_length(content) <= 4000),
    reply_to       uuid REFERENCES messages (id) ON DELETE SET NULL,
    thread_root_id uuid REFERENCES messages (id) ON DELETE CASCADE,
    reply_count    integer NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    last_reply_at  timestamptz,
    mention_ids    uuid[] NOT NULL DEFAULT '{}',
    client_id      text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    edited_at      timestamptz,
    deleted_at     timestamptz,
    -- 'simple': no stemming, so every language is searchable the same way.
    search         tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
    CHECK (deleted_at IS NULL OR content = '')
);

-- History of a channel by position: the keyset of every page.
CREATE UNIQUE INDEX messages_channel_seq ON messages (channel_id, seq);
CREATE INDEX messages_thread ON messages (thread_root_id, seq) WHERE thread_root_id IS NOT NULL;
-- The original API pages a group's messages, newest first.
CREATE INDEX messages_group ON messages (group_id, id);
CREATE INDEX messages_search ON messages USING gin (search) WHERE deleted_at IS NULL;

CREATE TABLE message_edits (
    id               bigserial PRIMARY KEY,
    message_id       uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    previous_content text NOT NULL,
    replaced_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_edits_message ON message_edits (message_id, id);

CREATE TABLE message_reactions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      text NOT NULL CHECK (char_length(emoji) BETWEEN 1 AND 64),
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE message_attachments (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position   smallint NOT NULL,
    media_id   uuid NOT NULL,
    PRIMARY KEY (message_id, position)
);
-- "Where is this file attached?" (download authorization).
CREATE INDEX message_attachments_media ON message_attachments (media_id);

-- One read position per member per channel, not a row per message per
-- reader: a 10,000-member channel costs 10,000 rows, whatever its history.
CREATE TABLE message_reads (
    channel_id      uuid NOT NULL,
    user_id         uuid NOT NULL,
    last_read_seq   bigint NOT NULL CHECK (last_read_seq >= 0),
    last_message_id uuid NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);
-- "Who has read message N" = positions at or past N.
CREATE INDEX message_reads_position ON message_reads (channel_id, last_read_seq, user_id);
CREATE INDEX message_reads_user ON message_reads (user_id);

-- Mentions, replies and direct messages only: never a row per member per
-- message of a big group (unread counts come from read positions).
CREATE TABLE notifications (
    id         uuid PRIMARY KEY,  -- UUIDv7
    user_id    uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('mention', 'reply', 'direct_message')),
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL,
    group_id   uuid NOT NULL,
    seq        bigint NOT NULL,
    actor_id   uuid NOT NULL,
    excerpt    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    UNIQUE (user_id, message_id)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id, channel_id, seq) WHERE read_at IS NULL;

-- A retried send finds the message its first attempt stored. Kept at
-- least 24 hours (the service prunes older keys).
CREATE TABLE idempotency_keys (
    author_id  uuid NOT NULL,
    key        text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 128),
    -- Deferred: the key is claimed first, so a concurrent retry waits for
    -- the first attempt instead of storing a second copy.
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE
                   DEFERRABLE INITIALLY DEFERRED,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (author_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
