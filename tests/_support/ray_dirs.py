"""A short temporary folder for Ray's session files.

Ray puts Unix sockets under its temp dir, and a socket path may not exceed 107 bytes: pytest's
``tmp_path`` under xdist (``/tmp/pytest-of-root/pytest-1259/popen-gw0/ray0/session_<date>_<pid>/
sockets/plasma_store``) is already too long, and Ray then fails to start. A folder made directly in
the system temp dir keeps the path short; it is removed when the fixture ends.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def short_ray_dir(request) -> Path:
    """A fresh ``/tmp/kdviz-ray-XXXX`` folder, removed at the end of ``request``'s scope."""
    path = Path(tempfile.mkdtemp(prefix="kdviz-ray-"))
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    return path
