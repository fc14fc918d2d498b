"""Settings and engine URLs: sources, validation, secrets never shown, driver choice."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from carryover.settings import Settings, get_settings, redact_url
from carryover.store.engine import UnsupportedDatabase, make_engine, normalize_url

SECRET_URL = "postgresql+psycopg://carryover:s3cret@db.internal:5432/carryover"


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in Settings.model_fields:
        monkeypatch.delenv(f"CARRYOVER_{name.upper()}", raising=False)
    settings = get_settings()
    assert settings.database_url == "sqlite:///./carryover.db"
    assert settings.grace_hours == 48
    assert settings.grace_seconds == 48 * 3600
    assert settings.echo_sql is False


def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(
        "CARRYOVER_GRACE_HOURS=12\nCARRYOVER_ECHO_SQL=true\nUNRELATED=1\n")
    monkeypatch.setenv("CARRYOVER_GRACE_HOURS", "72")
    settings = get_settings()
    assert settings.grace_hours == 72
    assert settings.echo_sql is True


def test_password_is_never_shown() -> None:
    settings = Settings(database_url=SECRET_URL)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings)
    assert settings.redacted_url() == "postgresql+psycopg://carryover:***@db.internal:5432/carryover"
    assert "s3cret" not in redact_url("postgresql://u@h/db?password=s3cret")


def test_rejected_url_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="mysql://root:s3cret@localhost/app")
    assert "s3cret" not in str(caught.value)
    assert "mysql" in str(caught.value)


def test_negative_grace_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(grace_hours=-1)


def test_bare_postgresql_url_uses_psycopg() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url(SECRET_URL).drivername == "postgresql+psycopg"


def test_other_databases_are_refused() -> None:
    with pytest.raises(UnsupportedDatabase):
        normalize_url("mysql://u@h/db")


def test_engines_are_shared_per_url(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert make_engine(url) is make_engine(url)
    assert make_engine(url) is not make_engine(url, echo=True)
    assert make_engine("postgresql://u@h/db") is make_engine("postgresql+psycopg://u@h/db")


def test_smdp_tokens_are_secret_and_long(monkeypatch):
    token = "t" * 31 + "!"
    monkeypatch.setenv("CARRYOVER_ES2PLUS_NOTIFICATION_TOKENS",
                       f'{{"smdp.example.net": "{token}"}}')
    monkeypatch.setenv("CARRYOVER_SMDP_EMULATOR_TOKEN", token)
    settings = get_settings()
    assert settings.es2plus_notification_tokens["smdp.example.net"].get_secret_value() == token
    assert token not in repr(settings) and token not in str(settings.model_dump())
    monkeypatch.setenv("CARRYOVER_ES2PLUS_NOTIFICATION_TOKENS", '{"smdp.example.net": "short"}')
    with pytest.raises(ValidationError, match="fewer than 32 characters"):
        get_settings()
