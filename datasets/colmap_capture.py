"""Your own captures: photos or a video -> a COLMAP scene folder, through pycolmap.

``process_data.py`` is the command line; this module is its logic, so that tests and other
code call it in-process. It lives in ``datasets/`` beside ``datasets/colmap.py`` because it
writes exactly the folder that loader reads (``images/``, ``images_N/`` made with
``datasets.llff.minify``, ``sparse/0/``) and needs nothing above this layer: no model, no
training, no run folder (``runs/`` is the training/evaluation layer). pycolmap is imported
only when a capture is processed, so loading scenes never needs it.

Steps (all on the CPU, nothing downloaded):
  1. images: ``--images DIR`` copies DIR's .png/.jpg/.jpeg files (which must decode and share
     one size) into SCENE/images/, or uses them where they are when DIR is SCENE/images;
     ``--video FILE`` writes ``--num_frames`` frames sampled evenly over the video
     (cv2.VideoCapture) as SCENE/images/frame_NNNNN.png.
  2. SIFT features (COLMAP's CPU SiftExtraction, one camera shared by all images, model
     SIMPLE_RADIAL unless ``camera_model``), exhaustive matching for image sets or sequential
     matching (10 neighbours, quadratic overlap, no loop detection: no vocabulary tree) for
     video frames, incremental mapping (random seed 0). The largest model is kept.
  3. At least ``min_registered`` images (default: half, and at least 3) must register, else a
     UserError names the unregistered ones. Then SCENE/sparse/0/ (COLMAP's binary model),
     SCENE/database.db, and images_2/, images_4/, images_8/ (INTER_AREA; rebuilt if present).

COLMAP's (and FFmpeg's) own log goes to SCENE/colmap.log, not to the terminal. Work happens in a temporary
folder inside SCENE, moved into place only on success, so a failed run leaves no partial
images/ or sparse/ (only colmap.log).
"""
import math
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np

from datasets.colmap import SUPPORTED_MODELS
from datasets.llff import image_files, minify
from utils.errors import UserError

PYCOLMAP_REQUIREMENT = "pycolmap==4.2.1"
MATCHERS = ("exhaustive", "sequential")
DOWNSCALES = (2, 4, 8)
SEQUENTIAL_OVERLAP = 10
MAX_LISTED = 8


@dataclass
class CaptureResult:
    scene: str
    n_images: int
    registered: List[str]
    unregistered: List[str]
    mean_reprojection_error: float
    n_points: int
    camera: str
    seconds: float


def import_pycolmap():
    try:
        import pycolmap
    except ImportError:
        raise UserError(f"process_data.py needs pycolmap, which is not installed: pip install "
                        f"{PYCOLMAP_REQUIREMENT}") from None
    return pycolmap


