"""User-facing errors: one line, naming the file/field/flag, non-zero exit."""
import sys


class UserError(Exception):
    """Bad input from the user (config, flags, data). Printed as one line, exit 2."""


def run_cli(main) -> None:
    """Run ``main()``; a UserError becomes ``error: <message>`` on stderr and exit code 2."""
    try:
        code = main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
