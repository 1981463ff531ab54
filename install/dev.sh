#!/usr/bin/env bash
# Set up a development checkout and run something in it.
#   bash install/dev.sh demo   set up, then run the main job locally (comfyfarm demo)
#   bash install/dev.sh test   set up, then run ruff and the whole test suite
#   bash install/dev.sh setup  only set up: .venv with comfyfarm and its test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${COMFYFARM_VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "comfyfarm: creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
}

case "${1:-}" in
  setup) setup ;;
  demo)
    setup
    shift
    exec "$VENV/bin/comfyfarm" demo "$@"
    ;;
  test)
    setup
    shift
    "$VENV/bin/ruff" check .
    set +e
    "$VENV/bin/python" -m pytest "$@"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then
      echo "comfyfarm: pytest collected no test" >&2
    fi
    exit "$status"
    ;;
  *)
    echo "usage: bash install/dev.sh demo|test|setup" >&2
    exit 2
    ;;
esac
