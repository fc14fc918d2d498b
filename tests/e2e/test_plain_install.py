"""A plain install (no extras) starts and runs on SQLite: no psycopg needed.

The project is built as the wheel `pip install .` would install and put into a
fresh virtualenv with `--no-deps`. Its base dependencies are not downloaded
again: the distributions named by the wheel's own Requires-Dist (no extra),
and theirs, are linked from this test environment into a directory the fresh
venv reads. Nothing else is visible there, so psycopg (the `postgres` extra)
and every test-only package are absent, and a module the code imports but
pyproject.toml does not list fails here as it would for a user.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The distributions these requirements need (markers without an extra), recursively."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = req.name.lower().replace("_", "-")
        dist = metadata.distribution(req.name)
        for wanted in ["", *sorted(req.extras)]:
            if (name, wanted) in found:
                continue
            found[(name, wanted)] = dist
            todo.extend((Requirement(r), wanted) for r in dist.requires or [])
    return {name: dist for (name, _), dist in found.items()}


def _link_site(dists: dict[str, metadata.Distribution], into: Path) -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    into.mkdir()
    for dist in dists.values():
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            target, link = site / top, into / top
            if target.exists() and not link.exists():
                link.symlink_to(target)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    started = time.perf_counter()
    work = tmp_path_factory.mktemp("plain")
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(wheels.glob("carryover-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        meta = email.message_from_bytes(
            z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))))
    base = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    dists = _closure(base)
    assert "psycopg" not in dists and "psycopg-binary" not in dists
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    _link_site(dists, work / "base-deps")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "base_deps.pth").write_text(f"{work / 'base-deps'}\n")
    print(f"plain install ready in {time.perf_counter() - started:.1f} s")
    return venv, work


def _run(venv: Path, work: Path, *args: str,
         env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARRYOVER_")}
    clean["CARRYOVER_DATABASE_URL"] = f"sqlite:///{work / 'plain.db'}"
    clean.update(env or {})
    return subprocess.run([str(venv / "bin" / "carryover"), *args], capture_output=True,
                          text=True, cwd=work, env=clean, timeout=120)


def test_no_psycopg_in_the_plain_venv(plain):
    venv, _ = plain
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import psycopg"],
                           capture_output=True, text=True)
    assert probe.returncode == 1 and "No module named 'psycopg'" in probe.stderr


def test_plain_install_runs_help_init_simulate_plan_list(plain):
    venv, work = plain
    helped = _run(venv, work, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "ingest" in helped.stdout
    init = _run(venv, work, "init")
    assert init.returncode == 0, init.stderr
    assert (work / "plain.db").is_file()
    sim = _run(venv, work, "simulate", str(ROOT / "examples" / "tmobile-data-stash.yaml"),
               "--json")
    assert sim.returncode == 0, sim.stderr
    # The same scenario in this (full) environment gives the same checks.
    full = subprocess.run([sys.executable, "-m", "carryover.cli", "simulate",
                           str(ROOT / "examples" / "tmobile-data-stash.yaml"), "--json"],
                          capture_output=True, text=True, check=True)
    assert sim.stdout == full.stdout and sim.stdout.count("\n") >= 3
    plans = _run(venv, work, "plan", "list", "--json")
    assert plans.returncode == 0, plans.stderr
    assert "tmobile-data-stash-10gb" in plans.stdout


def test_postgresql_url_without_psycopg_says_what_to_install(plain):
    venv, work = plain
    result = _run(venv, work, "plan", "list", env={
        "CARRYOVER_DATABASE_URL": "postgresql://carry:s3cret-pw@127.0.0.1:5432/nothing"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "carryover[postgres]" in lines[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
