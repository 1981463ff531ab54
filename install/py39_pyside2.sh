#!/usr/bin/env bash
# A short second tier of `bash install/dev.sh test`: the Flame-side tests (dialogs, hook, selection and export) under Python 3.9 and PySide2,
# what Flame 2023 and 2024 run. The main tier runs them under the newest Python and PySide6.
#
# Skips, saying why and exiting 0, when no Python 3.9 is found or PySide2 cannot be installed (no network, no
# wheel for this platform). PySide2 5.15 is built against NumPy 1, so NumPy stays below 2 (and OpenImageIO
# at a release that takes NumPy 1), as in Flame 2023/2024's Python.
#   COMFYFARM_PY39=/path/to/python3.9       the interpreter (default: python3.9 on PATH, else pyenv's)
#   COMFYFARM_PY39_VENV=/path/to/venv       where its venv lives (default: $TMPDIR/comfyfarm-py39-pyside2)
set -uo pipefail
cd "$(dirname "$0")/.."

skip() { echo "comfyfarm: Python 3.9 + PySide2 tier skipped: $*"; exit 0; }

is_py39() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 9))' >/dev/null 2>&1; }
python=""
# A pyenv shim for python3.9 may not run (another version is pyenv's global): its versions are beside shims/.
shim=$(command -v python3.9 || true)
pyenv_versions=${shim:+$(dirname "$(dirname "$shim")")/versions}
for candidate in ${COMFYFARM_PY39:-} "$shim" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.9*/bin/python3.9 \
                 ${pyenv_versions:+"$pyenv_versions"/3.9*/bin/python3.9}; do
  if [ -n "$candidate" ] && is_py39 "$candidate"; then python=$candidate; break; fi
  [ -n "${COMFYFARM_PY39:-}" ] && break  # the one asked for, or none
done
[ -n "$python" ] || skip "no working python3.9 found (set COMFYFARM_PY39)"

venv=${COMFYFARM_PY39_VENV:-${TMPDIR:-/tmp}/comfyfarm-py39-pyside2}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || skip "cannot create a venv with $python"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "PySide2>=5.15,<5.16" "numpy<2" \
  "OpenImageIO<3.1" "requests>=2.25" "websocket-client>=1.6" "PyYAML>=5.4" "pytest>=7" "pytest-timeout>=2.1" \
  "aiohttp>=3.8" || skip "PySide2 and the test dependencies could not be installed"

export QT_QPA_PLATFORM=offscreen COMFYFARM_QT_BINDING=PySide2
export PYTHONPATH="$PWD"  # absolute: the farm tests start Worker processes elsewhere
binding=$("$venv/bin/python" -c "import flame_submitter.dialog.qt_compat as q; print(q.QT_BINDING)") \
  || skip "PySide2 does not load here (missing system libraries?)"
[ "$binding" = PySide2 ] || { echo "comfyfarm: qt_compat chose $binding, not PySide2" >&2; exit 1; }

echo "comfyfarm: Flame-side tests under $("$venv/bin/python" --version 2>&1) and PySide2"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/flame_submitter/dialog tests/flame_submitter/test_hook_menu.py tests/flame_submitter/test_flame_relink_hook.py \
  tests/flame_submitter/test_flame_media.py tests/flame_submitter/test_flame_segments.py \
  tests/flame_submitter/test_flame_submit.py tests/flame_submitter/test_settings_model.py \
  tests/flame_submitter/test_config.py "$@"
