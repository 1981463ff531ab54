#!/usr/bin/env bash
# Set up a development checkout and run something in it.
#   bash install/dev.sh demo   set up, then run the main job locally (comfyfarm demo); with no ComfyUI configured,
#                              first set one up in .comfyui (install/comfyui_setup.py: its environment variables)
#   bash install/dev.sh test   set up, then run ruff, mypy, the import contracts and the whole test suite (with no
#                              arguments, also the Flame-side tests under Python 3.9 and PySide2: install/py39_pyside2.sh)
#   bash install/dev.sh setup  only set up: .venv with comfyfarm and its test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${COMFYFARM_VENV:-.venv}

# Qt (PySide6, for the dialog tests, offscreen) loads these system libraries; install them where missing.
QT_LIBRARIES="libEGL.so.1:libegl1 libGL.so.1:libgl1 libglib-2.0.so.0:libglib2.0-0 libfontconfig.so.1:libfontconfig1 libfreetype.so.6:libfreetype6 libxkbcommon.so.0:libxkbcommon0"

system_packages() {
  missing=""
  ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
  for pair in $QT_LIBRARIES; do
    "$ldconfig" -p 2>/dev/null | grep -q "${pair%%:*}" || missing="$missing ${pair##*:}"
  done
  ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 || missing="$missing fonts-dejavu-core"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "comfyfarm: installing system packages for Qt:$missing"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
      echo "comfyfarm: Qt's offscreen tests need these system packages:$missing (install them, or the dialog tests fail)" >&2
    fi
  fi
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "comfyfarm: creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  # pip again only when what it installs from changed (pyproject.toml, the venv's Python): it takes seconds
  stamp="$VENV/.comfyfarm-dev-setup"
  wanted="$(cksum < pyproject.toml) $("$VENV/bin/python" --version 2>&1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || [ ! -x "$VENV/bin/comfyfarm" ]; then
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
    echo "$wanted" > "$stamp"
  fi
}

# Whether the demo has a ComfyUI of the user's: --comfyui-dir or --comfyui-url among its arguments, or
# comfyui_dir / comfyui_url from the environment or the config files, resolved by comfyfarm itself.
comfyui_configured() {
  for arg in "$@"; do
    case "$arg" in --comfyui-dir|--comfyui-dir=*|--comfyui-url|--comfyui-url=*) return 0 ;; esac
  done
  set +e
  "$VENV/bin/python" -c '
import sys
from flame_submitter.config import ConfigError, load_config
try:
    config = load_config()
except ConfigError:
    sys.exit(0)  # configured, but wrongly: comfyfarm demo says what is wrong and how to fix it
sys.exit(0 if config.comfyui_dir or config.comfyui_urls else 10)'
  found=$?
  set -e
  case "$found" in
    0) return 0 ;;
    10) return 1 ;;
    *) echo "comfyfarm: could not read the configuration with $VENV/bin/python (exit status $found)" >&2; exit "$found" ;;
  esac
}

demo() {
  if comfyui_configured "$@"; then
    exec "$VENV/bin/comfyfarm" demo "$@"
  fi
  echo "comfyfarm: no ComfyUI is configured (COMFYUI_DIR or COMFYUI_URL, or comfyui_dir: in the config file): the" \
    "demo uses one of its own, set up once" >&2
  comfyui=$("$VENV/bin/python" install/comfyui_setup.py) || exit $?
  COMFYUI_PYTHON="$comfyui/venv/bin/python" exec "$VENV/bin/comfyfarm" demo --comfyui-dir "$comfyui" "$@"
}

case "${1:-}" in
  setup) setup ;;
  demo)
    setup
    shift
    demo "$@"
    ;;
  test)
    system_packages
    setup
    shift
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"          # [tool.mypy] in pyproject.toml: farm_plugin and flame_submitter, for Python 3.9
    "$VENV/bin/lint-imports"  # [tool.importlinter]: layers, no cycles, Qt and flame where they belong
    set +e
    "$VENV/bin/python" -m pytest "$@"
    status=$?
    if [ "$status" -eq 5 ]; then
      echo "comfyfarm: pytest collected no test" >&2
    fi
    tier=0
    if [ "$#" -eq 0 ]; then  # the whole suite: also the Flame-side tests under Python 3.9 and PySide2
      bash install/py39_pyside2.sh
      tier=$?
    fi
    set -e
    exit $(( status != 0 ? status : tier ))
    ;;
  *)
    echo "usage: bash install/dev.sh demo|test|setup" >&2
    exit 2
    ;;
esac
