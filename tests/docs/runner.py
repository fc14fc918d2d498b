"""The docs runner: every shell example in README.md and docs/*.md runs, and shows what it prints.

A page's fenced blocks are read in order; the info string (what follows the
opening fence) says what a block is:

- ``console``: lines starting ``$ `` are commands, the lines after one (up to
  the next ``$ ``) are its expected output, compared after trailing blanks are
  stripped. Volatile parts are masked explicitly with a named placeholder from
  ``MASKS`` (``<token>``, ``<key-id>``, ...); nothing else is a wildcard.
  A command that exits non-zero must show output (the error it prints).
- ``sh`` (also ``bash``, ``shell``): every command must exit 0; output is not
  compared.
- ``yaml file=NAME`` (any language with ``file=NAME``): the block's text is
  written to NAME in the page's directory before the next command runs.
- any other language (``text``, ``json``, ``yaml``, ``python``, ...) is not run.
  A block without a language is refused: a block that is not run says so by
  its language, never by accident.

A shell block that cannot run (it builds the virtualenv, needs a remote host
or runs for minutes) is preceded by ``<!-- not run: WHY -->`` on the line
before its fence; the runner lists them and refuses an empty WHY.

Each page runs in one bash process in a fresh temporary directory, so with a
fresh default database (``./carryover.db``; every ``CARRYOVER_*`` variable of
the caller is dropped), the virtualenv's bin first on PATH (and linked as
``.venv``), and ``examples/`` of the repository linked in, so a page's blocks build
on each other (variables and files persist) and pages never share state.
``carryover serve [--port 80NN] ... &`` (settings may precede it as
``NAME=value``) is started on a free loopback port instead of 80NN (default
8000), and ``127.0.0.1:80NN`` / ``localhost:80NN`` in the page's commands name
that free port; the runner waits until ``/healthz`` answers and stops every
server it started by its pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGUAGES = {"sh", "bash", "shell"}
NOT_RUN = re.compile(r"^<!--\s*not run:(.*?)-->\s*$")
FENCE = re.compile(r"^(`{3,})(.*)$")

# A placeholder in expected output and what it stands for. Each names one kind
# of volatile value, so a doc that shows the wrong thing still fails.
MASKS = {
    "<token>": r"co_[A-Za-z0-9_\-]{20,}",
    "<key-id>": r"key_[0-9a-f]{16}",
    "<secret>": r"whsec_[A-Za-z0-9_\-]{20,}",
    "<schema>": r"carryover_\d{4}",      # the newest migration, which every release moves
}


@dataclass
class Command:
    text: str                 # what is run (continuations joined by newlines)
    expected: str | None      # None: not compared (sh blocks)
    line: int                 # line of the page where it starts


@dataclass
class Block:
    language: str
    line: int
    body: list[str]
    file: str | None = None
    not_run: str | None = None
    commands: list[Command] = field(default_factory=list)


class DocError(Exception):
    """The page itself is malformed (a bare fence, an empty not-run reason)."""


def parse(text: str, name: str = "page") -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, info = m.group(1), m.group(2).strip()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith(ticks):
            body.append(lines[i])
            i += 1
        i += 1
        if not info:
            raise DocError(f"{name}:{start + 1}: a fenced block without a language "
                           "(say sh, console, text, json, yaml ...)")
        words = info.split()
        block = Block(language=words[0], line=start + 1, body=body)
        for word in words[1:]:
            if word.startswith("file="):
                block.file = word[len("file="):]
        previous = lines[start - 1] if start else ""
        note = NOT_RUN.match(previous.strip())
        if note:
            reason = note.group(1).strip()
            if not reason:
                raise DocError(f"{name}:{start}: 'not run:' needs a reason")
            block.not_run = reason
        if block.language == "console" and not block.not_run:
            block.commands = _console_commands(body, start + 2)
        elif block.language in SHELL_LANGUAGES and not block.not_run:
            block.commands = _sh_commands(body, start + 2)
        blocks.append(block)
    return blocks


def _open_quote(text: str) -> bool:
    """Whether text ends inside a single- or double-quoted string (shell rules, roughly)."""
    quote = None
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and quote is None:
            break
    return quote is not None


def _continues(text: str) -> bool:
    return text.endswith("\\") or _open_quote(text)


def _sh_commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    current: list[str] = []
    start = first_line
    for n, raw in enumerate(body):
        if not current:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            start = first_line + n
        current.append(raw)
        joined = "\n".join(current)
        if not _continues(joined):
            commands.append(Command(joined, None, start))
            current = []
    if current:
        commands.append(Command("\n".join(current), None, start))
    return commands


def _console_commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    i = 0
    while i < len(body):
        raw = body[i]
        if not raw.startswith("$ "):
            if raw.strip():
                raise DocError(f"line {first_line + i}: console output before any `$ ` command")
            i += 1
            continue
        start = first_line + i
        current = [raw[2:]]
        i += 1
        while _continues("\n".join(current)) and i < len(body):
            current.append(body[i])
            i += 1
        output: list[str] = []
        while i < len(body) and not body[i].startswith("$ "):
            output.append(body[i])
            i += 1
        commands.append(Command("\n".join(current), "\n".join(output).rstrip(), start))
    return commands


def expected_pattern(expected: str) -> re.Pattern[str]:
    """The expected output as a regex: literal text, each placeholder of MASKS its pattern."""
    names = "|".join(re.escape(k) for k in MASKS)
    parts = re.split(f"({names})", expected)
    regex = "".join(MASKS[p] if p in MASKS else re.escape(p) for p in parts)
    return re.compile(regex + r"\Z")


def normalise(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.rstrip().splitlines())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE = re.compile(r"^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)carryover serve\b(.*?)"
                   r"(?:--port (\d+))?\s*&\s*(#.*)?$")
DOC_PORT = re.compile(r"(?:127\.0\.0\.1|localhost):(80\d\d)\b")


@dataclass
class Result:
    command: Command
    output: str
    rc: int


def run_page(blocks: list[Block], workdir: Path, *, bin_dir: Path, repo: Path,
             timeout: float = 240.0) -> list[Result]:
    """Run every command of a page in one bash process; return each one's output and status."""
    ports: dict[str, int] = {}  # a port the page names (8000..8099) -> a free one here

    def port_for(named: str) -> int:
        if named not in ports:
            ports[named] = free_port()
        return ports[named]
    (workdir / "examples").symlink_to(repo / "examples")
    (workdir / ".venv").symlink_to(bin_dir.parent)
    pidfile = workdir / ".serve-pids"
    script = ["cd " + shlex.quote(str(workdir)),
              f"trap 'for p in $(cat {shlex.quote(str(pidfile))} 2>/dev/null); do "
              "kill $p 2>/dev/null; done' EXIT"]
    commands: list[Command] = []
    for block in blocks:
        if block.file and not block.not_run:
            text = "\n".join(block.body) + "\n"
            script.append(f"cat > {shlex.quote(block.file)} <<'DOCS_RUNNER_EOF'\n{text}"
                          "DOCS_RUNNER_EOF")
        for cmd in block.commands:
            n = len(commands)
            commands.append(cmd)
            text = DOC_PORT.sub(lambda m: f"127.0.0.1:{port_for(m.group(1))}", cmd.text)
            serve = SERVE.match(text.strip())
            if serve:
                env_prefix, args, named = serve.group(1), serve.group(2), serve.group(3)
                port = port_for(named or "8000")
                body = (f"{env_prefix}carryover serve{args} --host 127.0.0.1 --port {port} "
                        f">>.serve.log 2>&1 & echo $! >> {shlex.quote(str(pidfile))}; "
                        f"for _ in $(seq 300); do curl -sf http://127.0.0.1:{port}/healthz "
                        ">/dev/null && break; sleep 0.1; done")
            else:
                body = text
            script.append(f"printf '\\n@@docs-runner {n} begin@@\\n'")
            script.append(f"{{ {body}\n}} 2>&1 </dev/null")
            script.append(f"printf '\\n@@docs-runner {n} rc=%d@@\\n' $?")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARRYOVER_")}
    env.update({
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "100",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "HOME": str(workdir),
    })
    proc = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=workdir, start_new_session=True)
    try:
        out, _ = proc.communicate("\n".join(script) + "\n", timeout=timeout)
    finally:
        # The trap stops servers on a normal exit; on a timeout stop them (and
        # bash) here, by the pids this run started.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pidfile.exists():
            for pid in pidfile.read_text().split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGTERM)
    return _split(out, commands)


