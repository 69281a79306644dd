"""Atomic file writes: a temp file in the same folder, then ``os.replace``.

A crash or Ctrl-C never leaves a half-written file under the final name.
"""
import json
import os
import tempfile
from contextlib import contextmanager

import numpy as np


@contextmanager
def atomic_path(path: str):
    """Yield a temp path beside ``path``; on success it is renamed onto ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str):
    """A JSON file's content, or None when absent; an unreadable file is a one-line error."""
    from utils.errors import UserError
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read JSON ({err})") from None


def to_uint8(img) -> np.ndarray:
    """[0, 1] float image -> uint8, rounding (the quantisation metrics are computed on)."""
    return (np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def write_image(path: str, img) -> None:
    import imageio.v2 as imageio
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, to_uint8(img) if np.asarray(img).dtype != np.uint8 else img, format="png")
