"""Users, roles and grants of a Heron server, kept in ``auth.db`` beside the engine's catalog.

Passwords are stored as scrypt hashes with a per-user salt and compared in
constant time. ``root`` and members of the ``admin`` role may do anything;
other users may do what their roles were granted, per object (a collection,
``*`` for all) and privilege (Milvus's names, ``*`` or ``All`` for all).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from typing import Any

from .._errors import (
    AlreadyExistsError,
    AuthenticationError,
    NotFoundError,
    ParamError,
    PermissionDeniedError,
)

ROOT = "root"
BUILTIN_ROLES = ("admin", "public")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, salt BLOB, hash BLOB, description TEXT DEFAULT '');
CREATE TABLE IF NOT EXISTS roles(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS user_roles(user TEXT, role TEXT, PRIMARY KEY(user, role));
CREATE TABLE IF NOT EXISTS grants(role TEXT, object TEXT, object_name TEXT, db TEXT, privilege TEXT,
                                  PRIMARY KEY(role, object, object_name, db, privilege));
"""


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class AuthStore:
    """Thread-safe store of credentials and privileges."""

    def __init__(self, path: str, root_password: str) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], bool] = {}
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        for role in BUILTIN_ROLES:
            self._db.execute("INSERT OR IGNORE INTO roles VALUES (?)", (role,))
        if not self._rows("SELECT 1 FROM users WHERE name=?", (ROOT,)):
            self._set_password(ROOT, root_password)

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)
            self._cache.clear()

    def _set_password(self, user: str, password: str, description: str = "") -> None:
        salt = os.urandom(16)
        self._exec(
            "INSERT INTO users(name, salt, hash, description) VALUES (?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET salt=excluded.salt, hash=excluded.hash",
            (user, salt, hash_password(password, salt), description),
        )

    # -- authentication --------------------------------------------------------------------
    def verify(self, user: str, password: str) -> bool:
        key = (user, hashlib.sha256(password.encode()).hexdigest())
        if key in self._cache:
            return self._cache[key]
        row = self._rows("SELECT salt, hash FROM users WHERE name=?", (user,))
        ok = bool(row) and hmac.compare_digest(hash_password(password, row[0][0]), row[0][1])
        with self._lock:
            self._cache[key] = ok
        return ok

    def authenticate(self, token: str) -> str:
        """The user a ``user:password`` token belongs to; `AuthenticationError` otherwise."""
        user, sep, password = token.partition(":")
        if not sep or not self.verify(user, password):
            raise AuthenticationError("authentication failed: wrong user name or password")
        return user

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

    def delete_user(self, user: str) -> None:
        if user == ROOT:
            raise ParamError("the root user cannot be deleted")
        self._exec("DELETE FROM users WHERE name=?", (user,))
        self._exec("DELETE FROM user_roles WHERE user=?", (user,))

    def users(self) -> list[str]:
        return [n for (n,) in self._rows("SELECT name FROM users ORDER BY name")]

    def roles_of(self, user: str) -> list[str]:
        return [r for (r,) in self._rows("SELECT role FROM user_roles WHERE user=? ORDER BY role", (user,))]

    def is_admin(self, user: str) -> bool:
        return user == ROOT or "admin" in self.roles_of(user)

    # -- roles ---------------------------------------------------------------------------------
    def create_role(self, role: str) -> None:
        if self._rows("SELECT 1 FROM roles WHERE name=?", (role,)):
            raise AlreadyExistsError(f"role {role!r} already exists")
        self._exec("INSERT INTO roles VALUES (?)", (role,))

    def drop_role(self, role: str, force: bool = False) -> None:
        if role in BUILTIN_ROLES:
            raise ParamError(f"the built-in role {role!r} cannot be dropped")
        if not force and self._rows("SELECT 1 FROM user_roles WHERE role=?", (role,)):
            raise ParamError(f"role {role!r} is still granted to users; revoke it or pass force_drop=True")
        for sql in (
            "DELETE FROM roles WHERE name=?",
            "DELETE FROM user_roles WHERE role=?",
            "DELETE FROM grants WHERE role=?",
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
            "INSERT OR IGNORE INTO user_roles VALUES (?,?)"
            if add
            else "DELETE FROM user_roles WHERE user=? AND role=?"
        )
        self._exec(sql, (user, role))

    # -- privileges ------------------------------------------------------------------------------
    def set_grant(self, role: str, obj: str, name: str, db: str, privilege: str, add: bool) -> None:
        if not self._rows("SELECT 1 FROM roles WHERE name=?", (role,)):
            raise NotFoundError(f"role {role!r} not found")
        args = (role, obj, name or "*", db or "default", privilege)
        sql = (
            "INSERT OR IGNORE INTO grants VALUES (?,?,?,?,?)"
            if add
            else "DELETE FROM grants WHERE role=? AND object=? AND object_name=? AND db=? AND privilege=?"
        )
        self._exec(sql, args)

    def grants(self, role: str, obj: str = "", name: str = "", db: str = "") -> list[tuple[str, ...]]:
        rows = self._rows("SELECT role, object, object_name, db, privilege FROM grants WHERE role=?", (role,))
        return [
            r
            for r in rows
            if (not obj or r[1] == obj) and (not name or r[2] == name) and (not db or r[3] == db)
        ]

    def allowed(self, user: str, obj: str, name: str, db: str, privilege: str) -> bool:
        """Whether ``user`` holds ``privilege`` on object ``obj``/``name`` in database ``db``."""
        if self.is_admin(user):
            return True
        roles = self.roles_of(user) + ["public"]
        marks = ",".join("?" * len(roles))
        rows = self._rows(
            f"SELECT object, object_name, db, privilege FROM grants WHERE role IN ({marks})", tuple(roles)
        )
        for o, n, d, p in rows:
            if o in (obj, "Global") and n in (name, "*") and d in (db, "*") and p in (privilege, "*", "All"):
                return True
        return False
