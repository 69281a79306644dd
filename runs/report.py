"""Collect a run's numbers and format them as the comparison tables (compare.py, sweep.py).

A *run* is a folder laid out as ``runs/layout.py`` says. From it this module reads
the resolved config (hyper-parameters, parsed with train.py's own parser), the train
state (steps, training wall time, parameter count), the TensorBoard scalars ("final
val PSNR" is the last ``val/psnr``) and the metrics of the newest *test-split*
evaluation (test PSNR / SSIM / LPIPS).

Runs that differ only by ``--seed`` (and by names, paths, logging cadence, device and
chunk sizes; not by N_iters) form one group; groups report mean ± sample std (ddof=1) over the runs that have the
number, and ``n``.

A run whose training did not finish (train_state.json missing, ``finished`` false, its
step short of config.txt's N_iters, or ``diverged_at`` set) is marked in the per-run
table and left out of its group's numbers, unless ``include_unfinished`` (then the group
row names it). Each setting is compared with a reference setting seed by seed
(``runs.stats``: paired differences of test PSNR and SSIM, paired t-test).
"""
import csv
import glob
import io
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from runs import layout
from runs.stats import Paired, paired
from runs.summary import run_settings
from utils.config import build_parser, parse_args
from utils.errors import UserError
from utils.io import read_json
from utils.tables import markdown_table

# Keys that never change what a run learns: ignored when grouping seeds and when
# naming sweep runs (sweep.py), so longer training or other log cadences reuse a run.
NON_SETTING = {"config", "expname", "basedir", "seed", "device", "chunk", "netchunk", "N_iters",
               "no_reload", "i_print", "i_img", "i_weights", "i_testset", "i_video"}


@dataclass
class RunRecord:
    """Everything the report shows about one run."""
    path: str
    name: str
    args: object                        # argparse.Namespace from config.txt
    state: Dict = field(default_factory=dict)
    scalars: Dict[str, List[Tuple[int, float]]] = field(default_factory=dict)
    eval_dir: Optional[str] = None
    metrics: Optional[Dict] = None
    eval_note: str = ""                 # "", "missing eval", "eval failed", "stale: ..."
    finished: bool = False              # training reached N_iters (train_status)
    training: str = ""                  # "finished", "unfinished (step 300/1000)", "diverged at step N"

    @property
    def has_eval(self) -> bool:
        return self.metrics is not None


# ---------------------------------------------------------------- reading one run
def load_config(run_dir: str):
    """The run's config.txt parsed by train.py's parser; a non-run is a one-line error."""
    if not os.path.isdir(run_dir):
        raise UserError(f"'{run_dir}' is not a directory (expected a run folder <basedir>/<expname>)")
    path = layout.config_path(run_dir)
    if not os.path.isfile(path):
        raise UserError(f"'{run_dir}' is not a run directory (no config.txt written by train.py)")
    return parse_args(build_parser(), ["--config", path])


def read_scalars(run_dir: str) -> Dict[str, List[Tuple[int, float]]]:
    """All scalar series of the run's events files as {tag: [(step, value), ...]}, by step.

    EventAccumulator reads every events file of the folder in order and drops the
    steps a resumed run wrote again, so a resumed run gives one clean series."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    if not glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        return {}
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get("scalars", []):
        points = {int(e.step): float(e.value) for e in acc.Scalars(tag)}
        out[tag] = sorted(points.items())
    return out


def final_step(run_dir: str, state: Optional[Dict]) -> Optional[int]:
    """The step training reached: the larger of train_state.json's step and the newest
    checkpoint's (a run still training has checkpoints past its last train_state.json)."""
    steps = [step for step, _ in layout.checkpoints(run_dir)]
    if state and "step" in state:
        steps.append(int(state["step"]))
    return max(steps) if steps else None


