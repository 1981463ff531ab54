#!/usr/bin/env bash
# Install or upgrade comfyfarm on this machine, for one role:
#   bash install/install.sh workstation [--prefix DIR] [--dry-run]   Flame hook, comfyfarm, the comfyfarm command
#   bash install/install.sh repository --repository DIR [--dry-run]  the Deadline plugin and event plugin
#   bash install/install.sh worker [--python PY] [--dry-run]         the runtime in ComfyUI's Python, GPU check
# Every option: bash install/install.sh --help. Undo with install/uninstall.sh ROLE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/python.sh"
find_python
if [ "$#" -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  exec "$PYTHON" -E -s "$here/run_installer.py" install --help
fi
exec "$PYTHON" -E -s "$here/run_installer.py" install "$@"
