"""``python -m pipeline.research``: regenerate docs/data_dictionary.md from the YAML."""

import sys

from pipeline.research.dictionary import main

sys.exit(main())
