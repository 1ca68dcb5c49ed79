"""Which installed packages differ from ``uv.lock``: what `make test-latest` tests anew.

Run with the interpreter of the environment to compare, e.g.
``.venv-latest/bin/python scripts/lock_drift.py uv.lock``. Prints one line per package
whose installed version is not the locked one (for this interpreter), then a count.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name


def locked_versions(lock: Path) -> dict[str, set[str]]:
    """Every version the lock holds per package (a universal lock may hold several,
    one per Python or platform marker)."""
    data = tomllib.loads(lock.read_text())
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        if "version" in package:
            versions.setdefault(canonicalize_name(package["name"]), set()).add(
                package["version"])
    return versions


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "uv.lock")
    locked = locked_versions(lock)
    drift = []
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name == "segstream" or name not in locked:
            continue
        if dist.version not in locked[name]:
            drift.append(f"{name}: {' / '.join(sorted(locked[name]))} locked, "
                         f"{dist.version} installed")
    for line in sorted(drift):
        print(f"  {line}")
    print(f"{len(drift)} package(s) newer than {lock} (or otherwise different)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
