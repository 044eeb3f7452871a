#!/usr/bin/env bash
# Create experiments/.scalesim-venv with the real SCALE-Sim 3.0.0 (PyPI `scalesim`) for
# cross-checking ttvsim's systolic model (experiments/validate_scalesim.py).
# Idempotent: an existing venv whose scalesim imports at version 3.0.0 is reused.
# Prints the venv's python path on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.scalesim-venv"
py="$venv/bin/python"
base_python="${PYTHON:-python3}"

works() {
    [[ -x "$py" ]] && "$py" - <<'PY' >/dev/null 2>&1
import importlib.metadata as md
import scalesim.scale_sim  # noqa: F401  (the API validate_scalesim.py drives)
assert md.version("scalesim") == "3.0.0"
PY
}

if ! works; then
    echo "setting up SCALE-Sim 3.0.0 in $venv" >&2
    rm -rf "$venv"
    # Debian's python3 may lack ensurepip (python3-venv); fall back to virtualenv from PyPI.
    "$base_python" -m venv "$venv" >&2 || {
        rm -rf "$venv"
        "$base_python" -m pip install --quiet virtualenv >&2
        "$base_python" -m virtualenv --quiet "$venv" >&2
    }
    "$py" -m pip install --quiet --upgrade pip >&2
    # scalesim 3.0.0 breaks with numpy >= 2.4; pin it below that.
    "$py" -m pip install --quiet "scalesim==3.0.0" "numpy<2.4" >&2
    works || { echo "error: scalesim 3.0.0 installed but does not import in $venv" >&2; exit 1; }
fi
echo "$py"
