"""``mlloop <command> ...``: one entry point for every tool (installed as a console script).

    mlloop up | down | status             # the embedded Airflow (mlloop_cli.airflow_local)
    mlloop parse                          # parse dags/ as Airflow does: DAG ids, import errors
    mlloop run <dag_id> [--day D]         # trigger one run, wait, print its tasks' states
    mlloop demo [--use-case N | --all]    # the whole loop on the embedded Airflow (mlloop_cli.demo)
    mlloop replay --use-case N --from D --to D   # the loop over landed history (mlloop_cli.replay)
    mlloop land <use_case> --start D --end D     # land generated raw batches (mlloop.landing)
    mlloop land-dataset <use_case> --start D --end D  # land a bundled real data set (mlloop.land_dataset)
    mlloop scaled up | down | status | demo | measure-scoring   # the scaled topology as processes

``mlloop <command> --help`` prints each command's own options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

COMMANDS: dict[str, tuple[str, bool]] = {
    # command: (module whose main(argv) runs it, whether the command's name is its first argument)
    "up": ("mlloop_cli.airflow_local", True),
    "down": ("mlloop_cli.airflow_local", True),
    "status": ("mlloop_cli.airflow_local", True),
    "parse": ("mlloop_cli.airflow_local", True),
    "run": ("mlloop_cli.airflow_local", True),
    "demo": ("mlloop_cli.demo", False),
    "replay": ("mlloop_cli.replay", False),
    "land": ("mlloop.landing", False),
    "land-dataset": ("mlloop.land_dataset", False),
    "scaled": ("mlloop_cli.scaled_local", False),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(__doc__, file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        if args and args[0] not in ("-h", "--help"):
            print(f"mlloop: unknown command {args[0]!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        return 0 if args else 2
    command, rest = args[0], args[1:]
    module, keeps_name = COMMANDS[command]
    run: Callable[[list[str]], int | None] = importlib.import_module(module).main
    return run([command, *rest] if keeps_name else rest) or 0


if __name__ == "__main__":
    sys.exit(main())
