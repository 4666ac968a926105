"""Options a path of `trace`, `run` or `chat` cannot honour, refused in one line instead of ignored.

The line names them and says why. `refuse` takes the options typed on the command line
(parameter name -> flag); an option left at its default is never refused. The tables say which
options each path ignores: an image trace has no tokenizer, template, decode steps, layer choice or
sampling of its own; `--seq-len` stand-in ids and the stand-ins used without a tokenizer have no chat
template; the meta device loads no weights and has no values to sample from (nor decodes stand-in
ids); greedy decoding (temperature 0) draws nothing, so top-k, top-p, min-p and the seed change
nothing. No torch here.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from inspector.errors import InspectError

IMAGE_TRACE = ("tokenizer", "chat", "decode_steps", "layers", "temperature", "top_k", "top_p", "min_p", "seed",
               "seq_len")
META = ("weights", "temperature", "top_k", "top_p", "min_p", "seed")
GREEDY_IGNORES = ("top_k", "top_p", "min_p", "seed")


def refuse(given: Mapping[str, str], names: Iterable[str], where: str) -> None:
    """One line naming every option of `names` that was given although it does not apply `where`
    (e.g. 'with --image'): an option silently ignored would read as if it had worked."""
    wrong = [given[name] for name in names if name in given]
    if wrong:
        verb, them = ("does", "it") if len(wrong) == 1 else ("do", "them")
        raise InspectError(f"{', '.join(wrong)} {verb} not apply {where}; drop {them}")


def refuse_when_greedy(given: Mapping[str, str], temperatures: Iterable[float]) -> None:
    """top-k, top-p, min-p and the seed refused when every temperature is 0."""
    if all(t == 0 for t in temperatures):
        refuse(given, GREEDY_IGNORES, "to greedy decoding (temperature 0: nothing is drawn)")
