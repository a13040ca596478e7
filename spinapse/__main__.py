from spinapse.cli import main

raise SystemExit(main())
