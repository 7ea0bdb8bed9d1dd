"""Entry point: ``python -m aegis_torch``."""

import sys

from aegis_torch.cli import main

sys.exit(main())
