"""A git-ignored ``.env`` file as a source of environment variables (credentials stay out of params)."""
from __future__ import annotations

import os
from pathlib import Path


def load_env_file(path: str | os.PathLike, environ=os.environ) -> list[str]:
    """Set ``NAME=value`` lines of `path` in `environ` unless already set; returns the names set.

    Blank lines, ``# comments`` and an ``export`` prefix are accepted; values may be quoted.
    A missing file is not an error.
    """
    file = Path(path)
    if not file.is_file():
        return []
    added = []
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name = name.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name and name not in environ:
            environ[name] = value
            added.append(name)
    return added
