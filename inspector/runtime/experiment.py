"""Named prompt sets, expected answers, and judging a sweep's outputs.

The one set today is the experiment of the Week 7 Report (Mu Junrong), "Introduction to LLM
inference with vLLM on Qwen models": four Qwen models, four sampling temperatures (0, 0.6, 1,
1.5), three trials each, on four prompts. `--prompts qwen-temperature-report` names it; the
accepted answers below let the report mark each output. An output is correct when it contains an
accepted answer as a whole word (case-insensitive; spaces around brackets and commas and the
Unicode minus are normalised) outside a repeat of the prompt, which is lenient: "9 ... no, 12"
counts. "Who are you?" has no
right answer and is not judged. `--expect FILE` (JSON: prompt -> list of answers, or null) gives
answers for any prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from inspector.errors import InspectError, printable


@dataclass(frozen=True)
class PromptSet:
    name: str
    title: str
    prompts: tuple[str, ...]
    expect: Mapping[str, tuple[str, ...] | None]
    temperatures: tuple[float, ...] = (0.0,)
    trials: int = 1
    max_new_tokens: int = 32
    models: tuple[str, ...] = ()  # the models the source ran; used when no -m is given


PROMPT_SETS: dict[str, PromptSet] = {
    "qwen-temperature-report": PromptSet(
        "qwen-temperature-report",
        "Week 7 Report (Mu Junrong): Qwen models at four sampling temperatures",
        ("How many positive whole-number divisors does 196 have?",
         "The capital of Singapore is",
         "Who are you?",
         "What is the range of the output of tanh?"),
        {"How many positive whole-number divisors does 196 have?": ("9", "nine"),  # 196 = 2^2 7^2: 3 x 3
         "The capital of Singapore is": ("Singapore",),  # a city-state
         "Who are you?": None,
         "What is the range of the output of tanh?": ("(-1, 1)", "-1 and 1", "-1 to 1", "-1 < y < 1")},
        temperatures=(0.0, 0.6, 1.0, 1.5), trials=3, max_new_tokens=48,
        models=("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-0.6B-Base", "Qwen/Qwen3-0.6B"),
    ),
}


def load_prompts(name_or_file: str) -> PromptSet:
    """A named set, or a text file with one prompt per non-empty line (no expected answers)."""
    if name_or_file in PROMPT_SETS:
        return PROMPT_SETS[name_or_file]
    from inspector.files import local_path, read_small_text

    if not local_path(name_or_file, "--prompts").exists():
        raise InspectError(f"--prompts {name_or_file!r}: not a prompt set (known: {', '.join(PROMPT_SETS)}) "
                           "and no such file")
    prompts = tuple(line.strip() for line in read_small_text(name_or_file, "--prompts").splitlines() if line.strip())
    if not prompts:
        raise InspectError(f"--prompts {name_or_file}: no prompts (one per line)")
    return PromptSet(name_or_file, name_or_file, prompts, {})


def load_expect(path: str, prompts: list[str]) -> dict[str, tuple[str, ...] | None]:
    """--expect FILE: a JSON object, prompt -> list of accepted answers (or null: not judged)."""
    from inspector.files import parse_json, read_small_text

    data = parse_json(read_small_text(path, "--expect"), f"--expect {printable(path)}")
    if not isinstance(data, dict):
        raise InspectError(f"--expect {path}: expected a JSON object, prompt -> list of accepted answers")
    out: dict[str, tuple[str, ...] | None] = {}
    for key, value in data.items():
        if key not in prompts:
            raise InspectError(f"--expect {path}: {key!r} is not one of the prompts")
        if value is not None and not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
            raise InspectError(f"--expect {path}: answers for {key!r} must be a non-empty list of strings or null")
        out[key] = tuple(value) if value is not None else None
    return out


def _normal(text: str) -> str:
    text = text.replace("\u2212", "-").lower()
    text = re.sub(r"([(\[])\s+", r"\1", text)  # "( -1" -> "(-1"
    text = re.sub(r"\s+([)\],])", r"\1", text)  # "1 )" -> "1)", "-1 ," -> "-1,"
    text = re.sub(r",\s*", ", ", text)
    return " ".join(text.split())


def is_correct(output: str, answers: tuple[str, ...] | None, prompt: str = "") -> bool | None:
    """True/False when the prompt has accepted answers, None when it is not judged. Where the output
    repeats the prompt ("The capital of Singapore is ..."), the repeat does not count."""
    if answers is None:
        return None
    text = _normal(output)
    if prompt.strip():
        text = text.replace(_normal(prompt), " ")
    return any(re.search(r"(?<![\w.])" + re.escape(_normal(a)) + r"(?!\w)", text) for a in answers)
