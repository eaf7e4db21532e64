"""Users, roles and grants of a Heron server, kept in ``auth.db`` beside the engine's catalog.

Passwords are stored as scrypt hashes with a per-user salt and compared in
constant time. ``root`` and members of the ``admin`` role may do anything;
other users may do what their roles were granted, per object (a collection,
``*`` for all) and privilege (Milvus's names, ``*`` or ``All`` for all).

A password check costs ~50 ms of CPU, so the server runs it on a thread of
its own (never on the event loop) and only when it must: a credential that
passed is remembered for `TOKEN_TTL` seconds under a keyed hash (never the
password itself) until the user's password changes or the user is dropped,
and `FailedLogins` refuses, without checking, logins from a peer or for a
user that failed too often lately.

Every row of ``auth.db`` carries a CRC (`_row_checksums`, as the catalog's
rows do), checked for every row when the store opens and for the rows each
password or privilege check reads: a damaged row raises `CorruptionError`
naming the file and the row, so the server refuses to start, or refuses
the call, and never grants or denies on a damaged value. A row gone entirely
shows in the tables' row digest, checked at open too. `check_file` checks
a file without opening it for use (``heron verify``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from .._errors import (
    AlreadyExistsError,
    AuthenticationError,
    CorruptionError,
    NotFoundError,
    ParamError,
    PermissionDeniedError,
)
from ..engine._access import BUILTIN_ROLES, ROOT
from ..engine.storage import _row_checksums as rc
from ._privileges import BUILTIN_GROUPS, OBJECT_TYPES, PRIVILEGE_NAMES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, salt BLOB, hash BLOB, description TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS roles(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS user_roles(user TEXT, role TEXT, PRIMARY KEY(user, role));
CREATE TABLE IF NOT EXISTS grants(role TEXT, object TEXT, object_name TEXT, db TEXT, privilege TEXT,
                                  PRIMARY KEY(role, object, object_name, db, privilege));
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS role_info(name TEXT PRIMARY KEY, description TEXT);
CREATE TABLE IF NOT EXISTS privilege_groups(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS group_privileges(grp TEXT, privilege TEXT, PRIMARY KEY(grp, privilege));
"""
_TABLES = (
    rc.Table("users", ("name", "salt", "hash", "description"), ("name",)),
    rc.Table("roles", ("name",), ("name",)),
    rc.Table("user_roles", ("user", "role"), ("user", "role")),
    rc.Table("grants", ("role", "object", "object_name", "db", "privilege"),
             ("role", "object", "object_name", "db", "privilege")),
    rc.Table("meta", ("key", "value"), ("key",)),
    rc.Table("role_info", ("name", "description"), ("name",)),
    rc.Table("privilege_groups", ("name",), ("name",)),
    rc.Table("group_privileges", ("grp", "privilege"), ("grp", "privilege")),
)
_BY_NAME = {t.name: t for t in _TABLES}
#: The ``meta`` row that says the ``row_digest`` table is kept (see `_row_checksums`).
_DIGEST_KEY = "row_digest"


def check_file(path: str) -> tuple[int, list[str]]:
    """Check the ``auth.db`` at ``path`` without changing it: how many rows were checked, and what is damaged.

    SQLite's integrity check, every row's CRC and every table's row digest,
    as opening does (a file not opened since CRCs or digests existed is
    checked for what it has).
    """
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return 0, [f"cannot be opened: {exc}"]
    try:
        problems = [f"integrity check: {line}" for (line,) in db.execute("PRAGMA integrity_check") if line != "ok"]
        if problems or not rc.has_crc_columns(db, _TABLES):
            return 0, problems
        rc.register(db)
        rows = sum(db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in _TABLES)
        problems += [f"{row.describe()}: users, roles and grants cannot be trusted" for row in rc.bad_rows(db, _TABLES)]
        if rc.has_digest(db) and db.execute("SELECT 1 FROM meta WHERE key=?", (_DIGEST_KEY,)).fetchall():
            problems += [f"{m.describe()}: users, roles and grants cannot be trusted"
                         for m in rc.digest_mismatches(db, _TABLES)]
        return rows, problems
    except sqlite3.Error as exc:
        return 0, [*problems, f"damaged: {exc}"]
    finally:
        db.close()


