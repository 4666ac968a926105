"""A Hub repo's safetensors tensors one at a time, each fetched by an HTTP range read of its own bytes.

The headers come from inspector.checkpoint.hub (range reads, validated by the hardened parser, cached
per commit); every later read names that commit, so the bytes are those the headers describe. Each
shard's header is read once more (one range read of 8 + N bytes) for the tensors' data offsets, which
the headers record leaves out. `get(name)` reads exactly the tensor's bytes (a server that ignores
Range is cut off after them) and returns a torch tensor: memory holds one tensor, never a shard.
Requests follow inspector.hub's rules (bounded retries, deadlines); failures are one line naming the
repo. Needs torch.
"""

from __future__ import annotations

import json

import torch

from inspector.checkpoint.hub import fetch_hub_headers
from inspector.checkpoint.safetensors import header_length
from inspector.checkpoint.tensors import TensorSource
from inspector.errors import InspectError, printable
from inspector.hub import hub_get, with_retries

# safetensors dtype names -> torch dtypes (huggingface/safetensors, safetensors/src/tensor.rs, enum Dtype)
TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                "BOOL": torch.bool}


class HubSafetensorsSource(TensorSource):
    """Tensors of a Hub repo's safetensors checkpoint, read one by one over HTTP."""

    def __init__(self, repo_id: str, revision: str | None = None) -> None:
        self.repo_id = repo_id
        self.headers, stats = fetch_hub_headers(repo_id, revision)
        self.revision = stats.commit or revision
        self._offsets: dict[str, dict[str, tuple[int, int]]] = {}  # shard -> tensor -> absolute [begin, end)

    def names(self) -> set[str]:
        return set(self.headers.tensors)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.headers.tensors[name].shape

    def _read(self, filename: str, begin: int, end: int) -> tuple[bytes, int | None]:
        doing = f"reading bytes {begin}-{end - 1} of {filename}"
        answer = with_retries(self.repo_id, doing, lambda: hub_get(self.repo_id, filename, self.revision,
                                                                   limit=end - begin, first=begin, last=end - 1))
        data = answer.body[begin - answer.start:end - answer.start]
        if len(data) != end - begin:
            raise InspectError(f"{printable(self.repo_id)}: {doing}: the Hub sent {len(data)} of {end - begin} bytes")
        return data, answer.size

    def _shard_offsets(self, filename: str) -> dict[str, tuple[int, int]]:
        if filename not in self._offsets:
            prefix, size = self._read(filename, 0, 8)
            label = f"{printable(self.repo_id)}: {filename}"
            n = header_length(prefix, size if size is not None else 2**63, label)
            raw, _ = self._read(filename, 8, 8 + n)
            try:
                entries = json.loads(raw)
                self._offsets[filename] = {k: (8 + n + int(v["data_offsets"][0]), 8 + n + int(v["data_offsets"][1]))
                                           for k, v in entries.items() if k != "__metadata__"}
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                raise InspectError(f"{label}: the header changed since it was read (its data offsets "
                                   "cannot be read now)") from None
        return self._offsets[filename]

    def get(self, name: str) -> torch.Tensor:
        info = self.headers.tensors[name]
        begin, end = self._shard_offsets(info.file).get(name, (0, -1))
        if end - begin != info.nbytes or info.dtype not in TORCH_DTYPES:
            raise InspectError(f"{printable(self.repo_id)}: {info.file}: tensor {printable(name)!r} cannot be read "
                               f"as {info.dtype} {list(info.shape)} (the file changed, or the dtype is not readable)")
        data, _ = self._read(info.file, begin, end)
        if not data:
            return torch.zeros(info.shape, dtype=TORCH_DTYPES[info.dtype])
        return torch.frombuffer(bytearray(data), dtype=TORCH_DTYPES[info.dtype]).reshape(info.shape)

