# Sourced by install.sh and uninstall.sh: sets PYTHON to a Python 3.9+ to run the installer with:
# $COMFYFARM_INSTALL_PYTHON, else python3, else the newest Flame Python (a Flame workstation's python3 can be older).
find_python() {
  local candidate
  for candidate in "${COMFYFARM_INSTALL_PYTHON:-}" python3 $(ls -d /opt/Autodesk/python/*/bin/python3 2>/dev/null | sort -rV); do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      PYTHON=$candidate
      return 0
    fi
  done
  echo "comfyfarm: no Python 3.9 or later found: install one, or set COMFYFARM_INSTALL_PYTHON" >&2
  exit 1
}
