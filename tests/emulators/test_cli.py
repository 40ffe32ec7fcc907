"""``dynosaur emulate hub|llm``: help with examples; a real foreground server stopped by Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import openai
import pytest
from typer.testing import CliRunner

from dynosaur.cli.main import app


@pytest.mark.parametrize("command", ["hub", "llm"])
def test_help_shows_an_example(command: str) -> None:
    result = CliRunner().invoke(app, ["emulate", command, "--help"])
    assert result.exit_code == 0
    assert "Example: dynosaur emulate " + command in result.output


def test_missing_snapshot_is_one_red_line_and_exit_1() -> None:
    result = CliRunner().invoke(
        app, ["emulate", "hub", "--snapshot", "/nonexistent", "--port", "0"]
    )
    assert result.exit_code == 1
    assert "cannot load the snapshot" in result.output


def _serve(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dynosaur.cli.main", "emulate", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the banner is printed once the port is bound
        match = re.search(r"export (DYNOSAUR_HUB_ENDPOINT|DYNOSAUR_LLM_BASE_URL)=(\S+)", line)
        if match:
            return process, match.group(2)
    raise AssertionError("the emulator printed no URL")


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


def test_llm_command_serves_the_sdk_until_ctrl_c_then_prints_a_summary() -> None:
    process, base_url = _serve(["llm", "--invalid-share", "0.5"])
    try:
        sdk = openai.OpenAI(base_url=base_url, api_key="k")
        models = [m.id for m in sdk.models.list().data]
    finally:
        output = _stop(process)
    assert "gpt-4o-mini" in models
    assert process.returncode == 0
    assert "LLM emulator" in output and "status" in output


def test_hub_command_serves_the_snapshot_at_the_simulated_now() -> None:
    process, url = _serve(["hub", "--now", "2024-03-01T23:00"])
    try:
        listed = httpx.get(f"{url}/api/datasets", timeout=30).json()
    finally:
        output = _stop(process)
    assert len(listed) == 4
    assert re.search(r"200\s*│\s*1", output)
