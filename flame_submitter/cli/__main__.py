"""``python -m flame_submitter.cli``: the ``comfyfarm`` command."""

import sys

from flame_submitter.cli.main import main

sys.exit(main())
