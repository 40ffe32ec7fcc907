"""Secrets never reach logs or stored messages: known values and credential-shaped strings."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest
from pydantic import SecretStr

from dynosaur.redact import MASK, install_log_filter, redact
from dynosaur.settings import Settings


def test_configured_secrets_are_masked_wherever_they_appear():
    Settings(llm_api_key=SecretStr("plain-looking-key-12345"), hub_token=SecretStr("tok9876543"))
    text = "echo: plain-looking-key-12345 and tok9876543 in the body"
    assert redact(text) == f"echo: {MASK} and {MASK} in the body"


def test_credential_shapes_are_masked_even_when_unknown():
    text = (
        "Invalid token hf_abcdefghijklmnopqrstuvwx for sk-proj-AAAABBBBCCCCDDDD; "
        "Authorization: Bearer abc.def-ghi_12345; api_key=zzzzzzzzzz; "
        "postgresql://dyno:hunter22secret@db:5432/x"
    )
    out = redact(text)
    for secret in ("hf_abcdefghij", "sk-proj-AAAA", "abc.def-ghi_12345", "zzzzzzzzzz", "hunter22"):
        assert secret not in out
    assert "postgresql://dyno:***@db:5432/x" in out
    assert (
        redact("a plain sentence about tokens and keys") == "a plain sentence about tokens and keys"
    )


def test_log_records_are_redacted():
    stream = io.StringIO()
    logger = logging.getLogger("dynosaur.test.redact")
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))
    install_log_filter(logger)
    logger.warning("server said %s", "bad key sk-live-1234567890abcdef")
    assert "sk-live-1234567890abcdef" not in stream.getvalue()
    assert f"bad key {MASK}" in stream.getvalue()


@pytest.mark.parametrize(
    "setup",
    [
        "from dynosaur.cli.common import setup_logging; setup_logging(True)",  # a command
        "logging.basicConfig()",  # a host's own logging (an Airflow task): Settings installs it
    ],
)
def test_the_process_log_handlers_mask_secrets_whatever_library_logs(setup: str) -> None:
    script = (
        "import logging\n"
        "from dynosaur.settings import Settings\n"
        f"{setup}\n"
        "Settings(llm_api_key='plain-configured-secret-42')\n"
        "logging.getLogger('httpcore').warning('header %s', 'Bearer abcdefghijkl0123')\n"
        "logging.getLogger('openai').warning('key is plain-configured-secret-42')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "abcdefghijkl0123" not in done.stderr and "Bearer ***" in done.stderr
    assert "plain-configured-secret-42" not in done.stderr and f"key is {MASK}" in done.stderr
