"""compare.py's figures: PSNR curves, side-by-side test views with zoomed crops, and the
side-by-side camera-path GIF, drawn with cv2 (no matplotlib).

- ``plot_psnr_curves``: psnr_curves.png, val (thick) and train (thin) PSNR against step and
  against training wall time, one colour per setting.
- ``write_views``: views/NNN.png, ground truth | run A | run B ... per test view, with a
  zoomed crop of the patch where the runs differ most (``best_crop``) or of ``--crop``
  (``crop_box``) under each panel.
- ``write_side_by_side_gif``: side_by_side.gif from the runs' eval path.gif, labelled.

Ground truth of the view panels: the first evaluated run's config.txt is parsed with
train.py's parser and its scene loaded (datasets.load_scene, the same images eval.py
scored against); eval's metrics.json ``per_image[k].index`` is the scene index of view
``k``. The mapping is verified, not assumed: the PSNR of the saved NNN.png against the
loaded image must equal the PSNR eval.py recorded (to 0.01 dB). The test split is loaded
with ``testskip`` = metrics.json's ``testskip`` if recorded, else 1 (eval.py's default),
else the run's own testskip, else ceil(#test views / #evaluated views). Runs evaluated
on other views or another scene are left out of the view panels, with a note.
"""
import glob
import math
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from runs.layout import config_path
from runs.report import RunRecord
from utils.errors import UserError
from utils.io import to_uint8, write_image
from utils.visual import write_gif

FONT = cv2.FONT_HERSHEY_SIMPLEX
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # RGB


# ---------------------------------------------------------------- text and small drawing helpers
def fit_text(text: str, width: int, scale: float = 0.45) -> Tuple[str, float]:
    """Shrink the font (down to 0.3), then shorten the text, until it fits ``width`` pixels."""
    while scale > 0.3 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width:
        scale -= 0.05
    while len(text) > 3 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width:
        text = text[:-3] + ".."
    return text, scale


def put_text(img: np.ndarray, text: str, org: Tuple[int, int], scale: float = 0.45, color=(0, 0, 0),
             max_width: Optional[int] = None) -> None:
    if max_width is not None:
        text, scale = fit_text(text, max_width, scale)
    cv2.putText(img, text, org, FONT, scale, color, 1, cv2.LINE_AA)


def put_vertical_text(img: np.ndarray, text: str, center: Tuple[int, int], scale: float = 0.45) -> None:
    """Text rotated 90 degrees counter-clockwise (a y-axis label), centred at ``center``."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    patch = np.full((h + base + 4, w + 4, 3), 255, np.uint8)
    cv2.putText(patch, text, (2, h + 2), FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    patch = np.ascontiguousarray(np.rot90(patch))
    y0, x0 = max(0, center[1] - patch.shape[0] // 2), max(0, center[0] - patch.shape[1] // 2)
    y1, x1 = min(img.shape[0], y0 + patch.shape[0]), min(img.shape[1], x0 + patch.shape[1])
    img[y0:y1, x0:x1] = np.minimum(img[y0:y1, x0:x1], patch[:y1 - y0, :x1 - x0])


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start, stop = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return np.arange(start, stop + step * 0.5, step)


def tick_label(v: float) -> str:
    return f"{v / 1000:g}k" if abs(v) >= 10000 else f"{v:g}"


def lighten(color, amount: float = 0.55):
    return tuple(int(c + (255 - c) * amount) for c in color)


# ---------------------------------------------------------------- PSNR curves (cv2 line plot)
def curve_series(rec: RunRecord, time_axis: bool) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{'val'|'train': (x, psnr)} with x = step, or training seconds interpolated at each step
    from the ``train/seconds`` scalar (logged every i_print steps)."""
    out = {}
    seconds = rec.scalars.get("train/seconds", [])
    for key, tag in (("val", "val/psnr"), ("train", "train/psnr")):
        points = rec.scalars.get(tag, [])
        if not points or (time_axis and not seconds):
            continue
        steps, values = (np.array(v, np.float64) for v in zip(*points))
        if time_axis:
            s_steps, s_vals = (np.array(v, np.float64) for v in zip(*seconds))
            steps = np.interp(steps, s_steps, s_vals)
        out[key] = (steps, values)
    return out


