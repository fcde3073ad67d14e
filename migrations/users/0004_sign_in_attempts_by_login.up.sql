-- Password guesses at logins that name no account, counted like guesses at
-- real accounts, so a refusal (429 after the allowance) never tells whether
-- an account exists. Keyed by the login as typed, lower-cased; rows whose
-- window ended are pruned a few at a time by later guesses.
CREATE TABLE sign_in_attempts_by_login (
    login        text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL
);

CREATE INDEX sign_in_attempts_by_login_window ON sign_in_attempts_by_login (window_start);
