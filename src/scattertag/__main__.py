"""``python -m scattertag``: the same program as the ``scattertag`` command."""

import sys

from scattertag.cli import main

sys.exit(main())