def train_status(state: Dict, n_iters: int) -> Tuple[bool, str]:
    """(finished, how the per-run table describes the training) from train_state.json and
    config.txt's N_iters: finished only when train_state.json says so, its step reached
    N_iters (or its clock its --time_budget) and it did not diverge."""
    if not state:
        return False, "unfinished (no train_state.json)"
    if state.get("diverged_at") is not None:
        return False, (f"diverged at step {state['diverged_at']}"
                       + (f" (last good checkpoint: step {state['step']})" if state.get("step") else ""))
    step = state.get("step")
    target = max(int(n_iters), int(state.get("N_iters") or 0))
    if not layout.state_done(state, target):
        return False, f"unfinished (step {step if step is not None else '?'}/{target})"
    return True, "finished"


def load_run(run_dir: str) -> RunRecord:
    """Read one run (config, state, scalars and its newest test evaluation)."""
    args = load_config(run_dir)
    rec = RunRecord(path=run_dir, name=os.path.basename(os.path.normpath(run_dir)), args=args,
                    state=layout.read_train_state(run_dir),
                    scalars=read_scalars(run_dir))
    rec.finished, rec.training = train_status(rec.state, args.N_iters)
    evals = layout.eval_dirs(run_dir)
    if evals:
        step, rec.eval_dir = evals[-1]
        rec.metrics = read_json(layout.metrics_path(rec.eval_dir))
        trained = final_step(run_dir, rec.state)
        if trained is not None and step < trained:
            rec.eval_note = f"stale: eval at step {step}, trained to {trained}"
    else:
        rec.eval_note = "missing eval"
    return rec


# ---------------------------------------------------------------- per-run values
def hyper_params(args) -> Dict[str, object]:
    """The hyper-parameters the table shows, from ``runs.summary.run_settings``."""
    settings = run_settings(args)
    net = f"{args.netdepth}x{args.netwidth}"
    if args.N_importance > 0:
        net += f" + {args.netdepth_fine}x{args.netwidth_fine}"
    encoding = settings["encoding"]
    return {"activation": settings["activation"], "dir_activation": settings["dir_activation"],
            "first_omega0": settings["first_omega0"], "omega0": settings["omega0"],
            "siren_init": settings["siren_init"],
            "act_params": ", ".join(f"{k}={v:g}" for k, v in settings["act_params"].items()),
            "encoding": "none" if encoding == "none" else "PE " + encoding[2:],
            "lrate": args.lrate, "net": net, "samples": f"{args.N_samples}+{args.N_importance}"}


def run_values(rec: RunRecord) -> Dict[str, Optional[float]]:
    """The numbers of one run, raw (None where the run has no such number)."""
    val = rec.scalars.get("val/psnr", [])
    seconds = rec.state.get("train_seconds")
    if seconds is None and rec.scalars.get("train/seconds"):
        seconds = rec.scalars["train/seconds"][-1][1]
    m = rec.metrics or {}
    return {"n_params": rec.state.get("n_params", checkpoint_params(rec.path)),
            "steps": final_step(rec.path, rec.state) or last_logged_step(rec.scalars),
            "train_seconds": seconds,
            "val_psnr": val[-1][1] if val else None,
            "val_step": val[-1][0] if val else None,
            "test_psnr": m.get("psnr"), "test_ssim": m.get("ssim"), "test_lpips": m.get("lpips"),
            "lpips_net": lpips_net(m), "eval_step": m.get("step"), "test_views": m.get("n_images")}


def lpips_net(metrics: Dict) -> Optional[str]:
    """The backbone of an LPIPS value: metrics.json's ``lpips_net``; an LPIPS value from
    before that key was written is AlexNet's (the only backbone eval.py used then)."""
    if metrics.get("lpips") is None:
        return None
    return metrics.get("lpips_net") or "alex"


def last_logged_step(scalars: Dict[str, List[Tuple[int, float]]]) -> Optional[int]:
    """The newest step in the events (a run still training, before its first checkpoint)."""
    steps = [series[-1][0] for series in scalars.values() if series]
    return max(steps) if steps else None


