"""Command line: ``python -m pipeline.published rossi --landing DIR``."""

from pipeline.published.cli import main

raise SystemExit(main())
