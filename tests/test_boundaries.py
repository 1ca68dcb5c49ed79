"""Each layer imports only what it may: checked on the source (``ast``), not by
convention, and once more in a fresh interpreter for what is imported indirectly.

- ``segments/``, the core: nothing from ``streams``, Faust, mode, aiokafka or Kafka.
- ``streams/tools/``: no Faust, mode, aiokafka or Kafka, and of ``streams`` only the
  tools themselves, ``streams.errors`` and ``streams.terminal`` (drawing on a terminal).
- ``streams/client/``: no Faust, mode or aiokafka, and none of the Faust adapter's
  modules.
- ``streams/cli/``: Faust and the adapter only inside the worker command's function,
  so every other command starts without them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAUST = ("faust", "mode", "aiokafka")
KAFKA = ("kafka",)
HEAVY = ("river", "scipy", "pyarrow", "numpy")  # loaded only by the commands that use them
# the Faust adapter: streams/ modules that import Faust, or exist only for the worker
ADAPTER = tuple(f"streams.{name}" for name in ("app", "tables", "codecs", "checkpoints",
                                                "heap", "web", "metrics"))
WORKER_COMMAND = ("streams/cli/worker.py", "run_worker")  # where the cli may import them


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line, what is imported, enclosing function or None) of each import in a file;
    ``from a.b import c`` is ``a.b.c``, relative imports resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]

    def visit(node: ast.AST, function: str | None) -> Iterator[tuple[int, str, str | None]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name, function
            elif isinstance(child, ast.ImportFrom):  # each name, as module.name
                base = package[:len(package) - child.level + 1] if child.level else []
                module = ".".join([*base, *([child.module] if child.module else [])])
                for alias in child.names:
                    yield child.lineno, f"{module}.{alias.name}", function
            inner = (child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                     else function)
            yield from visit(child, inner)

    yield from visit(tree, None)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def offences(folder: str, rule: str, forbidden: tuple[str, ...],
             allowed_first_party: tuple[str, ...] | None = None,
             exempt: tuple[str, str] | None = None) -> list[str]:
    """One line per import in ``folder`` that breaks its layer's rule."""
    found = []
    paths = sorted((ROOT / folder).rglob("*.py"))
    assert len(paths) >= 3, f"no sources under {folder}"  # the walk really saw them
    for path in paths:
        relative = path.relative_to(ROOT).as_posix()
        for line, module, function in imports(path):
            if exempt is not None and (relative, function) == exempt:
                continue
            first_party = _within(module, ("segments", "streams", "schemas"))
            if _within(module, forbidden) or (
                    allowed_first_party is not None and first_party
                    and not _within(module, allowed_first_party)):
                found.append(f"{relative}:{line} imports {module} ({rule})")
    return found


def test_segments_imports_nothing_of_the_adapter_kafka_or_faust() -> None:
    assert offences("segments", "segments/ is the core: no streams, Faust or Kafka",
                    ("streams", *FAUST, *KAFKA)) == []


def test_tools_import_no_kafka_faust_or_adapter() -> None:
    assert offences("streams/tools", "streams/tools/ needs no broker: no Kafka, Faust or "
                    "adapter module", (*FAUST, *KAFKA),
                    ("segments", "schemas", "streams.errors", "streams.terminal",
                     "streams.tools")) == []


def test_client_imports_no_faust() -> None:
    assert offences("streams/client", "streams/client/ talks to Kafka without Faust",
                    (*FAUST, *ADAPTER)) == []


def test_cli_imports_faust_only_in_the_worker_command() -> None:
    assert offences("streams/cli", "streams/cli/ imports Faust and the app only in "
                    f"{WORKER_COMMAND[1]}()", (*FAUST, *ADAPTER),
                    exempt=WORKER_COMMAND) == []
    worker = [(module, function) for _, module, function in imports(ROOT / WORKER_COMMAND[0])
              if _within(module, ("faust", "streams.app"))]
    assert worker == [("faust", "run_worker"), ("streams.app.create_app", "run_worker")]


def test_the_check_names_the_file_and_the_import(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "streams" / "tools"
    folder.mkdir(parents=True)
    for name in ("a", "b"):
        (folder / f"{name}.py").write_text("import json\n")
    (folder / "bad.py").write_text("import json\n\n\ndef f():\n    from kafka import errors\n"
                                   "    from ..app import create_app\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert offences("streams/tools", "rule", (*FAUST, *KAFKA),
                    ("segments", "streams.errors", "streams.tools")) == [
        "streams/tools/bad.py:5 imports kafka.errors (rule)",
        "streams/tools/bad.py:6 imports streams.app.create_app (rule)"]


@pytest.mark.parametrize(("code", "absent"), [
    # nor River, SciPy or pyarrow: seconds of start-up for every `segstream tail`
    ("import streams.cli; streams.cli.build_parser()", (*FAUST, *HEAVY)),
    ("import streams.tools.offline, streams.tools.lift, streams.tools.simulate, "
     "streams.tools.importers, streams.tools.eventlog, streams.tools.partitioner",
     (*FAUST, *KAFKA)),
    ("import streams.client.replay, streams.client.tail, streams.client.topics, "
     "streams.client.profile, streams.client.models_view, streams.client.demo", FAUST),
], ids=["cli", "tools", "client"])
def test_nothing_imports_them_indirectly(code: str, absent: tuple[str, ...]) -> None:
    check = (f"import sys; {code}; "
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(absent)!r}))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{code}: loads {done.stdout.strip()}"