def checkpoint_params(run_dir: str) -> Optional[int]:
    """Parameter count from the newest checkpoint (only when train_state.json is absent)."""
    path = layout.latest_checkpoint(run_dir)
    if path is None:
        return None
    import torch
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return int(sum(t.numel() for part in ckpt["models"].values() if part for t in part.values()))


# ---------------------------------------------------------------- grouping
def setting_key(args) -> Tuple:
    """What a run learns, minus the seed: runs with equal keys are seeds of one setting
    (N_iters counts here: runs trained for different lengths are different settings)."""
    ignore = NON_SETTING - {"N_iters"}
    return tuple(sorted((k, repr(v)) for k, v in vars(args).items() if k not in ignore))


def group_label(names: List[str]) -> str:
    """Run names without their ``_s<seed>`` token (sweep.py's naming); else the first name."""
    stripped = {re.sub(r"_s\d+(?=_|$)", "", n) for n in names}
    return stripped.pop() if len(stripped) == 1 else names[0] + " (+ seeds)"


def group_runs(records: List[RunRecord]) -> List[Tuple[str, List[RunRecord]]]:
    """[(label, members)] in first-appearance order, one group per setting."""
    groups: Dict[Tuple, List[RunRecord]] = {}
    for rec in records:
        groups.setdefault(setting_key(rec.args), []).append(rec)
    return [(group_label([r.name for r in members]), members) for members in groups.values()]


def mean_std(values) -> Tuple[Optional[float], Optional[float], int]:
    """(mean, sample std or None for n < 2, n) over the values that are not None."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return None, None, 0
    return float(np.mean(xs)), (float(np.std(xs, ddof=1)) if len(xs) > 1 else None), len(xs)


NUMBERS = ("n_params", "steps", "train_seconds", "val_psnr", "test_psnr", "test_ssim", "test_lpips")


# ---------------------------------------------------------------- rows (CSV) and cells (Markdown)
def eval_status(rec: RunRecord) -> str:
    return rec.eval_note or "ok"


def run_row(rec: RunRecord) -> Dict[str, object]:
    """One CSV row for one run (``kind`` = run); the ``*_std`` columns stay empty."""
    values = run_values(rec)
    row = {"kind": "run", "name": rec.name, "runs": rec.name, "n": 1, "seeds": str(rec.args.seed)}
    row.update(hyper_params(rec.args))
    for key in NUMBERS:
        row[key], row[key + "_std"], row[key + "_n"] = values[key], None, int(values[key] is not None)
    row.update({"lpips_net": values["lpips_net"], "val_step": values["val_step"], "eval_step": values["eval_step"],
                "test_views": values["test_views"], "training": rec.training, "eval": eval_status(rec),
                "path": rec.path})
    return row


def used_members(members: List[RunRecord], include_unfinished: bool = False) -> List[RunRecord]:
    """The runs a group's numbers (and paired differences) are computed over."""
    return list(members) if include_unfinished else [r for r in members if r.finished]


def group_training(members: List[RunRecord], include_unfinished: bool) -> str:
    """The group row's training cell: "finished", or which runs are unfinished and whether
    they are in the numbers."""
    unfinished = [r for r in members if not r.finished]
    if not unfinished:
        return "finished"
    names = ", ".join(f"{r.name}: {r.training}" for r in unfinished)
    return ("includes unfinished " if include_unfinished else "left out: ") + names


