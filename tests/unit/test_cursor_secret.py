"""The cursor secret on AWS: read from Secrets Manager once per container, never from a plaintext variable."""

from __future__ import annotations

import hashlib
import hmac

import boto3
import pytest
from moto import mock_aws
from unit_support import REGION

from handlers.core import clients, settings


def _derived(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"fanout-cursor-v1", hashlib.sha256).digest()


def test_cursor_key_comes_from_the_secret_named_by_its_arn_once_per_container(monkeypatch):
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        arn = sm.create_secret(Name="fanout-dev-cursor-x", SecretString="from-secrets-manager")["ARN"]
        monkeypatch.delenv("CURSOR_SECRET", raising=False)
        monkeypatch.setenv("CURSOR_SECRET_ARN", arn)
        settings.cursor_key.cache_clear()
        clients.reset()

        assert settings.cursor_key() == _derived("from-secrets-manager")
        # Cached for the container's life: later calls do not go back to Secrets Manager.
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        assert settings.cursor_key() == _derived("from-secrets-manager")


def test_the_arn_wins_over_a_plaintext_value(monkeypatch):
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        arn = sm.create_secret(Name="fanout-dev-cursor-y", SecretString="the-real-one")["ARN"]
        monkeypatch.setenv("CURSOR_SECRET", "plaintext")
        monkeypatch.setenv("CURSOR_SECRET_ARN", arn)
        settings.cursor_key.cache_clear()
        clients.reset()
        assert settings.cursor_key() == _derived("the-real-one")


def test_an_unreadable_secret_names_the_variable_not_a_value(monkeypatch):
    with mock_aws():
        monkeypatch.setenv("CURSOR_SECRET", "plaintext-never-shown")
        monkeypatch.setenv("CURSOR_SECRET_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing-AbCdEf")
        settings.cursor_key.cache_clear()
        clients.reset()
        with pytest.raises(settings.ConfigurationError, match="CURSOR_SECRET_ARN") as caught:
            settings.cursor_key()
        assert "plaintext-never-shown" not in str(caught.value)
