# Sourced by scripts/test and scripts/demo: make (or reuse) the project's virtual environment.
# Needs only python3 (>= 3.11) with pip and venv. HALNAV_VENV overrides the location.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${HALNAV_VENV:-$here/.venv}"
extra="${1:-}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "halnav needs Python >= 3.11 (found: $("$py" --version 2>&1)); set PYTHON=/path/to/python3.11+" >&2
  exit 2
fi
stamp="$venv/.halnav-installed$extra"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
# Reinstall when pyproject.toml changed since the last install.
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here$extra"
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
cd "$here"
