"""Passwords, sessions, CSRF tokens and the log-in rate limit.

- Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
  setting); a hash made with older parameters is replaced at the next good log-in.
- A session is a random 256-bit token in a ``Secure``, ``HttpOnly``, ``SameSite=Strict`` cookie;
  the database keeps only its SHA-256, so a copy of the database cannot be used to sign in.
- Every form carries a CSRF token (the synchroniser-token pattern): the session's own token once
  signed in; before, a random token set in its own cookie and repeated in the form (the log-in
  form's double submit). Compared in constant time.
- Log-in is refused, without checking the password, after :data:`MAX_FAILURES` failed attempts
  for the same user name or from the same client within :data:`FAILURE_WINDOW`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from careval.app.store import AuthSession, LoginFailure, User

SESSION_COOKIE = "careval_session"
LOGIN_CSRF_COOKIE = "careval_login_csrf"
SESSION_LENGTH = dt.timedelta(hours=8)  # a working day; then sign in again
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 12

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that a wrong name takes as long as a wrong
# password (no user-name discovery by timing).
_DUMMY = _hasher.hash(secrets.token_hex(16))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher.hash(password)


def password_problem(password: str, username: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if username and username.lower() in password.lower():
        return "a password must not contain the user name"
    return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def throttled(db: Session, username: str, client: str) -> bool:
    """Whether log-in is refused for this user name or client for now."""
    since = _now() - FAILURE_WINDOW
    n_user = db.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.at >= since, LoginFailure.username == username.lower())
    )
    n_client = db.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.at >= since, LoginFailure.client == client)
    )
    return max(n_user or 0, n_client or 0) >= MAX_FAILURES


def authenticate(db: Session, username: str, password: str, client: str) -> User | None:
    """The active user with this name and password, or None (and the failure recorded)."""
    name = username.strip().lower()
    user = db.scalar(select(User).where(User.username == name))
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        db.add(LoginFailure(username=name[:64], client=client[:64]))
        db.commit()
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    db.execute(delete(LoginFailure).where(LoginFailure.username == name))
    db.commit()
    return user


def start_session(db: Session, user: User) -> str:
    """A new session for ``user``; returns the cookie's token (shown nowhere else)."""
    token = new_token()
    db.execute(delete(AuthSession).where(AuthSession.expires_at < _now()))
    db.add(
        AuthSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=new_token(),
            expires_at=_now() + SESSION_LENGTH,
        )
    )
    db.commit()
    return token


def session_for(db: Session, token: str | None) -> tuple[AuthSession, User] | None:
    """The live session and its active user for a cookie token, or None."""
    if not token:
        return None
    s = db.scalar(select(AuthSession).where(AuthSession.token_hash == token_hash(token)))
    if s is None or s.expires_at < _now():
        return None
    user = db.get(User, s.user_id)
    if user is None or not user.active:
        return None
    return s, user


def end_session(db: Session, token: str | None) -> None:
    if token:
        db.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash(token)))
        db.commit()


def end_sessions_of(db: Session, user_id: int) -> None:
    """Sign a user out everywhere (on deactivation or a new password)."""
    db.execute(delete(AuthSession).where(AuthSession.user_id == user_id))


def forget_failures(db: Session, username: str | None = None) -> None:
    """Clear failed log-ins (an administrator's unlock of one user, or all)."""
    q = delete(LoginFailure)
    if username:
        q = q.where(or_(LoginFailure.username == username.lower()))
    db.execute(q)
    db.commit()
