"""What install.sh and uninstall.sh run: ``python3 install/run_installer.py install|uninstall ROLE [options]``.

comfyfarm's installer (install/comfyfarm_install) uses only the standard library and the checkout it comes
in, so that it runs on a machine where nothing else is installed yet.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[0:0] = [str(HERE), str(HERE.parent)]  # the installer, then this checkout's farm_plugin

from comfyfarm_install.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
