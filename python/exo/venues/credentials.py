"""Venue credentials: read from environment variables or a file, never from
command-line flags (they show in ``ps``), and never printed.

``Credentials`` holds an API key and either an HMAC secret or an Ed25519
private key (PEM). Its ``repr``/``str`` show the key id's last 4 characters
and nothing of the secret, so a credentials object logged or shown in a
traceback leaks nothing. Errors name the variable or file that was wrong,
never its value.

Environment (``PREFIX`` is e.g. ``EXO_BINANCE``, ``EXO_BITMEX``, ``EXO_FIX``):

- ``PREFIX_API_KEY``: the key id (Binance apiKey, BitMEX api-key, FIX Username);
- ``PREFIX_API_SECRET``: an HMAC secret, or
- ``PREFIX_PRIVATE_KEY_FILE``: a PEM file with an Ed25519 private key
  (Binance Ed25519 keys; optional ``PREFIX_PRIVATE_KEY_PASSWORD``);
- ``PREFIX_CREDENTIALS_FILE``: instead of the above, a file of ``name=value``
  lines with the same names lower-cased without the prefix (``api_key=...``,
  ``api_secret=...`` or ``private_key_file=...``); ``#`` starts a comment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["Credentials", "CredentialsError"]


class CredentialsError(ValueError):
    """Credentials missing or malformed. The message names the variable or
    file, never a secret."""


class Credentials:
    """An API key with an HMAC secret or an Ed25519 private key.

    ``sign_hmac(payload)`` -> lowercase hex HMAC-SHA256 (Binance HMAC keys,
    BitMEX); ``sign_ed25519(payload)`` -> base64 Ed25519 signature (Binance
    Ed25519 keys, Binance FIX RawData). The secret is kept in a private slot
    and never rendered.
    """

    __slots__ = ("_ed25519", "_secret", "api_key")

    def __init__(
        self,
        api_key: str,
        *,
        secret: str | None = None,
        private_key_pem: bytes | None = None,
        private_key_password: bytes | None = None,
    ) -> None:
        if not api_key:
            raise CredentialsError("api_key is empty")
        if (secret is None) == (private_key_pem is None):
            raise CredentialsError("give exactly one of an HMAC secret or an Ed25519 private key")
        self.api_key = api_key
        self._secret = secret.encode() if secret is not None else None
        self._ed25519: Any = None
        if private_key_pem is not None:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            try:
                key = load_pem_private_key(private_key_pem, password=private_key_password)
            except (ValueError, TypeError) as exc:
                # The library's message does not contain key material.
                raise CredentialsError(f"private key is not a readable PEM key: {exc}") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise CredentialsError(f"private key must be Ed25519, got {type(key).__name__}")
            self._ed25519 = key

    @property
    def kind(self) -> str:
        """``"hmac"`` or ``"ed25519"``."""
        return "hmac" if self._secret is not None else "ed25519"

    def sign_hmac(self, payload: str) -> str:
        """hex(HMAC-SHA256(secret, payload as UTF-8))."""
        if self._secret is None:
            raise CredentialsError("these credentials hold an Ed25519 key, not an HMAC secret")
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def sign_ed25519(self, payload: str) -> str:
        """base64(Ed25519 signature of payload as UTF-8)."""
        if self._ed25519 is None:
            raise CredentialsError("these credentials hold an HMAC secret, not an Ed25519 key")
        return base64.b64encode(self._ed25519.sign(payload.encode())).decode()

    def password(self) -> str:
        """The HMAC secret itself, for protocols that send it as a password
        (FIX Password, 554). Only ever put it on an encrypted connection."""
        if self._secret is None:
            raise CredentialsError("these credentials hold an Ed25519 key, not a secret")
        return self._secret.decode()

    def sign(self, payload: str) -> str:
        """The signature of the key's kind: hex HMAC or base64 Ed25519."""
        return self.sign_hmac(payload) if self._secret is not None else self.sign_ed25519(payload)

    def __repr__(self) -> str:
        return f"Credentials(api_key='...{self.api_key[-4:]}', kind={self.kind!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Credentials are not picklable (they would write the secret out)")

    @classmethod
    def from_env(cls, prefix: str, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read ``PREFIX_API_KEY`` + ``PREFIX_API_SECRET`` | ``PREFIX_PRIVATE_KEY_FILE``,
        or ``PREFIX_CREDENTIALS_FILE``. Raises CredentialsError naming what is missing."""
        env = os.environ if environ is None else environ
        file = env.get(f"{prefix}_CREDENTIALS_FILE")
        if file:
            return cls.from_file(file)
        key = env.get(f"{prefix}_API_KEY")
        if not key:
            raise CredentialsError(
                f"{prefix}_API_KEY is not set (set it with {prefix}_API_SECRET or "
                f"{prefix}_PRIVATE_KEY_FILE, or point {prefix}_CREDENTIALS_FILE at a file)"
            )
        return cls._build(
            key,
            env.get(f"{prefix}_API_SECRET"),
            env.get(f"{prefix}_PRIVATE_KEY_FILE"),
            env.get(f"{prefix}_PRIVATE_KEY_PASSWORD"),
            where=f"{prefix}_*",
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Credentials:
        """Read ``name=value`` lines (api_key, api_secret | private_key_file,
        private_key_password). Keep the file mode 600."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise CredentialsError(f"cannot read credentials file {p}: {exc.strerror}") from None
        values: dict[str, str] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise CredentialsError(f"{p}:{n}: expected name=value")
            values[name.strip().lower()] = value.strip()
        key = values.get("api_key")
        if not key:
            raise CredentialsError(f"{p}: api_key is missing")
        pk_file = values.get("private_key_file")
        if pk_file and not os.path.isabs(pk_file):
            pk_file = str(p.parent / pk_file)
        return cls._build(
            key, values.get("api_secret"), pk_file, values.get("private_key_password"), where=str(p)
        )

    @classmethod
    def _build(
        cls, key: str, secret: str | None, pk_file: str | None, password: str | None, *, where: str
    ) -> Credentials:
        if secret and pk_file:
            raise CredentialsError(f"{where}: give an API secret or a private key file, not both")
        if secret:
            return cls(key, secret=secret)
        if pk_file:
            try:
                pem = Path(pk_file).read_bytes()
            except OSError as exc:
                raise CredentialsError(f"cannot read private key file {pk_file}: {exc.strerror}") from None
            return cls(key, private_key_pem=pem, private_key_password=password.encode() if password else None)
        raise CredentialsError(f"{where}: an API secret or a private key file is required")