def _split(out: str, commands: list[Command]) -> list[Result]:
    results: list[Result] = []
    marks = re.compile(r"\n@@docs-runner (\d+) (begin|rc=(\d+))@@\n")
    pos = 0
    begin = None
    for m in marks.finditer(out):
        if m.group(2) == "begin":
            begin = m.end()
        else:
            n = int(m.group(1))
            text = out[begin:m.start()] if begin is not None else out[pos:m.start()]
            results.append(Result(commands[n], text, int(m.group(3))))
            begin = None
        pos = m.end()
    if len(results) < len(commands):
        tail = out[begin:] if begin is not None else ""
        results.append(Result(commands[len(results)], tail + "\n[the page's shell stopped]", -1))
    return results


def check(result: Result) -> str | None:
    """Why a command's result does not match its page, or None when it does."""
    cmd = result.command
    got = normalise(result.output)
    where = f"line {cmd.line}: $ {cmd.text}"
    if cmd.expected is None:
        if result.rc != 0:
            return f"{where}\nexited {result.rc}:\n{got}"
        return None
    if result.rc != 0 and not cmd.expected:
        return f"{where}\nexited {result.rc} and the page shows no output:\n{got}"
    if not expected_pattern(normalise(cmd.expected)).match(got):
        return f"{where}\nthe page shows:\n{cmd.expected}\nit printed:\n{got}"
    return None
