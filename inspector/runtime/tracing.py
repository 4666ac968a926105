"""What `inspect trace` runs: a text or an image trace of a `ModelChoice`, as a `TraceOptions` record says.

A text trace (`inspector.runtime.trace.trace_prompt`) or an image trace
(`inspector.runtime.vlm_trace.trace_vlm`), both through the one `load_runtime`
(inspector.runtime.prepare). `trace_model` takes a `ModelChoice` and a `TraceOptions` record and
refuses each option typed on the command line that its path cannot honour (inspector.runtime.refusals)
in one line, before any weights load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from inspector.errors import InspectError
from inspector.runtime.prepare import ModelChoice, load_runtime
from inspector.runtime.threads import use_threads
from inspector.runtime.refusals import IMAGE_TRACE, META, refuse, refuse_when_greedy
from inspector.runtime.sampling import SamplingSettings


class LayerSet:
    """Layer numbers given as ranges: membership without a set as large as the ranges."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges

    def __contains__(self, layer: object) -> bool:
        return isinstance(layer, int) and any(lo <= layer <= hi for lo, hi in self.ranges)

    def check(self, layers: int, model: str) -> None:
        """Refuse a layer the model does not have ('all' never does)."""
        beyond = [hi for lo, hi in self.ranges if layers <= hi < 2**63]
        if beyond:
            raise InspectError(f"--layers: {model} has layers 0-{layers - 1}; there is no layer {max(beyond)}")


@dataclass(frozen=True)
class TraceOptions:
    """What to trace and how. `given` maps each option typed on the command line (its parameter name)
    to its flag, for the refusals; options left at their defaults are never refused."""

    prompts: tuple[str, ...] = ()
    seq_len: int | None = None  # trace this many stand-in ids instead of prompts
    chat: bool = False
    decode_steps: int = 0
    layers: LayerSet | None = None  # None: the default (layer 0 in full)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    image: str | None = None  # an image file (VLMs), or
    image_size: str | None = None  # a synthetic HEIGHTxWIDTH image
    given: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.image is not None or self.image_size is not None


@dataclass(frozen=True)
class ImageTrace:
    """An image trace: every step from the pixels to the logits (StepLog of inspector.image.preprocess)."""

    spec: Any  # inspector.spec.model.ModelSpec
    device: str
    log: Any  # inspector.image.preprocess.StepLog
    logits: Any  # torch.Tensor (1, n, n_v)


def trace_model(choice: ModelChoice, options: TraceOptions):
    """The TraceResult (inspector.runtime.trace) of the prompts, or with an image the ImageTrace."""
    given = options.given
    if options.is_image:
        refuse(given, IMAGE_TRACE, "to an image trace (--image, --image-size)")
    else:
        if options.seq_len is not None:
            refuse(given, ("chat",), "to --seq-len (stand-in ids have no chat template)")
        refuse_when_greedy(given, (options.sampling.temperature,))
    if choice.device == "meta":
        _refuse_on_meta(options)
    prompts = check_inputs(options.prompts, options.seq_len)
    use_threads(choice.threads)
    if options.is_image:
        return _image_trace(choice, options, prompts)
    from inspector.runtime.trace import trace_prompt

    def before_model(spec, tok) -> None:
        if options.layers is not None:
            options.layers.check(spec.text.num_layers, spec.name)
        if tok is None:
            refuse(given, ("chat",), "to stand-in ids (no tokenizer available offline)")

    rt = load_runtime(choice, before_model=before_model)
    if rt.device.type == "meta":  # --device auto without weights
        _refuse_on_meta(options)
    return trace_prompt(rt, list(prompts), options.chat, options.decode_steps, options.sampling,
                        seq_len=options.seq_len)


def _refuse_on_meta(options: TraceOptions) -> None:
    """On the meta device nothing is loaded or sampled, and stand-in ids of --seq-len are not decoded."""
    refuse(options.given, META, "on the meta device (shapes only: no weights loaded, no values to sample from)")
    if options.seq_len is not None:
        refuse(options.given, ("tokenizer",), "to --seq-len on the meta device (stand-in ids, nothing decoded)")


def check_inputs(prompts: tuple[str, ...], seq_len: int | None) -> tuple[str, ...]:
    """Prompts (at most PROMPT_BATCH, none empty) or --seq-len N, one of the two."""
    from inspector.limits import PROMPT_BATCH
    from inspector.runtime.batch import check_prompts, check_seq_len

    check_seq_len(seq_len)
    if not prompts and seq_len is None:
        raise InspectError("give a prompt (or --seq-len N to trace N stand-in ids)")
    if prompts and seq_len is not None:
        raise InspectError("give prompts or --seq-len, not both")
    if prompts:
        check_prompts(prompts)
    if len(prompts) > PROMPT_BATCH:
        raise InspectError(f"trace runs its prompts as one batch, at most {PROMPT_BATCH}; got {len(prompts):,} "
                           "(`inspect run --prompts FILE` runs a longer list in batches)")
    return prompts


def _image_trace(choice: ModelChoice, options: TraceOptions, prompts: tuple[str, ...]) -> ImageTrace:
    """One prompt and one image through the VLM: the image is read (or made) once the spec is known to
    be a VLM's, before any weights load."""
    from inspector.runtime.vlm_trace import read_image, trace_vlm

    if len(prompts) != 1:
        raise InspectError("--image traces one prompt")
    if (options.image is None) == (options.image_size is None):
        raise InspectError("give exactly one of --image FILE or --image-size HEIGHTxWIDTH")
    picture = []
    rt = load_runtime(choice, before_model=lambda spec, tok: picture.append(read_image(options.image,
                                                                                       options.image_size)),
                      image=True)
    logits, log = trace_vlm(rt.model, prompts[0], picture[0])
    return ImageTrace(rt.spec, str(rt.device), log, logits)
