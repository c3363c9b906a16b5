from .wrapper import main

raise SystemExit(main())
