"""`python -m celllm` is the `celllm` command."""

import sys

from celllm.cli import main

sys.exit(main())
