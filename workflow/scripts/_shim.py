"""What every workflow script shares: its output goes to the rule's log file, and a bad
input's one-line message (celllm.errors.InputError) also reaches the terminal."""

import logging
import sys
import traceback


def log_to_file(snakemake) -> None:
    """Send stdout, stderr and logging of this job to the rule's `log:` file."""
    if snakemake.log:
        terminal = sys.stderr
        handle = open(snakemake.log[0], "w", buffering=1)
        sys.stdout = sys.stderr = handle

        def report(kind, error, trace):
            traceback.print_exception(kind, error, trace)  # the whole story, in the log
            from celllm.errors import InputError

            if isinstance(error, InputError):  # what the user must fix, where they look
                print(f"{snakemake.rule}: {error}", file=terminal, flush=True)

        sys.excepthook = report
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
