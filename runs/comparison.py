"""compare.py's run logic: evaluate runs that lack an evaluation (eval.py as a subprocess),
then write report.md, summary.csv and the figures (runs/figures.py) of a set of runs.

The numbers (settings grouped over seeds, paired differences vs a reference setting,
per-run rows) come from runs/report.py and runs/stats.py; compare.py's doc lists the files.
"""
import glob
import os
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

from runs.figures import write_figures
from runs.layout import checkpoint_step, eval_dirs, latest_checkpoint
from runs.report import (RunRecord, build_markdown, group_runs, group_row, load_config, load_run, reference_index,
                         reference_rows, run_row, write_csv)
from utils.errors import UserError
from utils.io import atomic_write_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository: eval.py


# ---------------------------------------------------------------- evaluation of missing runs
def latest_ckpt_step(run_dir: str) -> Optional[int]:
    path = latest_checkpoint(run_dir)
    return checkpoint_step(path) if path else None


def needs_eval(run_dir: str) -> bool:
    """True when the run has a checkpoint but no test evaluation of its newest one."""
    step = latest_ckpt_step(run_dir)
    return step is not None and all(s != step for s, _ in eval_dirs(run_dir))


def ensure_evals(run_dirs: Sequence[str], eval_args: Sequence[str] = ()) -> List[str]:
    """Run ``eval.py --run`` (subprocess) where an evaluation is missing; return the failed runs."""
    failed = []
    for run in run_dirs:
        if not needs_eval(run):
            continue
        cmd = [sys.executable, os.path.join(ROOT, "eval.py"), "--run", run, *eval_args]
        print(f"evaluating {run}: {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd).returncode != 0:
            print(f"warning: eval.py failed for {run}; the report marks it (eval failed)", file=sys.stderr)
            failed.append(run)
    return failed


# ---------------------------------------------------------------- the whole comparison
def mark_failed_evals(records: List[RunRecord], failed: List[str]) -> None:
    for rec in records:
        if rec.path in failed:
            rec.eval_note = "eval failed" if not rec.has_eval else rec.eval_note + " (eval.py failed)"


def compare(run_dirs: Sequence[str], out: str, no_eval: bool = False, crop=None, max_views: int = 8,
            eval_args: Sequence[str] = (), include_unfinished: bool = False, reference: Optional[str] = None) -> int:
    """Write the comparison of ``run_dirs`` into ``out``; 1 when an evaluation failed, else 0."""
    if not run_dirs:
        raise UserError("no run directories to compare")
    configs = [load_config(run) for run in run_dirs]  # every argument is a run, before any work
    if reference is not None:  # a wrong --reference fails before any evaluation
        reference_index(group_runs([RunRecord(run, os.path.basename(os.path.normpath(run)), args)
                                    for run, args in zip(run_dirs, configs)]), reference)
    failed = [] if no_eval else ensure_evals(run_dirs, eval_args)
    records = [load_run(run) for run in run_dirs]
    mark_failed_evals(records, failed)
    groups = group_runs(records)
    ref = reference_index(groups, reference)
    group_rows = [group_row(label, m, include_unfinished) for label, m in groups]
    run_rows = [run_row(r) for r in records]
    paired_columns, paired_notes = reference_rows(groups, ref, include_unfinished)
    for row, columns in zip(group_rows, paired_columns):
        row.update(columns)
    os.makedirs(out, exist_ok=True)
    write_csv(os.path.join(out, "summary.csv"), run_rows + group_rows)
    figures, notes = write_figures(records, groups, out, crop, max_views)
    report = build_markdown(records, group_rows, run_rows, figures, paired_notes + notes, include_unfinished)
    atomic_write_text(os.path.join(out, "report.md"), report)
    print(report.split("## Per run")[0].rstrip())
    for note in notes:
        print("note:", note)
    n_views = len(glob.glob(os.path.join(out, "views", "[0-9][0-9][0-9].png")))
    print(f"wrote into {out}: report.md, summary.csv, psnr_curves.png"
          + (f", views/ ({n_views} images)" if n_views else "")
          + (", side_by_side.gif" if "side_by_side.gif" in figures else ""))
    return 1 if failed else 0


def unique_runs(run_dirs: Sequence[str]) -> List[str]:
    """``run_dirs`` without repeats of one folder (by ``os.path.realpath``: 'a', 'a/', './a' and a
    symlink to it are one run), each dropped repeat printed as a note: a run counts once."""
    first: Dict[str, str] = {}
    for run in run_dirs:
        real = os.path.realpath(run)
        if real in first:
            print(f"note: '{run}' is the same run as '{first[real]}'; counted once")
        else:
            first[real] = run
    return list(first.values())