def name_list(names: List[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


# --------------------------------------------------------------------------- step 1: images

def check_images(folder: str) -> List[str]:
    """The image names of ``folder``; each must decode, and all must share one size."""
    if not os.path.isdir(folder):
        raise UserError(f"image folder '{folder}' does not exist (--images)")
    names = image_files(folder)
    if not names:
        raise UserError(f"'{folder}' has no .png/.jpg/.jpeg images (--images)")
    sizes = {}
    for name in names:
        img = cv2.imread(os.path.join(folder, name), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise UserError(f"cannot decode image '{os.path.join(folder, name)}'")
        sizes.setdefault(f"{img.shape[1]}x{img.shape[0]}", []).append(name)
    if len(sizes) > 1:
        found = "; ".join(f"{wh}: {name_list(n)}" for wh, n in sizes.items())
        raise UserError(f"'{folder}': images have different sizes ({found}); one capture uses one camera")
    return names


def extract_frames(video: str, out_dir: str, num_frames: int) -> List[str]:
    """``num_frames`` frames sampled evenly over ``video`` (all if it has fewer) as
    frame_NNNNN.png in ``out_dir``. Frames are read in order (grab/retrieve), not by seeking,
    which is unreliable in many codecs."""
    if not os.path.isfile(video):
        raise UserError(f"video '{video}' does not exist (--video)")
    cap = cv2.VideoCapture(video)
    try:
        if not cap.isOpened():
            raise UserError(f"cannot open video '{video}' with OpenCV")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:  # unknown: count them
            while cap.grab():
                total += 1
            cap.release()
            cap = cv2.VideoCapture(video)
        if total <= 0:
            raise UserError(f"no frames could be read from video '{video}'")
        wanted = set(np.linspace(0, total - 1, min(num_frames, total)).round().astype(int).tolist())
        names, k = [], 0
        while len(names) < len(wanted) and cap.grab():
            if k in wanted:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    name = f"frame_{len(names):05d}.png"
                    if not cv2.imwrite(os.path.join(out_dir, name), frame):
                        raise UserError(f"cannot write '{os.path.join(out_dir, name)}'")
                    names.append(name)
            k += 1
    finally:
        cap.release()
    if not names:
        raise UserError(f"no frames could be read from video '{video}'")
    return names


# --------------------------------------------------------------------------- step 2: COLMAP

@contextmanager
def output_to(log_path: str):
    """Send this process's stdout and stderr (file descriptors 1 and 2, so COLMAP's C++
    logging too) to ``log_path`` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "ab") as log:
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_colmap(pycolmap, image_dir: str, names: List[str], work: str, matcher: str, camera_model: str,
               max_features: int, log_path: str, say: Callable[[str], None]):
    """Features, matches and incremental mapping -> the largest reconstruction (or None)."""
    database = os.path.join(work, "database.db")
    cpu = pycolmap.Device.cpu

    def step(label: str, fn):
        say(label)
        start = time.perf_counter()
        try:
            with output_to(log_path):
                out = fn()
        except (RuntimeError, ValueError, TypeError) as err:
            msg = " ".join(str(err).split())
            raise UserError(f"COLMAP failed at '{label}': {msg} (log: {log_path})") from None
        say(f"  done in {time.perf_counter() - start:.1f} s")
        return out

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.use_gpu = False
    extraction.sift.max_num_features = max_features
    step(f"extracting SIFT features from {len(names)} images (CPU, at most {max_features} per image)",
         lambda: pycolmap.extract_features(database, image_dir, image_names=names,
                                           camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                                           extraction_options=extraction, device=cpu))
    matching = pycolmap.FeatureMatchingOptions()
    matching.use_gpu = False
    if matcher == "exhaustive":
        step(f"matching all {len(names) * (len(names) - 1) // 2} image pairs (exhaustive)",
             lambda: pycolmap.match_exhaustive(database, matching_options=matching, device=cpu))
    else:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = SEQUENTIAL_OVERLAP
        pairing.quadratic_overlap = True
        pairing.loop_detection = False
        step(f"matching each image with its {SEQUENTIAL_OVERLAP} successors (sequential)",
             lambda: pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                                               device=cpu))
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = 0
    options.mapper.random_seed = 0
    models = step("incremental mapping",
                  lambda: pycolmap.incremental_mapping(database, image_dir, os.path.join(work, "sparse"), options))
    if not models:
        return None
    return max(models.values(), key=lambda rec: rec.num_reg_images())


# --------------------------------------------------------------------------- the whole capture

def check_options(images: Optional[str], video: Optional[str], num_frames: int, matcher: Optional[str],
                  camera_model: str, max_features: int) -> str:
    """The matcher to use (sequential for video frames, else exhaustive), after refusing bad
    options before anything is read or written."""
    if (images is None) == (video is None):
        raise UserError("give exactly one of --images DIR and --video FILE")
    matcher = matcher or ("sequential" if video is not None else "exhaustive")
    if matcher not in MATCHERS:
        raise UserError(f"--matcher must be one of {', '.join(MATCHERS)}, got '{matcher}'")
    if camera_model not in SUPPORTED_MODELS:
        raise UserError(f"--camera_model must be one of {', '.join(SUPPORTED_MODELS)}, got '{camera_model}'")
    if num_frames < 3 or max_features < 1:
        raise UserError(f"--num_frames must be >= 3 and --max_features >= 1, got {num_frames}, {max_features}")
    return matcher


def check_inputs(out: str, images: Optional[str], video: Optional[str], in_place: bool) -> Optional[List[str]]:
    """The photos' names (None for a video), after checking the input exists and that no earlier
    scene in ``out`` would be overwritten: all before anything is written."""
    names = None
    if images is not None:
        names = check_images(images)
    elif not os.path.isfile(video):
        raise UserError(f"video '{video}' does not exist (--video)")
    for path in [os.path.join(out, "sparse")] + ([] if in_place else [os.path.join(out, "images")]):
        if os.path.exists(path):
            raise UserError(f"'{path}' already exists; remove it or choose another --out")
    return names


def make_workspace(out: str) -> Tuple[str, str]:
    """(work, log_path): a temporary folder inside ``out`` (one file system, so results move in
    with os.replace) and an emptied colmap.log, so the log holds this run only."""
    try:
        os.makedirs(out, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".process_data_", dir=out)
        log_path = os.path.join(out, "colmap.log")
        open(log_path, "w").close()
    except OSError as err:
        raise UserError(f"cannot write into '{out}': {err.strerror}") from None
    return work, log_path


def gather_images(images: Optional[str], video: Optional[str], names: Optional[List[str]], folder: str,
                  num_frames: int, log_path: str, say: Callable[[str], None]) -> List[str]:
    """Copy the photos, or extract the video's frames, into the new ``folder`` (in the work
    folder, so a failed run leaves no images/ behind); their names."""
    os.makedirs(folder)
    if images is not None:
        say(f"copying {len(names)} images from '{images}'")
        for name in names:
            shutil.copy2(os.path.join(images, name), os.path.join(folder, name))
        return names
    with output_to(log_path):  # FFmpeg's own messages
        names = extract_frames(video, folder, num_frames)
    say(f"extracted {len(names)} frames from '{video}'")
    return names


def registrations_needed(n: int, min_registered: Optional[int]) -> int:
    """``min_registered``, by default half the images and at least 3 (fewer would make a scene
    too thin to train on); an error for fewer than 3 images, which SfM cannot use."""
    if n < 3:
        raise UserError(f"{n} image(s) found; structure from motion needs at least 3")
    need = max(3, math.ceil(n / 2)) if min_registered is None else min_registered
    if not 1 <= need <= n:
        raise UserError(f"--min_registered must be between 1 and the number of images ({n}), got {need}")
    return need


def check_registered(rec, names: List[str], need: int, log_path: str) -> Tuple[List[str], List[str]]:
    """(registered, unregistered) names; too few registered is an error naming the others."""
    registered = sorted(rec.image(i).name for i in rec.reg_image_ids()) if rec is not None else []
    unregistered = sorted(set(names) - set(registered))
    if len(registered) < need:
        raise UserError(f"only {len(registered)} of {len(names)} images registered (at least {need} needed, "
                        f"--min_registered); unregistered: {name_list(unregistered)}; the images may "
                        f"overlap too little or lack texture (log: {log_path})")
    return registered, unregistered


def move_into_place(rec, work: str, colmap_images: str, out: str, in_place: bool) -> None:
    """Write the model, then move images/, sparse/0/ and database.db from ``work`` into ``out``:
    only a successful run leaves a scene there."""
    sparse_tmp = os.path.join(work, "model")
    os.makedirs(sparse_tmp)
    rec.write(sparse_tmp)
    if not in_place:
        os.replace(colmap_images, os.path.join(out, "images"))
    os.makedirs(os.path.join(out, "sparse"))
    os.replace(sparse_tmp, os.path.join(out, "sparse", "0"))
    os.replace(os.path.join(work, "database.db"), os.path.join(out, "database.db"))


def write_downscales(image_dir: str, out: str, width: int, height: int) -> None:
    """images_2/, images_4/, images_8/ (rebuilt, so never stale), skipping a factor larger than
    the smaller image side."""
    for factor in DOWNSCALES:
        folder = os.path.join(out, f"images_{factor}")
        if min(width, height) < factor:
            continue
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        minify(image_dir, folder, factor)


def report(result: CaptureResult, image_dir: str, say: Callable[[str], None]) -> None:
    """The summary: how many images registered and how well, which did not, what was written."""
    say(f"registered {len(result.registered)}/{result.n_images} images; mean reprojection error "
        f"{result.mean_reprojection_error:.3f} px; {result.n_points} 3D points; camera {result.camera}")
    if result.unregistered:
        say(f"not registered (kept in images/, not loaded for training): {name_list(result.unregistered)}")
    say(f"wrote {image_dir}/, {os.path.join(result.scene, 'sparse', '0')}/, "
        f"{', '.join(f'images_{f}/' for f in DOWNSCALES)} in {result.seconds:.1f} s")


def process_capture(out: str, images: Optional[str] = None, video: Optional[str] = None, num_frames: int = 100,
                    matcher: Optional[str] = None, min_registered: Optional[int] = None,
                    camera_model: str = "SIMPLE_RADIAL", max_features: int = 8192,
                    say: Callable[[str], None] = print) -> CaptureResult:
    """Photos (``images``) or a ``video`` -> the COLMAP scene folder ``out`` (module doc)."""
    start = time.perf_counter()
    matcher = check_options(images, video, num_frames, matcher, camera_model, max_features)
    image_dir = os.path.join(out, "images")
    in_place = images is not None and os.path.realpath(images) == os.path.realpath(image_dir)
    names = check_inputs(out, images, video, in_place)
    pycolmap = import_pycolmap()
    work, log_path = make_workspace(out)
    try:
        colmap_images = image_dir if in_place else os.path.join(work, "images")
        if not in_place:
            names = gather_images(images, video, names, colmap_images, num_frames, log_path, say)
        need = registrations_needed(len(names), min_registered)
        rec = run_colmap(pycolmap, colmap_images, names, work, matcher, camera_model, max_features, log_path, say)
        registered, unregistered = check_registered(rec, names, need, log_path)
        move_into_place(rec, work, colmap_images, out, in_place)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cam = rec.cameras[rec.image(rec.reg_image_ids()[0]).camera_id]
    params = ", ".join(f"{v:.6g}" for v in cam.params)
    camera = f"{cam.model.name} {cam.width}x{cam.height} [{params}] ({cam.params_info})"
    write_downscales(image_dir, out, cam.width, cam.height)
    result = CaptureResult(scene=out, n_images=len(names), registered=registered, unregistered=unregistered,
                           mean_reprojection_error=float(rec.compute_mean_reprojection_error()),
                           n_points=int(rec.num_points3D()), camera=camera,
                           seconds=time.perf_counter() - start)
    report(result, image_dir, say)
    return result
