from pipeline.provider_tools.cli import main

raise SystemExit(main())