def group_row(label: str, members: List[RunRecord], include_unfinished: bool = False) -> Dict[str, object]:
    """One CSV row for a setting (``kind`` = group): mean, sample std and n per number, over
    the finished members (all of them with ``include_unfinished``). ``n``, ``runs`` and
    ``seeds`` are the setting's runs; ``n_used`` of them are in the numbers, ``n_left_out`` not."""
    used = used_members(members, include_unfinished)
    rows = [run_row(r) for r in used]
    row = {"kind": "group", "name": label, "runs": ";".join(r.name for r in members), "n": len(members),
           "seeds": ",".join(str(r.args.seed) for r in members), "n_used": len(used),
           "n_left_out": len(members) - len(used)}
    row.update(hyper_params(members[0].args))
    for key in NUMBERS:
        row[key], row[key + "_std"], row[key + "_n"] = mean_std(r[key] for r in rows)
    nets = {r["lpips_net"] for r in rows if r["test_lpips"] is not None}
    row["lpips_net"] = nets.pop() if len(nets) == 1 else None
    if len(nets) > 1:  # LPIPS of different backbones are different metrics: no mean
        row["test_lpips"] = row["test_lpips_std"] = None
        row["lpips_net"] = "mixed: " + ", ".join(sorted({r["lpips_net"] for r in rows if r["lpips_net"]}))
    evaluated = sum(r.has_eval for r in used)
    row.update({"val_step": None, "eval_step": None, "test_views": rows[0]["test_views"] if rows else None,
                "training": group_training(members, include_unfinished),
                "eval": "ok" if evaluated == len(used) else f"{evaluated}/{len(used)} evaluated",
                "path": ";".join(r.path for r in members)})
    return row


# ---------------------------------------------------------------- paired differences vs a reference
PAIRED_NUMBERS = (("test_psnr", "test PSNR", 2, " dB"), ("test_ssim", "test SSIM", 4, ""))


def reference_index(groups: List[Tuple[str, List[RunRecord]]], name: Optional[str] = None) -> int:
    """The reference setting: the group labelled ``name`` (--reference), else the first
    whose activation is relu (NeRF's), else the first group."""
    if name is not None:
        labels = [label for label, _ in groups]
        if name not in labels:
            raise UserError(f"--reference '{name}' is not a setting of these runs; settings: {', '.join(labels)}")
        return labels.index(name)
    return next((k for k, (_, m) in enumerate(groups) if m[0].args.activation == "relu"), 0)


def test_views_key(rec: RunRecord) -> Tuple:
    """What must be equal for two runs' test numbers to be comparable view for view: the
    scene, its background, the resolution and the evaluated view indices."""
    m = rec.metrics
    return (rec.args.dataset_type, os.path.normpath(rec.args.datadir or "."), bool(rec.args.white_bkgd),
            m.get("height"), m.get("width"), tuple(int(e["index"]) for e in m.get("per_image", [])))


def seed_values(members: List[RunRecord], key: str) -> Tuple[Dict[int, Tuple[float, RunRecord]], List[str]]:
    """{seed: (value, run)} of the evaluated runs that have ``key``; a seed twice in one
    setting keeps its first run (notes say which)."""
    values, notes = {}, []
    for r in members:
        v = run_values(r)[key] if r.has_eval else None
        if v is None:
            continue
        seed = int(r.args.seed)
        if seed in values:
            notes.append(f"seed {seed} appears twice in one setting ({values[seed][1].name}, {r.name}); "
                         f"the paired differences use {values[seed][1].name}")
            continue
        values[seed] = (float(v), r)
    return values, notes


def paired_vs_reference(members: List[RunRecord], reference: List[RunRecord], key: str) -> Tuple[Paired, List[str]]:
    """``runs.stats.paired`` of ``key`` between two settings' runs, over the seeds both have
    and that were evaluated on the same test views (other seeds: notes)."""
    mine, notes = seed_values(members, key)
    ref, ref_notes = seed_values(reference, key)
    for seed in sorted(set(mine) & set(ref)):
        if test_views_key(mine[seed][1]) != test_views_key(ref[seed][1]):
            notes.append(f"seed {seed}: {mine[seed][1].name} and {ref[seed][1].name} were evaluated on different "
                         f"test views (scene, background, size or view indices); not paired")
            del mine[seed]
    return paired({s: v for s, (v, _) in mine.items()}, {s: v for s, (v, _) in ref.items()}), notes + ref_notes


