import sys

from flux_core.cli import main

sys.exit(main())
