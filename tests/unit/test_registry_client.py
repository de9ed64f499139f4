"""Registry client pieces that need no server: insecure hosts and error wording."""

from __future__ import annotations

import pytest

from engine.images.registry import RegistryClient, _registry_error, is_insecure


@pytest.mark.parametrize(
    ("endpoint", "insecure", "expected"),
    [
        ("localhost:5000", (), True),
        ("localhost", (), True),
        ("127.0.0.1:5000", (), True),
        ("127.10.0.3", (), True),
        ("[::1]:5000", (), True),
        ("registry-1.docker.io", (), False),
        ("10.0.2.2:5000", (), False),
        ("10.0.2.2:5000", ("10.0.2.2:5000",), True),
        ("myreg.lan:5000", ("myreg.lan",), True),
    ],
)
def test_is_insecure(endpoint: str, insecure: tuple[str, ...], expected: bool) -> None:
    assert is_insecure(endpoint, insecure) is expected


def test_scheme_follows_insecure() -> None:
    assert RegistryClient("127.0.0.1:5000").scheme == "http"
    assert RegistryClient("quay.example").scheme == "https"
    assert RegistryClient("quay.example", insecure=["quay.example"]).scheme == "http"


def test_registry_error_wording() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert _registry_error(body) == "manifest unknown: manifest unknown"
    assert _registry_error(b"plain text\n") == "plain text"
    assert _registry_error(b'{"errors": []}') == '{"errors": []}'
