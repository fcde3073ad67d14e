#!/usr/bin/env python3
"""Migrations keep the previous release's binaries working (expand, then
contract a release later): docs/deployment.md, "Upgrades".

    tools/check-migrations.py                  the check (./dev test)
    tools/check-migrations.py --self-test      the check's own cases
    tools/check-migrations.py --release X.Y.Z  release step: record every
                                               migration as shipped in X.Y.Z

migrations/released.txt lists the migrations already shipped, with their
SHA-256: a shipped migration must never change (databases have run it), and
every other (new) `*.up.sql` may only expand the schema. A destructive
statement (dropping or renaming a table or column, a column type change,
SET NOT NULL without a default, a NOT NULL column added without a default,
TRUNCATE) breaks the binaries still running during a rolling deploy, so it
is refused unless the migration says it is the contract step of a later
release:

    -- contract: 0.3.0 (drops users.legacy_name, unused since 0.2.0)

naming a release after the one recorded in released.txt.
"""

import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
MANIFEST = MIGRATIONS / "released.txt"

# (name, pattern) over one statement, comments and string literals removed.
DESTRUCTIVE = [
    ("drops a table, view, schema or type",
     r"\bDROP\s+(TABLE|VIEW|MATERIALIZED\s+VIEW|SCHEMA|TYPE|SEQUENCE|FUNCTION)\b"),
    ("drops a column", r"\bDROP\s+COLUMN\b"),
    ("renames a table, column or constraint", r"\bRENAME\b"),
    ("changes a column's type", r"\bALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE\b"),
    ("empties a table", r"\bTRUNCATE\b"),
]
CONTRACT = re.compile(r"^\s*--\s*contract:\s*(\d+)\.(\d+)\.(\d+)\b", re.IGNORECASE | re.MULTILINE)


def strip(sql):
    """The SQL without comments and string literals (their words are not
    statements)."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    sql = re.sub(r"\$(\w*)\$.*?\$\1\$", " ", sql, flags=re.DOTALL)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def problems_in(sql):
    """What in `sql` would break binaries of the previous release."""
    found = []
    for statement in strip(sql).split(";"):
        flat = " ".join(statement.split())
        if not flat:
            continue
        for reason, pattern in DESTRUCTIVE:
            if re.search(pattern, flat, re.IGNORECASE):
                found.append((reason, flat))
        for clause in re.split(r",(?![^()]*\))", flat):
            upper = clause.upper()
            if re.search(r"\bSET\s+NOT\s+NULL\b", upper) and not re.search(
                    r"\bSET\s+DEFAULT\b", flat.upper()):
                found.append(("sets NOT NULL on a column without a default", flat))
            if re.search(r"\bADD\s+(COLUMN\s+)?(IF\s+NOT\s+EXISTS\s+)?\w+\b", upper) \
                    and re.search(r"\bNOT\s+NULL\b", upper) and "DEFAULT" not in upper \
                    and "CONSTRAINT" not in upper.split("ADD", 1)[1][:12]:
                found.append(("adds a NOT NULL column without a default", flat))
    return found


def read_manifest():
    release, shipped = None, {}
    if not MANIFEST.exists():
        return release, shipped
    for line in MANIFEST.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("release "):
            release = tuple(int(part) for part in line.split()[1].split("."))
            continue
        digest, name = line.split(None, 1)
        shipped[name] = digest
    return release, shipped


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migration_files():
    return sorted(p for p in MIGRATIONS.glob("*/*.sql"))


def check():
    release, shipped = read_manifest()
    if release is None:
        return [f"{MANIFEST.relative_to(ROOT)}: no `release X.Y.Z` line"]
    errors = []
    present = {str(p.relative_to(MIGRATIONS)): p for p in migration_files()}
    for name, recorded in shipped.items():
        if name not in present:
            errors.append(f"migrations/{name}: shipped in a release, now missing")
        elif digest(present[name]) != recorded:
            errors.append(f"migrations/{name}: shipped in a release, now changed "
                          "(databases ran the old text; add a new migration instead)")
    new = [name for name in present if name not in shipped and name.endswith(".up.sql")]
    for name in new:
        sql = present[name].read_text()
        found = problems_in(sql)
        if not found:
            continue
        marker = CONTRACT.search(sql)
        if marker and tuple(int(g) for g in marker.groups()) > release:
            continue
        released = ".".join(map(str, release))
        for reason, statement in found:
            errors.append(
                f"migrations/{name}: {reason}: `{statement[:100]}`: the previous release's "
                f"binaries still run during a rolling deploy. Expand now and contract in a "
                f"later release, marked `-- contract: <release after {released}>`")
    print(f"check-migrations: {len(shipped)} shipped, {len(new)} new up-migration(s) "
          f"checked against release {'.'.join(map(str, release))}")
    return errors


def record(version):
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        sys.exit("--release wants a version X.Y.Z")
    lines = [
        "# Migrations shipped in a release (tools/check-migrations.py --release X.Y.Z",
        "# rewrites this at release time): they must never change, and new ones",
        "# may only expand the schema (docs/deployment.md, Upgrades).",
        f"release {version}",
    ]
    for path in migration_files():
        lines.append(f"{digest(path)}  {path.relative_to(MIGRATIONS)}")
    MANIFEST.write_text("\n".join(lines) + "\n")
    print(f"check-migrations: {len(lines) - 4} migrations recorded as shipped in {version}")


def self_test():
    refused = {
        "ALTER TABLE users DROP COLUMN bio;": "drops a column",
        "alter table users rename column bio to about;": "renames",
        "ALTER TABLE users RENAME TO people;": "renames",
        "DROP TABLE sign_in_attempts;": "drops a table",
        "ALTER TABLE users ALTER COLUMN bio SET NOT NULL;": "sets NOT NULL",
        "ALTER TABLE users ALTER COLUMN bio TYPE varchar(10);": "type",
        "ALTER TABLE users ADD COLUMN nick text NOT NULL;": "adds a NOT NULL column",
        "TRUNCATE users;": "empties",
    }
    allowed = [
        "ALTER TABLE users ADD COLUMN nick text;",
        "ALTER TABLE users ADD COLUMN nick text NOT NULL DEFAULT '';",
        "ALTER TABLE users ALTER COLUMN bio SET DEFAULT '', ALTER COLUMN bio SET NOT NULL;",
        "CREATE INDEX users_nick ON users (nick); DROP INDEX IF EXISTS users_old;",
        "-- we used to DROP COLUMN here\nCREATE TABLE t (id uuid PRIMARY KEY, note text NOT NULL);",
        "COMMENT ON TABLE users IS 'never DROP TABLE this';",
        "ALTER TABLE users ADD CONSTRAINT users_nick_len CHECK (char_length(nick) < 40) NOT VALID;",
    ]
    failures = 0
    for sql, reason in refused.items():
        found = problems_in(sql)
        if not any(reason in r for r, _ in found):
            print(f"self-test: not refused ({reason}): {sql}")
            failures += 1
    for sql in allowed:
        if problems_in(sql):
            print(f"self-test: refused but harmless: {sql}: {problems_in(sql)}")
            failures += 1
    if failures:
        sys.exit(1)
    print(f"check-migrations: self-test passed ({len(refused)} refused, {len(allowed)} allowed)")


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        return self_test()
    if len(args) == 2 and args[0] == "--release":
        return record(args[1])
    if args:
        sys.exit(__doc__)
    errors = check()
    for error in errors:
        print(f"check-migrations: {error}", file=sys.stderr)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