def reference_rows(groups: List[Tuple[str, List[RunRecord]]], ref: int,
                   include_unfinished: bool = False) -> Tuple[List[Dict[str, object]], List[str]]:
    """The CSV columns of each group's paired differences vs group ``ref`` (in group order), and notes."""
    ref_label, ref_members = groups[ref][0], used_members(groups[ref][1], include_unfinished)
    out, notes = [], []
    for k, (label, members) in enumerate(groups):
        cols: Dict[str, object] = {"vs_ref": "(reference)" if k == ref else ref_label}
        out.append(cols)
        if k == ref:
            continue
        used = used_members(members, include_unfinished)
        for key, _, _, _ in PAIRED_NUMBERS:
            result, why = paired_vs_reference(used, ref_members, key)
            if not used or not ref_members:
                result.verdict = "no finished run: not compared (see training)"
            notes += [f"{label} vs {ref_label}, {key}: {w}" for w in dict.fromkeys(why)]
            cols.update({f"{key}_vs_ref": result.mean, f"{key}_vs_ref_std": result.std,
                         f"{key}_vs_ref_n": result.n, f"{key}_vs_ref_seeds": ",".join(map(str, result.seeds)),
                         f"{key}_vs_ref_diffs": ";".join(repr(d) for d in result.diffs),
                         f"{key}_vs_ref_p": result.p,
                         f"{key}_vs_ref_ci_low": result.ci[0] if result.ci else None,
                         f"{key}_vs_ref_ci_high": result.ci[1] if result.ci else None,
                         f"{key}_vs_ref_verdict": result.verdict})
    return out, notes


def signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def reference_table(group_rows: List[Dict[str, object]]) -> str:
    """The Markdown table of the paired differences (one line per setting and number)."""
    ref = next(r["name"] for r in group_rows if r.get("vs_ref") == "(reference)")
    lines = []
    for row in group_rows:
        if row.get("vs_ref") in (None, "(reference)"):
            continue
        for key, title, digits, unit in PAIRED_NUMBERS:
            n, mean, std = row[f"{key}_vs_ref_n"], row[f"{key}_vs_ref"], row[f"{key}_vs_ref_std"]
            seeds, diffs = row[f"{key}_vs_ref_seeds"], row[f"{key}_vs_ref_diffs"]
            per_seed = "; ".join(f"s{s} {signed(float(d), digits)}" for s, d in
                                 zip(seeds.split(","), diffs.split(";"))) if n else "–"
            diff = "–" if mean is None else (signed(mean, digits) + unit
                                             + (f" ± {std:.{digits}f}{unit}" if std is not None else ""))
            ci = row[f"{key}_vs_ref_ci_low"]
            ci = "–" if ci is None else f"[{signed(ci, digits)}, {signed(row[f'{key}_vs_ref_ci_high'], digits)}]"
            p = row[f"{key}_vs_ref_p"]
            lines.append([row["name"], title, str(n), per_seed, diff, ci,
                          "–" if p is None else f"{p:.3g}", row[f"{key}_vs_ref_verdict"]])
    header = ["setting", "number", "n (shared seeds)", f"per seed: setting − {ref}", "mean ± std",
              "95% CI", "p (paired t)", "vs seed noise"]
    return markdown_table(header, lines)


def write_csv(path: str, rows: List[Dict[str, object]]) -> None:
    """All rows with the union of their columns; None is an empty cell, floats keep full precision."""
    from utils.io import atomic_write_text
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else repr(row[k]) if isinstance(row[k], float) else row[k])
                         for k in columns})
    atomic_write_text(path, buf.getvalue())


def fmt_number(mean, std, digits: int) -> str:
    if mean is None:
        return "n/a"
    text = f"{mean:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std is not None else "")


def fmt_seconds(mean, std) -> str:
    """Wall time in s, min or h (one unit for mean and std)."""
    if mean is None:
        return "n/a"
    unit, scale = ("s", 1.0) if mean < 120 else ("min", 60.0) if mean < 7200 else ("h", 3600.0)
    digits = 2 if mean / scale < 10 else 1
    return fmt_number(mean / scale, None if std is None else std / scale, digits) + f" {unit}"


