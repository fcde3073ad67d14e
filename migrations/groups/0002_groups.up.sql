-- Groups, channels, direct conversations, members, roles and bans.
-- Runs with search_path = groups, public.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE groups (
    id              uuid PRIMARY KEY,
    -- 'direct': a direct conversation, a private group of 2-10 people with
    -- one channel and no roles beyond membership.
    kind            text NOT NULL CHECK (kind IN ('group', 'direct')),
    name            text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description     text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    avatar_media_id uuid,
    visibility      text NOT NULL CHECK (visibility IN ('public', 'private')),
    -- Sorted participant ids of a direct conversation: opening it twice
    -- finds the same row.
    direct_key      text UNIQUE,
    created_by      uuid NOT NULL,
    member_count    integer NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CHECK (kind = 'group' OR visibility = 'private')
);

-- Public group search: short queries by prefix, longer ones by substring.
CREATE INDEX groups_public_name_prefix ON groups ((lower(name) COLLATE "C"), id)
    WHERE visibility = 'public';
CREATE INDEX groups_public_name_trgm ON groups USING gin (lower(name) gin_trgm_ops)
    WHERE visibility = 'public';

CREATE TABLE channels (
    id          uuid PRIMARY KEY,
    group_id    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 80),
    topic       text NOT NULL DEFAULT '' CHECK (char_length(topic) <= 500),
    visibility  text NOT NULL CHECK (visibility IN ('public', 'private')),
    -- Announcement channel: only owner and admins post.
    broadcast   boolean NOT NULL DEFAULT false,
    is_default  boolean NOT NULL DEFAULT false,
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- The default channel is where everyone lands: always public.
    CHECK (NOT is_default OR visibility = 'public')
);

CREATE UNIQUE INDEX channels_group_name_key ON channels (group_id, lower(name));
CREATE UNIQUE INDEX channels_one_default ON channels (group_id) WHERE is_default;

CREATE TABLE group_members (
    group_id    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'moderator', 'member')),
    joined_at   timestamptz NOT NULL DEFAULT now(),
    muted_until timestamptz,
    PRIMARY KEY (group_id, user_id)
);

-- "My groups" and "conversations I may read" start from the user.
CREATE INDEX group_members_user ON group_members (user_id, group_id);
-- Exactly one owner per group (at most one here; at least one is kept by
-- the rules: the owner cannot leave or be removed, only replaced).
CREATE UNIQUE INDEX group_members_one_owner ON group_members (group_id) WHERE role = 'owner';

-- Members of private channels (access), and of public channels that joined
-- them explicitly (their sidebar). Rows go when the user leaves the group.
CREATE TABLE channel_members (
    channel_id  uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    group_id    uuid NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id),
    FOREIGN KEY (group_id, user_id) REFERENCES group_members (group_id, user_id) ON DELETE CASCADE
);

CREATE INDEX channel_members_member ON channel_members (group_id, user_id);

CREATE TABLE group_bans (
    group_id    uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    banned_by   uuid NOT NULL,
    reason      text NOT NULL DEFAULT '' CHECK (char_length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
