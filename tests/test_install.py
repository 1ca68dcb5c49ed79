"""Every install is the lock: the Makefile (virtualenv, CI, demo) and the Dockerfile
install exactly ``uv.lock`` with the same uv, and the lock matches pyproject.toml."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _makefile_uv_version() -> str:
    match = re.search(r"^UV_VERSION\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "Makefile: no UV_VERSION"
    return match.group(1)


def _dockerfile_runs() -> list[list[str]]:
    """The shell words of each RUN instruction (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    runs = []
    for line in text.splitlines():
        if line.startswith("RUN "):
            for command in line[4:].split("&&"):
                runs.append(shlex.split(command))
    return runs


def _recipe(target: str) -> str:
    """The recipe lines of one Makefile target."""
    lines = (ROOT / "Makefile").read_text().replace("\\\n", " ").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        body.append(line.strip())
    return "\n".join(body)


def test_dockerfile_installs_the_lock_with_the_makefiles_uv() -> None:
    runs = _dockerfile_runs()
    copies = [line for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert any("uv.lock" in line.split() for line in copies), "the image never copies uv.lock"
    pip_installs = [r for r in runs if r[:2] == ["pip", "install"]]
    assert len(pip_installs) == 1, "the image pip-installs something besides uv"
    assert f"uv=={_makefile_uv_version()}" in pip_installs[0]
    syncs = [r for r in runs if r[:2] == ["uv", "sync"]]
    assert syncs, "the image does not uv sync"
    for sync in syncs:
        assert "--frozen" in sync or "--locked" in sync, sync
        assert not any(word.startswith("--extra") or word == "--all-extras"
                       for word in sync), "the image installs test or bench extras"
    assert not [r for r in runs if r[:1] == ["uv"] and r[1:3] == ["pip", "install"]]


def test_makefile_installs_the_lock_and_refuses_a_stale_one() -> None:
    stamp = _recipe("$(STAMP)")
    assert "$(UV) sync --locked" in stamp
    assert "pip install" not in stamp
    uv = _recipe("$(UV)")
    assert "uv==$(UV_VERSION)" in uv


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_lock_records_what_pyproject_asks_for() -> None:
    """The specifiers the lock was resolved for are pyproject's own (a stale lock has
    other ones; `uv sync --locked` refuses it too, this says which)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    root = next(p for p in lock["package"] if p["name"] == "segstream")
    locked = {(canonicalize_name(r["name"]), r.get("specifier", ""), r.get("marker"))
              for r in root["metadata"]["requires-dist"]}
    wanted = set()
    for extra, requirements in [(None, project["dependencies"]),
                                *project["optional-dependencies"].items()]:
        for text in requirements:
            req = Requirement(text)
            marker = f"extra == '{extra}'" if extra else None
            wanted.add((canonicalize_name(req.name), str(req.specifier), marker))

    def norm(spec: str) -> str:
        return ",".join(sorted(spec.replace(" ", "").split(",")))

    assert {(n, norm(s), m) for n, s, m in locked} == {(n, norm(s), m) for n, s, m in wanted}
    names = {canonicalize_name(p["name"]) for p in lock["package"]}
    assert {n for n, _, _ in wanted} <= names


def _uv() -> Path:
    makefile = (ROOT / "Makefile").read_text()
    home = re.search(r"^UV_HOME\s*:=\s*(\S+)$", makefile, re.M)
    assert home
    return ROOT / home.group(1).replace("$(UV_VERSION)", _makefile_uv_version()) / "bin" / "uv"


def test_the_built_package_holds_every_module_and_data_file(tmp_path: Path) -> None:
    """What the image (`uv sync --no-editable`) and `pip install .` install: a wheel
    built from the tree. A subpackage left out of it broke `segstream` there once."""
    import subprocess
    import zipfile

    uv = _uv()
    if not uv.exists():
        message = f"{uv} not found: `make venv` installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # a copy of the tree as a clean clone has it: no build/ left over from earlier
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    source = tmp_path / "source"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    done = subprocess.run([str(uv), "build", "--wheel", "--out-dir", str(tmp_path),
                           "--quiet", str(source)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    assert done.returncode == 0, done.stderr
    wheel = next(tmp_path.glob("segstream-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {name for name in listed if name.split("/")[0] in ("segments", "streams",
                                                                 "schemas")
              and name.endswith((".py", ".json", ".toml", "py.typed"))}
    assert wanted - names == set()
