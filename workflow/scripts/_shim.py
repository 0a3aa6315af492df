"""What every workflow script shares: its output goes to the rule's log file."""

import logging
import sys


def log_to_file(snakemake) -> None:
    """Send stdout, stderr and logging of this job to the rule's `log:` file."""
    if snakemake.log:
        handle = open(snakemake.log[0], "w", buffering=1)
        sys.stdout = sys.stderr = handle
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
