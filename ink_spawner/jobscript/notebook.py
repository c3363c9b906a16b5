"""Run a notebook unattended as a batch job's command (papermill), as the user:

    python -m ink_spawner.jobscript.notebook NOTEBOOK EXECUTED [--parameters JSON]

The parameters are injected after the cell tagged ``parameters`` (papermill's convention), or
at the top. The executed copy, with every output, is written to EXECUTED (beside the job's
logs) also when a cell fails; the failing cell is named on stderr and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ink-notebook")
    parser.add_argument("notebook")
    parser.add_argument("executed")
    parser.add_argument("--parameters", default="{}", help="a JSON object: name -> value")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    import nbformat
    import papermill
    from papermill.exceptions import PapermillException, PapermillExecutionError

    print(f"ink: running {args.notebook} with {parameters or 'no parameters'}", flush=True)
    try:
        # the notebook's own kernel (an experiment's, through JUPYTER_PATH), else Python's
        spec = nbformat.read(args.notebook, as_version=4).metadata.get("kernelspec") or {}
        papermill.execute_notebook(
            args.notebook,
            args.executed,
            kernel_name=spec.get("name") or "python3",
            parameters=parameters,
            cwd=os.path.dirname(os.path.abspath(args.notebook)),
            progress_bar=False,
            log_output=True,  # the cells' output in the job's stdout.log as it comes
        )
    except PapermillExecutionError as e:
        print(
            f"ink: the notebook failed in cell {e.cell_index + 1} (In [{e.exec_count}]): {e.ename}: {e.evalue}"
            f"\nink: the executed notebook, with the traceback, is {args.executed}",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError, PapermillException) as e:
        print(f"ink: cannot run {args.notebook}: {e}", file=sys.stderr)
        return 2
    print(f"ink: executed notebook written to {args.executed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
