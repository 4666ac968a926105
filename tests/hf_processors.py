"""transformers' own processors, built offline from their classes with the published settings.

A processor needs a tokenizer only for its special tokens: `tiny_tokenizer` is a word-level
tokenizer holding them, so the count of image tokens the processor inserts is the processor's own.
Each `count_*` function runs the processor on a blank image of height x width and returns the
number of image tokens and of each marker token in the ids it produced (PIL image processors; this
machine has no torchvision).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from typing import Any

from PIL import Image

WORDS = {"<unk>": 0, "<s>": 1, "</s>": 2, "hello": 3, "\n": 4, "\n\n": 5}


def tiny_tokenizer(specials: list[str], **named: str):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(dict(WORDS), unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    t = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                extra_special_tokens=named)
    t.add_special_tokens({"additional_special_tokens": specials})
    return t


def _counts(processor, text: str, height: int, width: int, tokens: list[str], **kw: Any) -> dict[str, int]:
    out = processor(text=[text], images=[[Image.new("RGB", (width, height))]], return_tensors="np", **kw)
    ids = out["input_ids"][0].tolist()
    tok = processor.tokenizer
    return {t: ids.count(tok.convert_tokens_to_ids(t)) for t in tokens} | {"_out": out}


def count_gemma3(pre: dict, height: int, width: int, pan_and_scan: bool = False) -> dict[str, int]:
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil
    from transformers.models.gemma3.processing_gemma3 import Gemma3Processor

    tok = tiny_tokenizer(["<start_of_image>", "<end_of_image>", "<image_soft_token>"], boi_token="<start_of_image>",
                         eoi_token="<end_of_image>", image_token="<image_soft_token>")
    ip = Gemma3ImageProcessorPil(size=pre["size"], image_mean=pre["image_mean"], image_std=pre["image_std"])
    p = Gemma3Processor(image_processor=ip, tokenizer=tok, image_seq_length=pre["image_seq_length"])
    return _counts(p, "<start_of_image>", height, width, ["<image_soft_token>", "<start_of_image>", "<end_of_image>"],
                   do_pan_and_scan=pan_and_scan)


def _shell(cls, **attrs: Any):
    """A processor object without __init__ (whose video processor needs torchvision): only the image
    methods that read these attributes are called."""
    obj = cls.__new__(cls)
    obj.__dict__.update(attrs)
    return obj


def count_llava_onevision(cfg: dict, pre: dict, height: int, width: int) -> dict[str, int]:
    from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
        LlavaOnevisionImageProcessorPil,
    )
    from transformers.models.llava_onevision.processing_llava_onevision import LlavaOnevisionProcessor

    ip = LlavaOnevisionImageProcessorPil(size=pre["size"], image_grid_pinpoints=pre["image_grid_pinpoints"],
                                         image_mean=pre["image_mean"], image_std=pre["image_std"])
    out = ip(images=[Image.new("RGB", (width, height))], return_tensors="np")
    side = cfg["vision_config"]["image_size"] // cfg["vision_config"]["patch_size"]
    p = _shell(LlavaOnevisionProcessor, image_processor=ip, num_image_tokens=side * side, image_token="<image>",
               vision_feature_select_strategy=cfg["vision_feature_select_strategy"],
               vision_aspect_ratio=cfg["vision_aspect_ratio"])
    inputs = {"batch_num_images": [1], "image_sizes": out["image_sizes"], "pixel_values": out["pixel_values"]}
    return {"<image>": p.replace_image_token(inputs, 0).count("<image>"), "_out": out}


def count_idefics3(pre: dict, image_seq_len: int, height: int, width: int) -> dict[str, int]:
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.idefics3.processing_idefics3 import Idefics3Processor

    tok = tiny_tokenizer(["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
                         + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)])
    ip = Idefics3ImageProcessorPil(size=pre["size"], max_image_size=pre["max_image_size"],
                                   do_image_splitting=pre["do_image_splitting"])
    p = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=image_seq_len)
    rowcol = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    counts = _counts(p, "<image>", height, width, ["<image>", "<fake_token_around_image>", "<global-img>", *rowcol])
    counts["<row_r_col_c>"] = sum(counts.pop(t) for t in rowcol)
    return counts


def count_mllama(pre: dict, height: int, width: int) -> dict[str, int]:
    from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil
    from transformers.models.mllama.processing_mllama import MllamaProcessor

    tok = tiny_tokenizer(["<|image|>", "<|python_tag|>"])
    ip = MllamaImageProcessorPil(size=pre["size"], max_image_tiles=pre["max_image_tiles"])
    p = MllamaProcessor(image_processor=ip, tokenizer=tok)
    counts = _counts(p, "<|image|>", height, width, ["<|image|>"])
    counts["tiles"] = int(counts["_out"]["aspect_ratio_mask"][0][0].sum())
    return counts


def count_pixtral(pre: dict, spatial_merge: int, height: int, width: int) -> dict[str, int]:
    from transformers.models.pixtral.image_processing_pil_pixtral import PixtralImageProcessorPil

    with torchvision_stand_in():
        from transformers.models.pixtral.processing_pixtral import PixtralProcessor

    tok = tiny_tokenizer(["[IMG]", "[IMG_BREAK]", "[IMG_END]"])
    ip = PixtralImageProcessorPil(size=pre["size"], patch_size=pre["patch_size"])
    p = PixtralProcessor(image_processor=ip, tokenizer=tok, patch_size=pre["patch_size"]["height"],
                         spatial_merge_size=spatial_merge)
    return _counts(p, "[IMG]", height, width, ["[IMG]", "[IMG_BREAK]", "[IMG_END]"])


def count_internvl(pre: dict, height: int, width: int) -> dict[str, int]:
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
    from transformers.models.internvl.processing_internvl import InternVLProcessor

    ip = GotOcr2ImageProcessorPil(size=pre["size"], min_patches=pre["min_patches"], max_patches=pre["max_patches"])
    kwargs = dict(InternVLProcessor.images_kwargs) if hasattr(InternVLProcessor, "images_kwargs") else {}
    out = ip(images=[Image.new("RGB", (width, height))], return_tensors="np", **kwargs)
    p = _shell(InternVLProcessor, image_seq_length=256, start_image_token="<img>", end_image_token="</img>",
               image_token="<IMG_CONTEXT>")
    text = p.replace_image_token({"num_patches": out["num_patches"]}, 0)
    return {t: text.count(t) for t in ("<IMG_CONTEXT>", "<img>", "</img>")} | {"_out": out}


@contextlib.contextmanager
def torchvision_stand_in():
    """Some processor modules import torchvision at the top for resizing, which this machine lacks;
    the functions used here do not need it. Stand-in modules let them import, and go away at once."""
    stubs = ("torchvision", "torchvision.transforms", "torchvision.transforms.v2", "torchvision.transforms.v2.functional")
    added = []
    if importlib.util.find_spec("torchvision") is None:
        for name in stubs:
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        sys.modules["torchvision.transforms.v2"].functional = sys.modules["torchvision.transforms.v2.functional"]
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]


def llama4_functions():
    """Llama 4's image-processor module (its canvas choice is plain torch) and its processor."""
    from transformers.image_utils import SizeDict
    from transformers.models.llama4.processing_llama4 import Llama4Processor

    with torchvision_stand_in():  # imported as a module file: the package's lazy loader would refuse it
        ip = importlib.import_module("transformers.models.llama4.image_processing_llama4")
    return ip, SizeDict, Llama4Processor


def count_llama4(pre: dict, pixel_shuffle_ratio: float, patch: int, height: int, width: int) -> dict[str, int]:
    """The tokens Llama4Processor writes for the canvas Llama4ImageProcessor's get_best_fit chooses."""
    ip, SizeDict, Llama4Processor = llama4_functions()
    tile = pre["size"]["height"]
    resolutions = ip.find_supported_resolutions(pre["max_patches"], SizeDict(height=tile, width=tile))
    import torch

    best = ip.get_best_fit((height, width), torch.tensor(resolutions), pre["resize_to_max_canvas"])
    ratio = (int(best[0]) // tile, int(best[1]) // tile)
    processor = Llama4Processor.__new__(Llama4Processor)  # only its prompt builder is used
    per_chunk = int((tile // patch) * (tile // patch) // int(round(1 / pixel_shuffle_ratio ** 2)))
    text = Llama4Processor._prompt_split_image(processor, ratio, per_chunk)
    marks = ["<|patch|>", "<|image_start|>", "<|tile_x_separator|>", "<|tile_y_separator|>", "<|image|>",
             "<|image_end|>"]
    return {m: text.count(m) for m in marks} | {"canvas": (int(best[0]), int(best[1]))}
