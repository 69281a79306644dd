"""File input/output: atomic writes, JSON, images.

Writes go to a temp file in the same folder, then ``os.replace``: a crash or Ctrl-C never
leaves a half-written file under the final name.
"""
import json
import os
import shutil
import tempfile
from contextlib import contextmanager

import numpy as np

from utils.errors import UserError


TEMP_PREFIX = ".tmp_"  # temp files of interrupted writes; remove_stale_temp_files clears them


def new_file_mode() -> int:
    """The mode the user's umask gives a new file (mkstemp's files are 0600 otherwise)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(path: str, err: BaseException) -> UserError:
    """One line naming the path for a failed write (disk full, read-only folder, ...)."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) or ".").free
        reason += f" ({free / 2 ** 20:.0f} MB free there)"
    except OSError:
        pass
    return UserError(f"cannot write '{path}': {reason}")


@contextmanager
def atomic_path(path: str):
    """Yield a temp path beside ``path``; on success it gets the umask's mode and is renamed
    onto ``path``. A failed write raises a one-line UserError and leaves ``path`` as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
        os.close(fd)
    except OSError as err:
        raise write_error(path, err) from None
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as RuntimeError
        raise write_error(path, err) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_temp_files(folder: str) -> list:
    """Delete the temp files that interrupted atomic writes left in ``folder``; returns them.
    Call it only while holding the folder's lock (another writer's temp files are live)."""
    stale = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(TEMP_PREFIX)] \
        if os.path.isdir(folder) else []
    for path in stale:
        if os.path.isfile(path):
            os.remove(path)
    return stale


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def atomic_write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: str):
    """A JSON file's content, or None when absent; an unreadable file is a one-line error."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read JSON ({err})") from None


def to_uint8(img, dtype=np.float32) -> np.ndarray:
    """[0, 1] float image -> uint8: floor(clip(img, 0, 1) * 255 + 0.5), computed in ``dtype``.

    float32 (the default) is the quantisation the metrics are computed on; pass
    ``dtype=img.dtype`` to round a float64 image in float64 (float32 arithmetic can round a
    value within ~1e-7 of a step boundary the other way)."""
    return (np.clip(np.asarray(img, dtype=dtype), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def image_to_float(img: np.ndarray, keep_gray: bool = False) -> np.ndarray:
    """A decoded image, (H, W) or (H, W, C) in OpenCV's BGR(A) order -> (H, W, C) float32 in [0, 1],
    RGB(A) order. Unsigned integers are divided by their maximum (255, 65535); other types are
    clipped to [0, 1]. Gray ((H, W), or C < 3: the first channel) becomes C = 1 with
    ``keep_gray``, else is repeated to RGB. Alpha, if any, is kept."""
    if img.ndim == 3 and img.shape[2] < 3:
        img = img[..., 0]
    if img.ndim == 2:
        img = img[..., None] if keep_gray else np.repeat(img[..., None], 3, -1)
    else:
        img = img[..., [2, 1, 0] + list(range(3, img.shape[2]))]  # BGR(A) -> RGB(A)
    if img.dtype.kind == "u":
        return img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)
    return np.clip(img.astype(np.float32), 0.0, 1.0)


def read_image(path: str, factor: int = 1, keep_gray: bool = False) -> np.ndarray:
    """An image file as ``image_to_float`` (H, W, C) float32 in [0, 1], RGB(A), shrunk by 1/factor
    to (H // factor, W // factor) with INTER_AREA. A missing or undecodable file is a UserError."""
    import cv2
    if not os.path.isfile(path):
        raise UserError(f"missing image '{path}'")
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"cannot decode image '{path}'")
    img = image_to_float(img, keep_gray)
    if factor > 1:
        H, W = img.shape[:2]
        small = cv2.resize(img, (W // factor, H // factor), interpolation=cv2.INTER_AREA)
        img = small.reshape(small.shape[:2] + img.shape[2:])
    return img


def write_image(path: str, img) -> None:
    import imageio.v2 as imageio
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, to_uint8(img) if np.asarray(img).dtype != np.uint8 else img, format="png")