def draw_axes(canvas, box, xticks, yticks, xlabel: str, ylabel: str, title: str):
    """Frame, grid, ticks and labels in ``box`` = (x0, y0, x1, y1); returns data -> pixel mapping."""
    x0, y0, x1, y1 = box
    (xa, xb), (ya, yb) = (xticks[0], xticks[-1]), (yticks[0], yticks[-1])
    to_px = lambda x, y: (x0 + (np.asarray(x) - xa) / (xb - xa) * (x1 - x0),
                          y1 - (np.asarray(y) - ya) / (yb - ya) * (y1 - y0))
    for xt in xticks:
        px = int(round(float(to_px(xt, ya)[0])))
        cv2.line(canvas, (px, y0), (px, y1), (230, 230, 230), 1)
        label = tick_label(xt)
        put_text(canvas, label, (px - cv2.getTextSize(label, FONT, 0.4, 1)[0][0] // 2, y1 + 16), 0.4)
    for yt in yticks:
        py = int(round(float(to_px(xa, yt)[1])))
        cv2.line(canvas, (x0, py), (x1, py), (230, 230, 230), 1)
        label = tick_label(yt)
        put_text(canvas, label, (x0 - 6 - cv2.getTextSize(label, FONT, 0.4, 1)[0][0], py + 4), 0.4)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (0, 0, 0), 1)
    put_text(canvas, xlabel, ((x0 + x1) // 2 - cv2.getTextSize(xlabel, FONT, 0.45, 1)[0][0] // 2, y1 + 36))
    put_vertical_text(canvas, ylabel, (x0 - 45, (y0 + y1) // 2))
    put_text(canvas, title, (x0, y0 - 10), 0.5)
    return to_px


def draw_panel(canvas, box, curves, xlabel: str, title: str) -> None:
    """One plot: ``curves`` = [(x, y, colour, kind)], val thick, train thin and light."""
    if not curves:
        put_text(canvas, f"{title}: no data", (box[0] + 10, (box[1] + box[3]) // 2))
        return
    xs = np.concatenate([c[0] for c in curves])
    ys = np.concatenate([c[1] for c in curves])
    ys = ys[np.isfinite(ys)]
    to_px = draw_axes(canvas, box, nice_ticks(0.0, float(xs.max())),
                      nice_ticks(float(ys.min()) if ys.size else 0.0, float(ys.max()) if ys.size else 1.0),
                      xlabel, "PSNR (dB)", title)
    for x, y, color, kind in sorted(curves, key=lambda c: c[3] == "val"):  # val on top
        ok = np.isfinite(y)
        px, py = to_px(x[ok], y[ok])
        pts = np.stack([px, py], -1).round().astype(np.int32).reshape(-1, 1, 2)
        thick, col = (2, color) if kind == "val" else (1, lighten(color))
        cv2.polylines(canvas, [pts], False, col, thick, cv2.LINE_AA)
        if len(pts) == 1:
            cv2.circle(canvas, tuple(pts[0, 0]), 3, col, -1)


def draw_legend(canvas, top: int, entries: List[Tuple[str, tuple]], width: int) -> None:
    """Colour swatches with labels in rows, then the line-style key."""
    col_w, x, y = 260, 20, top + 18
    for label, color in entries:
        if x + col_w > width:
            x, y = 20, y + 22
        cv2.line(canvas, (x, y - 4), (x + 26, y - 4), color, 3, cv2.LINE_AA)
        put_text(canvas, label, (x + 34, y), 0.45, max_width=col_w - 44)
        x += col_w
    put_text(canvas, "thick: val PSNR (one val view)   thin, light: train PSNR (batch)", (20, y + 24), 0.42,
             (80, 80, 80))


def plot_psnr_curves(groups, path: str, panel=(560, 400)) -> None:
    """psnr_curves.png: PSNR vs step (left) and vs training wall time (right); one colour per setting."""
    pw, ph = panel
    margin_l, margin_r, margin_t, margin_b = 70, 20, 34, 50
    legend_rows = math.ceil(len(groups) / max(1, (2 * pw) // 260))
    canvas = np.full((ph + 40 + 22 * legend_rows, 2 * pw, 3), 255, np.uint8)
    for p, (time_axis, xlabel) in enumerate(((False, "step"), (True, "training time (s)"))):
        curves = []
        for g, (_, members) in enumerate(groups):
            for rec in members:
                for kind, (x, y) in curve_series(rec, time_axis).items():
                    curves.append((x, y, PALETTE[g % len(PALETTE)], kind))
        if time_axis and curves:  # seconds, minutes or hours, by the longest run
            longest = max(float(c[0].max()) for c in curves)
            unit, scale = ("s", 1.0) if longest < 300 else ("min", 60.0) if longest < 3 * 3600 else ("h", 3600.0)
            curves, xlabel = [(x / scale, y, col, kind) for x, y, col, kind in curves], f"training time ({unit})"
        box = (p * pw + margin_l, margin_t, (p + 1) * pw - margin_r, ph - margin_b)
        draw_panel(canvas, box, curves, xlabel, "PSNR vs " + ("wall-clock training time" if time_axis else "step"))
    draw_legend(canvas, ph - 10, [(label, PALETTE[g % len(PALETTE)]) for g, (label, _) in enumerate(groups)],
                2 * pw)
    write_image(path, canvas)


# ---------------------------------------------------------------- ground truth of the test views
def read_render(rec: RunRecord, k: int) -> np.ndarray:
    """Eval's k-th saved render (NNN.png) as float32 RGB in [0, 1]."""
    import imageio.v2 as imageio
    img = imageio.imread(os.path.join(rec.eval_dir, f"{k:03d}.png"))
    return np.asarray(img, np.float32)[..., :3] / 255.0


def matches_eval(rec: RunRecord, images: np.ndarray, checks: int = 3) -> bool:
    """True when ``images[index]`` is what eval.py scored: the PSNR of the saved renders against
    them equals metrics.json's per-image PSNR (0.01 dB) for the first ``checks`` views."""
    from utils.metrics import psnr
    for k, entry in enumerate(rec.metrics.get("per_image", [])[:checks]):
        idx = int(entry["index"])
        if idx >= len(images) or images[idx].shape[:2] != (rec.metrics["height"], rec.metrics["width"]):
            return False
        got, want = psnr(read_render(rec, k), images[idx]), float(entry["psnr"])
        if not (got == want or abs(got - want) < 0.01):
            return False
    return bool(rec.metrics.get("per_image"))


def load_split_images(rec: RunRecord, testskip: int):
    """(all scene images composited like training, number of views in the evaluated split)."""
    from datasets import load_scene
    from utils.config import build_parser, parse_args
    args = parse_args(build_parser(), ["--config", config_path(rec.path), "--testskip", str(testskip)])
    scene = load_scene(args)
    return scene.rgb(args.white_bkgd), len(scene.splits[rec.metrics.get("split", "test")])


def load_ground_truth(rec: RunRecord) -> Tuple[Optional[np.ndarray], str]:
    """The scene images eval.py compared ``rec`` against, or (None, why not); see the module doc."""
    tried, candidates = [], [rec.metrics.get("testskip"), 1, rec.args.testskip]
    while candidates:
        skip = candidates.pop(0)
        if skip is None or skip in tried:
            continue
        tried.append(skip)
        try:
            images, n_split = load_split_images(rec, skip)
        except UserError as err:
            return None, f"ground truth not loadable from {rec.name}'s config ({err})"
        if matches_eval(rec, images):
            return images, ""
        if skip == 1 and rec.metrics.get("n_images"):
            candidates.append(max(1, math.ceil(n_split / rec.metrics["n_images"])))
    return None, f"ground truth of {rec.name}'s evaluated views not found (testskip tried: {tried})"


# ---------------------------------------------------------------- view panels
def best_crop(renders: List[np.ndarray], gt: Optional[np.ndarray], size: int) -> Tuple[int, int]:
    """Top-left (x, y) of the size x size patch with the largest summed variance across the
    runs' renders (with one run: squared error against the ground truth)."""
    stack = np.stack(renders)
    score = stack.var(0).mean(-1) if len(renders) > 1 else (
        ((stack[0] - gt) ** 2).mean(-1) if gt is not None else np.zeros(stack.shape[1:3]))
    H, W = score.shape
    s = min(size, H, W)
    integral = np.pad(score, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x), int(y)


def panel_column(img: Optional[np.ndarray], shape, box, scale: int, title: str, subtitle: str) -> np.ndarray:
    """Title lines, the image (scaled, crop box drawn) and the zoomed crop under it (uint8 RGB)."""
    H, W = shape
    x, y, s = box
    width = W * scale
    head = np.full((38, width, 3), 255, np.uint8)
    put_text(head, title, (3, 15), 0.45, max_width=width - 6)
    put_text(head, subtitle, (3, 32), 0.4, (90, 90, 90), max_width=width - 6)
    if img is None:
        body = np.full((H * scale + width, width, 3), 200, np.uint8)
        put_text(body, "unavailable", (4, H * scale // 2), 0.45, max_width=width - 8)
        return np.concatenate([head, body])
    img8 = to_uint8(img)
    big = np.ascontiguousarray(cv2.resize(img8, (width, H * scale), interpolation=cv2.INTER_NEAREST))
    zoom = np.ascontiguousarray(cv2.resize(img8[y:y + s, x:x + s], (width, width), interpolation=cv2.INTER_NEAREST))
    for panel in (big, zoom):  # a thin frame: white backgrounds stay visible
        cv2.rectangle(panel, (0, 0), (panel.shape[1] - 1, panel.shape[0] - 1), (170, 170, 170), 1)
    cv2.rectangle(big, (x * scale, y * scale), ((x + s) * scale - 1, (y + s) * scale - 1), (255, 200, 0), 2)
    gap = np.full((4, width, 3), 255, np.uint8)
    return np.concatenate([head, big, gap, zoom])


def hstack_columns(columns: List[np.ndarray], gap: int = 6) -> np.ndarray:
    """Side by side, padded with white to the tallest column."""
    height = max(c.shape[0] for c in columns)
    padded = []
    for k, c in enumerate(columns):
        c = np.pad(c, ((0, height - c.shape[0]), (0, 0), (0, 0)), constant_values=255)
        padded += [c] + ([np.full((height, gap, 3), 255, np.uint8)] if k + 1 < len(columns) else [])
    return np.concatenate(padded, axis=1)


def crop_box(crop, renders, gt, shape) -> Tuple[int, int, int]:
    """(x, y, size) inside the image: ``--crop`` clipped to it, else the most different patch."""
    H, W = shape
    if crop is not None:
        s = max(1, min(crop[2], H, W))
        return min(max(crop[0], 0), W - s), min(max(crop[1], 0), H - s), s
    s = max(4, min(H, W) // 5)
    return (*best_crop(renders, gt, s), min(s, H, W))


def comparable_runs(records: List[RunRecord]) -> Tuple[List[RunRecord], List[str]]:
    """Evaluated runs with the first one's image size (others get a note)."""
    evaluated = [r for r in records if r.has_eval]
    if not evaluated:
        return [], ["no run has an evaluation: views/ and side_by_side.gif not written."]
    size = lambda r: (r.metrics["height"], r.metrics["width"])
    runs = [r for r in evaluated if size(r) == size(evaluated[0])]
    notes = [f"{r.name} left out of the view panels: rendered at {size(r)[1]}x{size(r)[0]}, not "
             f"{size(evaluated[0])[1]}x{size(evaluated[0])[0]}." for r in evaluated if r not in runs]
    return runs, notes


def view_list(runs: List[RunRecord], max_views: int) -> List[Tuple[int, int, List[int]]]:
    """[(view number of the first run, scene index, each run's view number)] for the views all runs rendered."""
    maps = [{int(e["index"]): k for k, e in enumerate(r.metrics["per_image"])} for r in runs]
    views = [(k, idx, [m[idx] for m in maps]) for k, idx in enumerate(maps[0]) if all(idx in m for m in maps)]
    return views[:max_views] if max_views > 0 else views


def write_views(records: List[RunRecord], out_dir: str, crop=None, max_views: int = 8):
    """views/NNN.png (GT | runs, zoomed crop under each); returns (written paths, notes)."""
    runs, notes = comparable_runs(records)
    if not runs:
        return [], notes
    gt_images, why = load_ground_truth(runs[0])
    if gt_images is None:
        notes.append(why + "; the ground-truth panels are left empty.")
    else:
        kept = [r for r in runs if r is runs[0] or matches_eval(r, gt_images)]
        notes += [f"{r.name} left out of the view panels: evaluated on other views or another scene."
                  for r in runs if r not in kept]
        runs = kept
    shape = (runs[0].metrics["height"], runs[0].metrics["width"])
    scale, written = max(1, math.ceil(192 / shape[1])), []
    for k, idx, ks in view_list(runs, max_views):
        renders = [read_render(r, kr) for r, kr in zip(runs, ks)]
        gt = gt_images[idx] if gt_images is not None else None
        box = crop_box(crop, renders, gt, shape)
        columns = [panel_column(gt, shape, box, scale, "ground truth",
                                f"view {k}, crop x={box[0]} y={box[1]} size={box[2]}")]
        columns += [panel_column(img, shape, box, scale, r.name,
                                 f"PSNR {r.metrics['per_image'][kr]['psnr']:.2f} dB")
                    for img, r, kr in zip(renders, runs, ks)]
        written.append(os.path.join(out_dir, f"{k:03d}.png"))
        write_image(written[-1], hstack_columns(columns))
    for stale in set(glob.glob(os.path.join(out_dir, "[0-9][0-9][0-9].png"))) - set(written):
        os.remove(stale)  # from an earlier comparison with other views
    return written, notes


# ---------------------------------------------------------------- camera-path GIF
def read_path_gif(rec: RunRecord) -> Optional[List[np.ndarray]]:
    import imageio.v2 as imageio
    path = os.path.join(rec.eval_dir, "path.gif")
    if not os.path.isfile(path):
        return None
    return [np.asarray(f)[..., :3] if np.asarray(f).ndim == 3 else np.repeat(np.asarray(f)[..., None], 3, -1)
            for f in imageio.mimread(path, memtest=False)]


def labelled_frames(frames: List[np.ndarray], height: int, title: str) -> List[np.ndarray]:
    """Frames resized to ``height`` (nearest when enlarging) under a title bar."""
    h, w = frames[0].shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_NEAREST if height >= h else cv2.INTER_AREA
    head = np.full((22, width, 3), 255, np.uint8)
    put_text(head, title, (3, 15), 0.45, max_width=width - 6)
    return [np.concatenate([head, cv2.resize(np.ascontiguousarray(f, dtype=np.uint8), (width, height),
                                             interpolation=interp)]) for f in frames]


def write_side_by_side_gif(records: List[RunRecord], path: str) -> Tuple[bool, List[str]]:
    """side_by_side.gif from the runs' eval path.gif (RGB | depth per run); returns (written, notes)."""
    clips, notes = [], []
    if not any(r.has_eval for r in records):
        return False, []  # comparable_runs already says so
    for rec in (r for r in records if r.has_eval):
        frames = read_path_gif(rec)
        if frames:
            clips.append((rec.name, frames))
        else:
            notes.append(f"{rec.name} has no path.gif in {rec.eval_dir} (eval.py --no_path): not in side_by_side.gif.")
    if not clips:
        return False, notes + ["side_by_side.gif not written: no run has a camera-path GIF."]
    n = min(len(f) for _, f in clips)
    height = max(128, max(f[0].shape[0] for _, f in clips))
    columns = [labelled_frames(f[:n], height, name) for name, f in clips]
    frames = [hstack_columns([c[t] for c in columns]).astype(np.float32) / 255.0 for t in range(n)]
    write_gif(path, frames, fps=20)
    return True, notes


# ---------------------------------------------------------------- all figures of a comparison
def write_figures(records, groups, out: str, crop, max_views: int) -> Tuple[List[str], List[str]]:
    """psnr_curves.png, views/, side_by_side.gif; returns (figure entries for the report, notes)."""
    plot_psnr_curves([(f"{label} (n={len(m)})", m) for label, m in groups], os.path.join(out, "psnr_curves.png"))
    figures = ["psnr_curves.png"]
    views, notes = write_views(records, os.path.join(out, "views"), crop, max_views)
    if views:
        figures.append(f"- side-by-side test views (GT | runs, zoomed crop below): "
                       f"{', '.join(os.path.relpath(v, out) for v in views)}")
        figures.append(os.path.relpath(views[0], out))
    gif_ok, gif_notes = write_side_by_side_gif(records, os.path.join(out, "side_by_side.gif"))
    if gif_ok:
        figures.append("side_by_side.gif")
    return figures, notes + gif_notes
