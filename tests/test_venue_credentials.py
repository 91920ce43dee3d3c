"""Credentials come from env vars or a file and never show in text."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from exo.venues.credentials import Credentials, CredentialsError

SECRET = "sekret-value-that-must-not-leak-42"


def test_hmac_credentials_from_env_sign_hex_and_hide_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    c = Credentials.from_env("EXO_T", {"EXO_T_API_KEY": "key-abcd", "EXO_T_API_SECRET": SECRET})
    assert c.kind == "hmac" and len(c.sign("x")) == 64
    logging.getLogger("t").warning("creds %s %r", c, c)
    for text in (repr(c), str(c), f"{c}", caplog.text):
        assert SECRET not in text
    assert repr(c) == "Credentials(api_key='...abcd', kind='hmac')"


def test_credentials_refuse_pickling_so_the_secret_is_not_written_out() -> None:
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(Credentials("k", secret=SECRET))


def test_missing_env_names_the_variable_not_a_value() -> None:
    with pytest.raises(CredentialsError, match="EXO_T_API_KEY is not set"):
        Credentials.from_env("EXO_T", {})
    with pytest.raises(CredentialsError, match="API secret or a private key file is required"):
        Credentials.from_env("EXO_T", {"EXO_T_API_KEY": "k"})


def test_credentials_file_with_ed25519_key_signs_base64(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    f = tmp_path / "binance.env"
    f.write_text("# testnet key\napi_key = ed-1234\nprivate_key_file = key.pem\n")
    c = Credentials.from_env("EXO_B", {"EXO_B_CREDENTIALS_FILE": str(f)})
    assert c.kind == "ed25519" and c.api_key == "ed-1234"
    import base64

    key.public_key().verify(base64.b64decode(c.sign("payload")), b"payload")


def test_bad_credentials_file_line_names_file_and_line_only(tmp_path: Path) -> None:
    f = tmp_path / "c.env"
    f.write_text(f"api_key=k\n{SECRET}\n")
    with pytest.raises(CredentialsError) as info:
        Credentials.from_file(f)
    assert str(info.value) == f"{f}:2: expected name=value"


def test_rsa_or_garbage_private_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="not a readable PEM key") as info:
        Credentials("k", private_key_pem=SECRET.encode())
    assert SECRET not in str(info.value)
