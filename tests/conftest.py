"""Helpers for the top-level tests that run Hinkskalle as operators do (ini files, subprocesses)."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def write_ini(folder: Path, source: str = "development.ini", server: dict | None = None, **app) -> Path:
    """A copy of `source` in `folder` (so its data folder is there) with some keys replaced.

    `app` sets `[app:main]` keys (spelled with dots), `server` sets `[server:main]` keys.
    """
    sections = {"[app:main]": app, "[server:main]": server or {}}
    lines, current = [], None
    for line in (REPO / source).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            current = sections.get(stripped)
            lines.append(line)
            lines += [f"{k} = {v}" for k, v in (current or {}).items()]
            continue
        key = stripped.split("=", 1)[0].strip()
        if current and "=" in stripped and not stripped.startswith("#") and key in current:
            continue
        lines.append(line)
    ini = folder / source
    ini.write_text("\n".join(lines) + "\n")
    return ini


@pytest.fixture
def make_ini(tmp_path):
    """Write a copy of development.ini (or another ini of the repo) into the test's folder."""
    def make(source="development.ini", server=None, **app):
        return write_ini(tmp_path, source, server, **app)
    return make


@pytest.fixture(scope="session")
def ini_writer():
    """`write_ini` for fixtures of a wider scope (test modules cannot import conftest)."""
    return write_ini


@pytest.fixture
def rereads(monkeypatch):
    """Paths the blob store reads back from now on (to catch a running hash up)."""
    from hinkskalle.services import storage

    paths, real_read_range = [], storage._read_range

    def recording(path, *args):
        paths.append(path)
        return real_read_range(path, *args)

    monkeypatch.setattr(storage, "_read_range", recording)
    return paths
