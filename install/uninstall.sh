#!/usr/bin/env bash
# Remove what install/install.sh put on this machine for one role, and put back what it replaced:
#   bash install/uninstall.sh workstation|repository|worker [--prefix DIR] [--dry-run]
# Files changed by hand since the installation are kept, and named.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/python.sh"
find_python
if [ "$#" -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  exec "$PYTHON" -E -s "$here/run_installer.py" uninstall --help
fi
exec "$PYTHON" -E -s "$here/run_installer.py" uninstall "$@"
