-- Password guesses per account per minute, counted before the hash is
-- checked, whichever login (username in any case, or email) named it.
CREATE TABLE sign_in_attempts (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL
);