#: Seconds a credential that passed is accepted without checking the password again.
TOKEN_TTL = 600.0
#: Credentials remembered at most (the oldest are forgotten first).
TOKEN_CACHE_SIZE = 10_000


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class AuthStore:
    """Thread-safe store of credentials and privileges.

    ``password_checks`` counts the scrypt computations made, and
    ``password_checks_on_loop`` those made on a thread running an event loop
    (the server makes none there).
    """

    def __init__(self, path: str, root_password: str) -> None:
        self._lock = threading.Lock()
        self._key = os.urandom(32)  # keys the credential cache; never leaves the process
        self._tokens: dict[bytes, tuple[str, float]] = {}
        self.password_checks = 0
        self.password_checks_on_loop = 0
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise
        for role in BUILTIN_ROLES:
            self._db.execute("INSERT OR IGNORE INTO roles(name) VALUES (?)", (role,))
        if not self._rows("SELECT 1 FROM users WHERE name=?", (ROOT,)):
            self._set_password(ROOT, root_password)

    def _open(self) -> None:
        """Check the file, add CRCs to rows written before them (once, recorded), check every row's CRC."""
        try:
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise CorruptionError(f"auth database {self.path!r} is damaged ({'; '.join(problems[:3])}); restore "
                                  "it from a backup (it holds every user, role and grant)", path=self.path)
        self._db.executescript(_SCHEMA)
        rc.install(self._db, _TABLES)
        filled: dict[str, int] = {}
        if not self._db.execute("SELECT 1 FROM meta WHERE key='row_crc'").fetchall():
            self._db.execute("BEGIN IMMEDIATE")
            filled = rc.fill_missing(self._db, _TABLES)
            self._db.execute("INSERT INTO meta(key, value) VALUES ('row_crc', ?)",
                             (json.dumps({"since": time.time(), "filled": filled}, sort_keys=True),))
            self._db.execute("COMMIT")
        # Rows that had no CRCs until now were written without the digest's triggers too.
        if filled or not self._db.execute("SELECT 1 FROM meta WHERE key=?", (_DIGEST_KEY,)).fetchall():
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                             (_DIGEST_KEY, json.dumps({"since": time.time()})))
            rc.reset_digest(self._db, _TABLES)
            self._db.execute("COMMIT")
        bad = rc.bad_rows(self._db, _TABLES, limit=1)
        if bad:
            raise self._damage(bad[0])
        try:
            missing = rc.digest_mismatches(self._db, _TABLES)
        except sqlite3.DatabaseError as exc:
            raise CorruptionError(f"auth database {self.path!r} is damaged ({exc}); restore it from a backup",
                                  path=self.path) from None
        if missing:
            raise CorruptionError(f"auth database {self.path!r}: {missing[0].describe()}; users, roles and grants "
                                  "cannot be trusted: restore auth.db from a backup", path=self.path)

    def _damage(self, row: rc.BadRow) -> CorruptionError:
        return CorruptionError(f"auth database {self.path!r}: {row.describe()}; users, roles and grants cannot "
                               "be trusted: restore auth.db from a backup", path=self.path)

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _checked(self, table: str, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        """The rows of ``table`` matching ``where``, each checked against its CRC (`CorruptionError` if one fails)."""
        t = _BY_NAME[table]
        cols = ", ".join(t.columns)
        rows = self._rows(f"SELECT rowid, crc, {cols} FROM {table} WHERE {where}", args)
        out = []
        for rowid, crc, *values in rows:
            computed = rc.row_crc(table, *values)
            if crc != computed:
                raise self._damage(rc.BadRow(t, rowid, dict(zip(t.columns, values, strict=True)), crc, computed))
            out.append(dict(zip(t.columns, values, strict=True)))
        return out

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _set_password(self, user: str, password: str, description: str = "") -> None:
        salt = os.urandom(16)
        self._exec(
            "INSERT INTO users(name, salt, hash, description) VALUES (?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET salt=excluded.salt, hash=excluded.hash",
            (user, salt, self._hash(password, salt), description),
        )
        self._forget(user)

    def _hash(self, password: str, salt: bytes) -> bytes:
        with self._lock:
            self.password_checks += 1
            self.password_checks_on_loop += _on_event_loop()
        return hash_password(password, salt)

    # -- authentication --------------------------------------------------------------------
    def verify(self, user: str, password: str) -> bool:
        """Whether ``password`` is the user's (a password check: run it off the event loop)."""
        row = self._checked("users", "name=?", (user,))
        return bool(row) and hmac.compare_digest(self._hash(password, row[0]["salt"]), row[0]["hash"])

    def token_key(self, token: str) -> bytes:
        """The cache key of a credential: a keyed hash (BLAKE2b with a key of this process), so the cache holds no password."""
        return hashlib.blake2b(token.encode(), key=self._key, digest_size=32).digest()

    def cached_user(self, key: bytes) -> str | None:
        """The user of a credential that passed within `TOKEN_TTL` seconds (cheap: no password check)."""
        hit = self._tokens.get(key)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def authenticate(self, token: str) -> str:
        """The user a ``user:password`` token belongs to; `AuthenticationError` otherwise.

        Checks the password unless the credential passed recently (see `cached_user`).
        """
        key = self.token_key(token)
        user = self.cached_user(key)
        if user is not None:
            return user
        user, sep, password = token.partition(":")
        if not sep or not self.verify(user, password):
            raise AuthenticationError("authentication failed: wrong user name or password")
        with self._lock:
            self._tokens[key] = (user, time.monotonic() + TOKEN_TTL)
            while len(self._tokens) > TOKEN_CACHE_SIZE:
                del self._tokens[next(iter(self._tokens))]
        return user

    def _forget(self, user: str) -> None:
        """Drop the remembered credentials of ``user`` (its password changed, or it is gone)."""
        with self._lock:
            for key in [k for k, (u, _) in self._tokens.items() if u == user]:
                del self._tokens[key]

    # -- users -------------------------------------------------------------------------------
    def create_user(self, user: str, password: str, description: str = "") -> None:
        if not user or not password:
            raise ParamError("a user needs a name and a password")
        if self._rows("SELECT 1 FROM users WHERE name=?", (user,)):
            raise AlreadyExistsError(f"user {user!r} already exists")
        self._set_password(user, password, description)

    def update_password(self, user: str, old: str, new: str, by: str) -> None:
        if not self._rows("SELECT 1 FROM users WHERE name=?", (user,)):
            raise NotFoundError(f"user {user!r} not found")
        if not self.is_admin(by) and (by != user or not self.verify(user, old)):
            raise PermissionDeniedError(f"user {by!r} may not change the password of {user!r}")
        self._set_password(user, new)

    def update_user(self, user: str, description: str, by: str) -> None:
        """Set a user's description: the user itself or an administrator."""
        if not self._rows("SELECT 1 FROM users WHERE name=?", (user,)):
            raise NotFoundError(f"user {user!r} not found")
        if not self.is_admin(by) and by != user:
            raise PermissionDeniedError(f"user {by!r} may not change the description of {user!r}")
        self._exec("UPDATE users SET description=? WHERE name=?", (description, user))

    def user_description(self, user: str) -> str:
        rows = self._checked("users", "name=?", (user,))
        return str(rows[0]["description"] or "") if rows else ""

    def delete_user(self, user: str) -> None:
        if user == ROOT:
            raise ParamError("the root user cannot be deleted")
        self._exec("DELETE FROM users WHERE name=?", (user,))
        self._exec("DELETE FROM user_roles WHERE user=?", (user,))
        self._forget(user)

    def users(self) -> list[str]:
        return [n for (n,) in self._rows("SELECT name FROM users ORDER BY name")]

    def roles_of(self, user: str) -> list[str]:
        return sorted(r["role"] for r in self._checked("user_roles", "user=?", (user,)))

    def is_admin(self, user: str) -> bool:
        return user == ROOT or "admin" in self.roles_of(user)

    # -- roles ---------------------------------------------------------------------------------
    def create_role(self, role: str, description: str = "") -> None:
        if not role:
            raise ParamError("a role needs a name")
        if self._rows("SELECT 1 FROM roles WHERE name=?", (role,)):
            raise AlreadyExistsError(f"role {role!r} already exists")
        self._exec("INSERT INTO roles(name) VALUES (?)", (role,))
        if description:
            self._exec("INSERT OR REPLACE INTO role_info(name, description) VALUES (?,?)", (role, description))

    def alter_role(self, role: str, description: str) -> None:
        self._need_role(role)
        self._exec("INSERT OR REPLACE INTO role_info(name, description) VALUES (?,?)", (role, description))

    def role_description(self, role: str) -> str:
        rows = self._checked("role_info", "name=?", (role,))
        return str(rows[0]["description"] or "") if rows else ""

    def _need_role(self, role: str) -> None:
        if not self._rows("SELECT 1 FROM roles WHERE name=?", (role,)):
            raise NotFoundError(f"role {role!r} not found", code=65535)

    def drop_role(self, role: str, force: bool = False) -> None:
        if role in BUILTIN_ROLES:
            raise ParamError(f"the built-in role {role!r} cannot be dropped")
        if not force and self._rows("SELECT 1 FROM user_roles WHERE role=?", (role,)):
            raise ParamError(f"role {role!r} is still granted to users; revoke it or pass force_drop=True")
        for sql in (
            "DELETE FROM roles WHERE name=?",
            "DELETE FROM user_roles WHERE role=?",
            "DELETE FROM grants WHERE role=?",
            "DELETE FROM role_info WHERE name=?",
        ):
            self._exec(sql, (role,))

    def roles(self) -> list[str]:
        return [n for (n,) in self._rows("SELECT name FROM roles ORDER BY name")]

    def users_of(self, role: str) -> list[str]:
        return [u for (u,) in self._rows("SELECT user FROM user_roles WHERE role=? ORDER BY user", (role,))]

    def set_user_role(self, user: str, role: str, add: bool) -> None:
        if not self._rows("SELECT 1 FROM users WHERE name=?", (user,)):
            raise NotFoundError(f"user {user!r} not found")
        if not self._rows("SELECT 1 FROM roles WHERE name=?", (role,)):
            raise NotFoundError(f"role {role!r} not found")
        sql = (
            "INSERT OR IGNORE INTO user_roles(user, role) VALUES (?,?)"
            if add
            else "DELETE FROM user_roles WHERE user=? AND role=?"
        )
        self._exec(sql, (user, role))

    # -- privileges ------------------------------------------------------------------------------
    def set_grant(self, role: str, obj: str, name: str, db: str, privilege: str, add: bool,
                  v2: bool = False) -> None:
        """Grant (``add``) or revoke a privilege; Milvus's errors (code 65535) for an unknown object type,
        privilege or role, with nothing written. Granting on objects that do not exist yet is allowed,
        as in Milvus."""
        if obj not in OBJECT_TYPES:
            raise ParamError(f"the object entity in the request is nil or invalid: object type {obj!r}, expected "
                             f"one of {sorted(OBJECT_TYPES)}", code=65535)
        if privilege not in ("*", *PRIVILEGE_NAMES) and not self._is_group(privilege):
            raise ParamError(f"not found the privilege name[{privilege}]: expected a Milvus privilege "
                             "(Search, Insert, ...), a privilege group, or '*'", code=65535)
        self._need_role(role)
        args = (role, obj, name or "*", db or "default", privilege)
        sql = (
            "INSERT OR IGNORE INTO grants(role, object, object_name, db, privilege) VALUES (?,?,?,?,?)"
            if add
            else "DELETE FROM grants WHERE role=? AND object=? AND object_name=? AND db=? AND privilege=?"
        )
        self._exec(sql, args)

    # -- privilege groups ------------------------------------------------------------------------
    def _is_group(self, name: str) -> bool:
        return bool(self._rows("SELECT 1 FROM privilege_groups WHERE name=?", (name,)))

    def create_privilege_group(self, group: str) -> None:
        if not group:
            raise ParamError("a privilege group needs a name")
        if group in PRIVILEGE_NAMES:
            raise ParamError(f"privilege group name [{group}] is defined by built in privileges or privilege "
                             "groups in system", code=65535)
        if self._is_group(group):
            raise AlreadyExistsError(f"privilege group [{group}] already exists")
        self._exec("INSERT INTO privilege_groups(name) VALUES (?)", (group,))

    def drop_privilege_group(self, group: str) -> None:
        used = self._rows("SELECT role FROM grants WHERE privilege=? LIMIT 1", (group,))
        if used:
            raise ParamError(f"privilege group [{group}] is used by role [{used[0][0]}], Use REVOKE API to revoke "
                             "it first", code=65535)
        self._exec("DELETE FROM group_privileges WHERE grp=?", (group,))
        self._exec("DELETE FROM privilege_groups WHERE name=?", (group,))

    def privilege_groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {n: [] for (n,) in self._rows("SELECT name FROM privilege_groups")}
        for row in self._checked("group_privileges", "1", ()):
            groups.setdefault(row["grp"], []).append(row["privilege"])
        return {g: sorted(p) for g, p in groups.items()}

    def set_group_privileges(self, group: str, privileges: tuple[str, ...], add: bool) -> None:
        if not self._is_group(group):
            raise ParamError(f"there is no privilege group name [{group}] to operate", code=65535)
        bad = [p for p in privileges if p not in PRIVILEGE_NAMES]
        if bad:
            raise ParamError(f"privilege name [{bad[0]}] is not valid: expected a Milvus privilege "
                             "(Search, Insert, ...)", code=65535)
        sql = ("INSERT OR IGNORE INTO group_privileges(grp, privilege) VALUES (?,?)" if add
               else "DELETE FROM group_privileges WHERE grp=? AND privilege=?")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, [(group, p) for p in privileges])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def grants(self, role: str, obj: str = "", name: str = "", db: str = "") -> list[tuple[str, ...]]:
        rows = self._rows("SELECT role, object, object_name, db, privilege FROM grants WHERE role=?", (role,))
        return [
            r
            for r in rows
            if (not obj or r[1] == obj) and (not name or r[2] == name) and (not db or r[3] == db)
        ]

    def _role_grants(self, user: str) -> list[tuple[str, str, str, str]]:
        """(object, object name, database, privilege) of every grant to the user's roles and ``public``."""
        roles = self.roles_of(user) + ["public"]
        marks = ",".join("?" * len(roles))
        rows = self._checked("grants", f"role IN ({marks})", tuple(roles))
        return [(r["object"], r["object_name"], r["db"], r["privilege"]) for r in rows]

    def visible_collections(self, user: str, db: str) -> set[str] | None:
        """Names of the collections of ``db`` the user holds some privilege on; None for all of them."""
        if self.is_admin(user):
            return None
        names = set()
        for o, n, d, p in self._role_grants(user):
            if d not in (db, "*"):
                continue
            if o == "Global" and p in ("*", "All"):
                return None
            if o == "Collection":
                if n == "*":
                    return None
                names.add(n)
        return names

    def visible_databases(self, user: str) -> set[str] | None:
        """Names of the databases the user holds some grant in; None for all of them."""
        if self.is_admin(user):
            return None
        dbs = {d for _, _, d, _ in self._role_grants(user)}
        return None if "*" in dbs else dbs

    def allowed(self, user: str, obj: str, name: str, db: str, privilege: str) -> bool:
        """Whether ``user`` holds ``privilege`` on object ``obj``/``name`` in database ``db``."""
        if self.is_admin(user):
            return True
        grants = self._role_grants(user)
        groups: dict[str, Any] = dict(BUILTIN_GROUPS)
        custom = {n for (n,) in self._rows("SELECT name FROM privilege_groups")}
        if any(g[3] in custom for g in grants):
            groups.update(self.privilege_groups())
        for o, n, d, p in grants:
            if o in (obj, "Global") and n in (name, "*") and d in (db, "*") and (
                p in (privilege, "*", "All") or privilege in groups.get(p, ())
            ):
                return True
        return False