def fmt_int(mean, std) -> str:
    if mean is None:
        return "n/a"
    return f"{int(round(mean)):,}" + (f" ± {std:,.0f}" if std else "")


def fmt_test(row, key: str, digits: int) -> str:
    """Test metric cell: "missing eval" when no member was evaluated, "n/a" when unavailable."""
    if row[key] is None:
        return "missing eval" if row["test_psnr"] is None else "n/a"
    cell = fmt_number(row[key], row[key + "_std"], digits)
    used = row.get("n_used", row["n"])
    return cell + (f" (n={row[key + '_n']})" if row["kind"] == "group" and row[key + "_n"] < used else "")


def omega_cell(row) -> str:
    if row["first_omega0"] is None:
        return "–"
    return f"{row['first_omega0']:g} / {row['omega0']:g}"


def lpips_cell(row) -> str:
    """LPIPS with its backbone, e.g. "0.1234 (vgg)"; different backbones are never averaged."""
    if row["test_lpips"] is None and str(row.get("lpips_net") or "").startswith("mixed"):
        return f"n/a ({row['lpips_net']} backbones)"
    cell = fmt_test(row, "test_lpips", 4)
    return cell + (f" ({row['lpips_net']})" if row["test_lpips"] is not None and row.get("lpips_net") else "")


def table_cells(row) -> List[str]:
    """The Markdown cells of one row (group or run), in TABLE_HEADER order."""
    siren = "–" if row["siren_init"] is None else ("yes" if row["siren_init"] else "no")
    act = row["activation"] + ("" if row["dir_activation"] == row["activation"] else f" (dirs {row['dir_activation']})")
    n = str(row["n_used"]) + (f" (+{row['n_left_out']} left out)" if row["n_left_out"] else "") \
        if row["kind"] == "group" else row["seeds"]
    cells = [row["name"], n, act, omega_cell(row), siren,
             row["act_params"] or "–", row["encoding"], f"{row['lrate']:g}", row["net"]]
    if row["kind"] == "group" and row["n_used"] == 0:  # every run of the setting left out
        return cells + ["–"] * 7 + [row["training"]]
    return cells + [fmt_int(row["n_params"], row["n_params_std"]),
                    fmt_int(row["steps"], row["steps_std"]),
                    fmt_seconds(row["train_seconds"], row["train_seconds_std"]),
                    fmt_number(row["val_psnr"], row["val_psnr_std"], 2), fmt_test(row, "test_psnr", 2),
                    fmt_test(row, "test_ssim", 4), lpips_cell(row), row["training"]]


TABLE_HEADER = ["setting", "n", "activation", "ω0 first / hidden", "SIREN init", "act. params", "encoding",
                "lrate", "net (coarse + fine)", "params", "steps", "train time", "val PSNR", "test PSNR", "test SSIM",
                "test LPIPS", "training"]


def paired_notes(reference: str) -> List[str]:
    """How the "vs reference" table is computed and what its verdict means (runs.stats)."""
    return [f"**vs reference** ({reference}; `compare.py --reference SETTING` picks another; default: the first "
            "relu setting, else the first): per seed s shared by both settings, d_s = value(setting, s) − "
            "value(reference, s), over finished runs evaluated on the same test views; mean ± sample std "
            "(ddof = 1) of the d_s and their number n.",
            "**vs seed noise**: a two-sided paired t-test on the d_s (scipy.stats, df = n − 1). "
            "\"within seed noise\" when p ≥ 0.05, i.e. the 95% confidence interval mean ± t(0.975, n−1)·std/√n "
            "contains 0; otherwise higher/lower than the reference, beyond seed noise. n = 1: \"one seed: no "
            "noise estimate\". Within seed noise means these seeds cannot tell the settings apart, not that they "
            "are equal: with 2 or 3 seeds only differences of several times the seed spread are detected "
            "(t(0.975) = 12.7 at n = 2, 4.3 at n = 3). No correction for comparing several settings."]


