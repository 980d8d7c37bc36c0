#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs golongrl with its test, verl and trl extras.
# torch is pinned to 2.13.0 (CPU build) through constraints.txt for this machine only: the package
# itself declares a range, so a GPU image keeps the torch its engines were built for.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=.venv/.golongrl-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing torch==2.13.0 (CPU build) and golongrl[test,verl,trl]"
  "${PIP[@]}" install -q -c constraints.txt torch==2.13.0
  "${PIP[@]}" install -q -c constraints.txt -e ".[test,verl,trl]"
  echo "$want" > "$stamp"
fi
.venv/bin/python -c "import torch, sys; assert torch.__version__.startswith('2.13.0'), torch.__version__; print('[setup] torch', torch.__version__, 'python', sys.version.split()[0])"
