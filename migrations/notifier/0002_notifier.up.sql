-- The notifier's own state: devices, settings, and what it has learnt from
-- the other services' events (presence, read positions, names), so it
-- decides without calling anyone.

-- A device's Web Push subscription. An endpoint is one browser profile or
-- UnifiedPush app: registered again (by anyone) it is replaced.
CREATE TABLE subscriptions (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL,
    endpoint          text NOT NULL UNIQUE,
    p256dh            text NOT NULL,
    auth              text NOT NULL,
    device_name       text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_delivered_at timestamptz,
    -- Pushes refused for good in a row since the last delivery: a device
    -- that keeps refusing is dropped.
    failures          integer NOT NULL DEFAULT 0
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id, created_at);

CREATE TABLE settings (
    user_id     uuid PRIMARY KEY,
    level       text NOT NULL DEFAULT 'all' CHECK (level IN ('all', 'mentions', 'nothing')),
    privacy     text NOT NULL DEFAULT 'full' CHECK (privacy IN ('full', 'sender_only', 'hidden')),
    muted_until timestamptz,
    quiet_start time,
    quiet_end   time,
    time_zone   text,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)
       AND (quiet_start IS NULL) = (time_zone IS NULL))
);

-- A conversation's own settings; NULL follows the user's global ones.
CREATE TABLE channel_settings (
    user_id     uuid NOT NULL,
    channel_id  uuid NOT NULL,
    level       text CHECK (level IN ('all', 'mentions', 'nothing')),
    muted_until timestamptz,
    PRIMARY KEY (user_id, channel_id)
);

-- The newest presence.events.v1 record per user (by its sequence).
CREATE TABLE presence (
    user_id  uuid PRIMARY KEY,
    status   text NOT NULL CHECK (status IN ('online', 'away', 'offline')),
    sequence bigint NOT NULL
);

-- How far each user has read each channel (ReadPositionMoved).
CREATE TABLE read_positions (
    user_id    uuid NOT NULL,
    channel_id uuid NOT NULL,
    seq        bigint NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);

-- Display names of users and names of channels, from their events, for
-- what a notification says.
CREATE TABLE names (
    id   uuid PRIMARY KEY,
    name text NOT NULL
);

-- Notifications: waiting out their grace delay (`decided_at` NULL), then
-- kept once decided, so a replay of their events queues nothing and a push
-- counts what is unread; purged after the retention of deliveries.
CREATE TABLE pending (
    notification_id uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    channel_id      uuid NOT NULL,
    message_id      uuid NOT NULL,
    seq             bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('mention', 'reply', 'direct')),
    actor_id        uuid NOT NULL,
    excerpt         text NOT NULL,
    created_at      timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    decided_at      timestamptz
);
CREATE INDEX pending_due ON pending (due_at) WHERE decided_at IS NULL;
CREATE INDEX pending_by_conversation ON pending (user_id, channel_id, seq);
CREATE INDEX pending_decided ON pending (decided_at) WHERE decided_at IS NOT NULL;

-- One push to one device: at most one per (message, device), whatever the
-- retries and restarts. `payload` (the JSON before encryption) is kept
-- only until the push service has it.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    user_id          uuid NOT NULL,
    channel_id       uuid NOT NULL,
    message_id       uuid NOT NULL,
    -- The message's position in its channel.
    seq              bigint NOT NULL,
    notification_ids uuid[] NOT NULL,
    topic            text NOT NULL,
    urgency          text NOT NULL,
    payload          bytea,
    state            text NOT NULL DEFAULT 'sending'
                     CHECK (state IN ('sending', 'delivered', 'failed', 'superseded')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    last_error       text,
    UNIQUE (subscription_id, message_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'sending';
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE state <> 'sending';
