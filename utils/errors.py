"""User-facing errors and exit codes: one line, naming the file/field/flag, non-zero exit.

Exit codes of every script: 0 done; 2 bad input (UserError, one line on stderr);
3 training diverged (non-finite loss or weights; no non-finite checkpoint is kept);
75 interrupted by SIGINT/SIGTERM after saving a checkpoint (run the same command again
to resume: what a requeue script checks for).
"""
import os
import sys

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: "try again later"


class UserError(Exception):
    """Bad input from the user (config, flags, data). Printed as one line, exit 2."""
    exit_code = EXIT_USER_ERROR


class Diverged(UserError):
    """Training produced a non-finite loss or weights. Printed as one line, exit 3."""
    exit_code = EXIT_DIVERGED


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def run_cli(main) -> None:
    """Run ``main()``; a UserError becomes ``error: <message>`` on stderr and its exit code."""
    try:
        code = main()
    except UserError as err:
        if os.environ.get("RANK", "0") == "0":  # torchrun: one line from rank 0, not one per process
            print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    sys.exit(code or 0)
