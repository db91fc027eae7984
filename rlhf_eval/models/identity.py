"""Model identity: a fingerprint of the weights, so cached answers never outlive them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rlhf_common.model_aliases import cache_home

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def weights_fingerprint(source: str, config) -> str:
    """sha256 of a local directory's weight files, or the hub commit a model was loaded at."""
    path = Path(source)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix in WEIGHT_SUFFIXES and f.is_file())
        if files:
            return "sha256-" + hash_files(files)[:16]
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return f"{source}@{commit}"
    return f"{source}@unversioned"


def hash_files(files: list[Path]) -> str:
    """Hash file contents, remembering results by (path, size, mtime): weights are large."""
    memo_path = cache_home() / "weight_hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    key = json.dumps([[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    if key not in memo:
        digest = hashlib.sha256()
        for f in files:
            with f.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
        memo[key] = digest.hexdigest()
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        memo_path.write_text(json.dumps(memo))
    return memo[key]