class FailedLogins:
    """Failed logins per key (a peer's host, a user name), and how long each key must wait.

    The first `FREE` failures of a key cost nothing; each one after blocks
    the key for `BASE_SECONDS` doubled per failure, up to `MAX_SECONDS`. A
    blocked key's logins are refused at once, without a password check.
    Once a key has failed, its checks run one at a time past the free ones,
    so concurrent attempts cannot slip in between a check and its failure.
    A successful login clears the key. Thread-safe; holds at most `MAX_KEYS`.
    """

    FREE = 5
    BASE_SECONDS = 1.0
    MAX_SECONDS = 30.0
    MAX_KEYS = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> [failures, blocked until, checks in flight]
        self._keys: dict[str, list[Any]] = {}
        self.refused = 0

    def admit(self, keys: tuple[str, ...]) -> None:
        """Take a check slot for every key, or raise `AuthenticationError` saying how long to wait."""
        now = self._clock()
        with self._lock:
            for key in keys:
                entry = self._keys.get(key)
                if entry is None:
                    continue
                fails, until, inflight = entry
                wait = until - now
                if wait > 0 or (fails and fails + inflight >= self.FREE and inflight):
                    self.refused += 1
                    raise AuthenticationError(
                        f"too many failed attempts for {key}; retry in {max(1, math.ceil(wait))} s"
                    )
            for key in keys:
                self._entry(key)[2] += 1

    def done(self, keys: tuple[str, ...], ok: bool) -> None:
        """Give back the slots `admit` took, counting a failure (or clearing the keys on success)."""
        now = self._clock()
        with self._lock:
            for key in keys:
                entry = self._entry(key)
                entry[2] -= 1
                if ok:
                    if entry[2] == 0:
                        del self._keys[key]
                    else:
                        entry[0], entry[1] = 0, 0.0
                    continue
                entry[0] += 1
                over = entry[0] - self.FREE
                if over >= 0:
                    entry[1] = now + min(self.MAX_SECONDS, self.BASE_SECONDS * 2.0**over)

    def _entry(self, key: str) -> list[Any]:
        entry = self._keys.get(key)
        if entry is None:
            if len(self._keys) >= self.MAX_KEYS:
                self._prune()
            entry = self._keys[key] = [0, 0.0, 0]
        return entry

    def _prune(self) -> None:
        """Forget keys that are neither blocked nor checking; the oldest others if still full."""
        now = self._clock()
        for key in [k for k, (_, until, inflight) in self._keys.items() if until <= now and not inflight]:
            del self._keys[key]
        while len(self._keys) >= self.MAX_KEYS:
            del self._keys[next(iter(self._keys))]
