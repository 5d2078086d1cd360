"""``python -m pipeline``: see pipeline/cli.py (the same command line as ``stalking-eval``)."""

from pipeline.cli import main

raise SystemExit(main(prog="python -m pipeline"))