def report_notes(records: List[RunRecord], include_unfinished: bool = False) -> List[str]:
    """Where each number comes from, and every run whose data is incomplete."""
    notes = ["**val PSNR**: the last `val/psnr` scalar in the run's TensorBoard events "
             "(one validation view, logged every `i_img` steps during training).",
             "**test PSNR / SSIM / LPIPS**: the newest `eval_<step>/metrics.json` on the test split "
             "(eval.py, 8-bit renders; mean over the test views).",
             "**train time**: `train_seconds` of train_state.json, the wall time spent in training steps "
             "(validation renders, checkpoints and evaluation excluded).",
             "Groups are runs that differ only by seed: mean ± sample standard deviation (ddof = 1); "
             "a count (n=k) after a value means only k runs of the group have that number."]
    nets = sorted({lpips_net(r.metrics) for r in records if r.has_eval} - {None})
    if nets:
        notes.append("**LPIPS backbone**: " + ", ".join(nets) + " (metrics.json `lpips_net`; values of different "
                     "backbones are never averaged or compared).")
    unfinished = [r for r in records if not r.finished]
    if unfinished:
        notes.append(("**unfinished runs, included in their settings' numbers** (--include_unfinished): "
                      if include_unfinished else
                      "**unfinished runs, left out of their settings' numbers** (compare.py --include_unfinished "
                      "counts them): ") + "; ".join(f"{r.name} ({r.training})" for r in unfinished) + ".")
    lpips_reasons = {r.metrics.get("lpips_note") for r in records if r.has_eval and r.metrics.get("lpips") is None}
    if lpips_reasons - {None}:
        notes.append("**LPIPS n/a**: " + "; ".join(sorted(lpips_reasons - {None})) + ".")
    missing = [r.name for r in records if not r.has_eval]
    if missing:
        notes.append("**missing eval** (no test-split eval_*/metrics.json; run `python eval.py --run <run>`): "
                     + ", ".join(missing) + ".")
    for r in records:
        if r.has_eval and r.eval_note:
            notes.append(f"**{r.name}**: {r.eval_note}.")
    views = {(r.metrics["n_images"], r.metrics["width"], r.metrics["height"]) for r in records if r.has_eval}
    if views:
        notes.append("test views: " + "; ".join(f"{n} views at {w}x{h}" for n, w, h in sorted(views)) + ".")
    return notes


def build_markdown(records: List[RunRecord], group_rows, run_rows, figures: List[str],
                   extra_notes: List[str] = (), include_unfinished: bool = False) -> str:
    """The whole report.md: settings table, paired differences vs the reference setting
    (when group rows carry them: ``reference_rows``), per-run table, notes and figure links."""
    from datetime import datetime
    parts = [f"# Activation comparison\n\n{len(records)} runs, {len(group_rows)} settings "
             f"(generated by compare.py, {datetime.now():%Y-%m-%d %H:%M}).",
             "## Results (mean ± std over seeds)\n\n" + markdown_table(
                 TABLE_HEADER, [table_cells(r) for r in group_rows])]
    reference = next((r["name"] for r in group_rows if r.get("vs_ref") == "(reference)"), None)
    notes = report_notes(records, include_unfinished)
    if reference is not None:
        body = reference_table(group_rows) if len(group_rows) > 1 else "only one setting: nothing to compare."
        parts.append(f"## vs reference: {reference} (paired by seed)\n\n" + body)
        notes += paired_notes(reference)
    parts += ["## Per run\n\n" + markdown_table(
                  ["run", "seed"] + TABLE_HEADER[2:] + ["eval"], [table_cells(r) + [r["eval"]] for r in run_rows]),
              "## Notes\n\n" + "\n".join(f"- {n}" for n in notes + list(extra_notes))]
    if figures:
        parts.append("## Figures\n\n" + "\n".join(
            f if f.startswith("- ") else f"![{f}]({f})" for f in figures))
    return "\n\n".join(parts) + "\n"
