DROP TABLE sign_in_attempts_by_login;
