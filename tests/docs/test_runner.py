"""The docs runner itself: what it parses, what it compares, what it refuses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.docs import runner

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def _run(text: str, tmp_path: Path) -> list[str | None]:
    blocks = runner.parse(text)
    return [runner.check(r) for r in runner.run_page(blocks, tmp_path, bin_dir=BIN, repo=REPO)]


def test_a_block_without_a_language_is_refused():
    with pytest.raises(runner.DocError, match="without a language"):
        runner.parse("intro\n\n```\ncarryover init\n```\n")


def test_not_run_needs_a_reason():
    with pytest.raises(runner.DocError, match="needs a reason"):
        runner.parse("<!-- not run: -->\n```sh\nmake demo\n```\n")
    (block,) = runner.parse("<!-- not run: builds .venv -->\n```sh\nmake demo\n```\n")
    assert block.not_run == "builds .venv" and block.commands == []


def test_console_commands_continuations_and_outputs():
    (block,) = runner.parse(
        "```console\n$ echo a \\\n    b\na b\n$ printf '%s\n    x'\n%s\n    x\n$ true\n```\n")
    assert [(c.text, c.expected) for c in block.commands] == [
        ("echo a \\\n    b", "a b"), ("printf '%s\n    x'", "%s\n    x"), ("true", "")]


def test_sh_commands_join_open_quotes_and_skip_comments():
    (block,) = runner.parse("```sh\n# a comment\ncurl -d '{\n  \"a\": 1}'  # x\nls\n```\n")
    assert [c.text for c in block.commands] == ["curl -d '{\n  \"a\": 1}'  # x", "ls"]
    assert all(c.expected is None for c in block.commands)


def test_masks_are_named_and_narrow():
    pattern = runner.expected_pattern("key <key-id> token <token>")
    assert pattern.match("key key_0123456789abcdef token co_" + "A" * 30)
    assert not pattern.match("key key_0123 token co_" + "A" * 30)        # not a key id
    assert not pattern.match("key key_0123456789abcdef token anything")
    assert not runner.expected_pattern("10GB").match("10GB extra")     # the whole output


def test_a_wrong_output_a_failing_sh_command_and_files(tmp_path):
    page = ("```text file=greeting.txt\nhello\n```\n\n"
            "```console\n$ cat greeting.txt\nhello\n$ echo two\nthree\n```\n\n"
            "```sh\nfalse\nX=1\n```\n\n"
            "```console\n$ echo $X\n1\n$ exit 3\n```\n")
    checks = _run(page, tmp_path)
    assert checks[0] is None                          # the file block was written
    assert "the page shows:\nthree\nit printed:\ntwo" in checks[1]
    assert "exited 1" in checks[2]
    assert checks[3] is None and checks[4] is None    # variables persist across blocks
    assert "shell stopped" in checks[5] or "exited" in checks[5]


def test_a_server_runs_on_a_free_port_and_is_stopped(tmp_path):
    page = ("```console\n$ carryover serve --port 8000 &\n"
            "$ curl -s http://127.0.0.1:8000/healthz\n{\"status\":\"ok\"}\n```\n")
    blocks = runner.parse(page)
    results = runner.run_page(blocks, tmp_path, bin_dir=BIN, repo=REPO)
    assert [runner.check(r) for r in results] == [None, None], results
    pid = int((tmp_path / ".serve-pids").read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        import os
        import time
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
