"""Entry point: ``python -m aegis_bench``."""

import sys

from aegis_bench.cli import main

sys.exit(main())
