"""Command line: ``python -m pipeline.synth --people 3000 --seed 42``."""

from pipeline.synth.cli import main

raise SystemExit(main())
