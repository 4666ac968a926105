"""Chat templates: rendering a model's Jinja chat template into the prompt text it was trained on.

This module owns the sandboxed Jinja environment (the same helpers and whitespace rules that
transformers gives a template: `raise_exception`, `strftime_now`, a `tojson` filter that keeps
non-ASCII text, `trim_blocks`/`lstrip_blocks`, loop controls and a no-op `{% generation %}` block)
and the small ChatML template we use for the embedded Qwen2.5 tokenizer. It knows nothing about
tokenizers; `inspector.tokenizer.text_tokenizer` hands it a template and the special-token strings.

Bounds. The sandbox stops escapes, not work, so rendering is bounded too: it runs in a forked child
process (where the platform can fork) with at most RENDER_SECONDS of time and RENDER_MEMORY bytes of
new memory, and the text it makes may be at most MAX_RENDERED_CHARS (plus the size of the messages).
Inside, `*` and `**` refuse results beyond those sizes before computing them, and `lipsum` and
`tojson(indent=...)` are capped. A template that goes past a bound is one InspectError line.

`jinja2` is imported lazily, inside functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

from inspector.errors import InspectError, one_line, printable

RENDER_SECONDS = 10.0
RENDER_MEMORY = 512 << 20
MAX_RENDERED_CHARS = 1 << 20

# Our own minimal template for Qwen2/Qwen2.5 instruct models: ChatML with Qwen2.5's default
# system prompt when the conversation does not start with one. (No tool calling.)
QWEN2_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
QWEN2_CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\n" + QWEN2_DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (loop.first and message['role'] == 'system') %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def check_messages(messages: Any) -> list[dict]:
    """Return `messages` if it is a list of {'role': str, 'content': ...} dicts, else raise InspectError."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InspectError("chat messages: expected a non-empty list of {'role': ..., 'content': ...} dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            raise InspectError(f"chat messages[{i}]: expected a dict with a 'role' string and 'content', got {message!r:.80}")
    return list(messages)


def render_chat_template(
    template: str | None,
    messages: list[dict],
    *,
    add_generation_prompt: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
    source: str = "chat template",
    **extra: Any,
) -> str:
    """Render `template` for `messages` the way transformers' `apply_chat_template(tokenize=False)` does.

    `extra` is passed to the template as further variables (e.g. `tools`, `enable_thinking`).
    Any failure (no template, a syntax error, `raise_exception` in the template) is one-line InspectError.
    """
    if not template:
        raise InspectError(f"{source}: no chat template (the tokenizer has none); run without chat formatting")
    messages = check_messages(messages)
    compiled = _compile(template, source)
    variables = dict(messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos_token or "",
                     eos_token=eos_token or "", **extra)
    limit = MAX_RENDERED_CHARS + len(json.dumps(variables, default=str))
    kind, text = _render_forked(compiled, variables, limit) if hasattr(os, "fork") else _render(compiled, variables, limit)
    if kind == "ok":
        return text
    raise InspectError(f"{printable(source)}: {_FAILURES.get(kind, 'chat template failed')}: {one_line(text)}")


_FAILURES = {
    "raised": "the chat template refused the messages",
    "error": "chat template failed",
    "limit": "chat template stopped",
}


def _render(compiled, variables: dict[str, Any], limit: int) -> tuple[str, str]:
    """("ok", text) or (failure kind, reason): the template rendered with its output bounded."""
    import jinja2

    try:
        parts, size = [], 0
        for piece in compiled.generate(**variables):
            size += len(piece)
            if size > limit:
                return "limit", f"it made more than {limit:,} characters of text"
            parts.append(piece)
        return "ok", "".join(parts)
    except _TemplateRaised as exc:
        return "raised", str(exc)
    except _TooBig as exc:
        return "limit", str(exc)
    except MemoryError:
        return "limit", f"it needed more than {RENDER_MEMORY >> 20} MiB of memory"
    except RecursionError:
        return "limit", "it recursed too deeply"
    except jinja2.TemplateError as exc:
        return "error", str(exc) or type(exc).__name__
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, ArithmeticError) as exc:
        return "error", f"{type(exc).__name__}: {exc}"


def _render_forked(compiled, variables: dict[str, Any], limit: int) -> tuple[str, str]:
    """`_render` in a forked child bounded in time (RENDER_SECONDS) and memory (RENDER_MEMORY)."""
    import select
    import signal
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, send (kind, text) back, exit without running any cleanup
        try:
            os.close(read_end)
            _limit_child()
            payload = json.dumps(_render(compiled, variables, limit), ensure_ascii=True).encode()
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view):]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, size, deadline = [], 0, time.monotonic() + RENDER_SECONDS
    try:
        while size <= 8 * limit + 4096:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                return "limit", f"it took longer than {RENDER_SECONDS:g} s"
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
    try:
        kind, text = json.loads(b"".join(chunks))
        return kind, text
    except (ValueError, TypeError):
        return "limit", f"it needed more than {RENDER_MEMORY >> 20} MiB of memory or crashed"


def _limit_child() -> None:
    """Cap the child's address space at what it has now plus RENDER_MEMORY, and its CPU time."""
    try:
        import resource

        with open("/proc/self/status", encoding="ascii") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = vm + RENDER_MEMORY
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        cpu = int(RENDER_SECONDS) + 2
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or cpu < hard:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    except (ImportError, OSError, ValueError, StopIteration):
        pass  # the parent's deadline still bounds the time


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


class _TemplateRaised(Exception):
    """What a template's `raise_exception(...)` raises (turned into InspectError by the caller)."""


class _TooBig(Exception):
    """An operation inside a template would make a value larger than the render limits."""


def _check_size(n: int, what: str) -> None:
    if n > MAX_RENDERED_CHARS * 8:
        raise _TooBig(f"{what} would make {n:,} items, more than the {MAX_RENDERED_CHARS * 8:,} allowed")


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    width = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    if width > 64:
        raise _TooBig(f"tojson indent {width:,} is more than 64")
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message):
    raise _TemplateRaised(message)


def _strftime_now(fmt):
    from datetime import datetime

    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=1)
def _environment():
    """The sandboxed environment transformers gives a template, with the bounds of this module."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; here it just renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        """The sandbox, with `*` and `**` refusing results beyond the render limits."""

        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context, operator, left, right):
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                        _check_size(len(seq) * max(n, 0), "repeating a value")
            elif isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
                _check_size(abs(left).bit_length() * right // 8, "a power")
            return super().call_binop(context, operator, left, right)

    # No constant is evaluated while compiling (in this process, unbounded): `optimized=False` stops
    # the optimizer's folding, a context-taking `finalize` the code generator's; `'x'|center(10**9)` is
    # then computed when rendering, in the bounded child.
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols],
                         optimized=False, finalize=jinja2.pass_context(lambda context, value: value))
    lipsum = env.globals["lipsum"]

    def bounded_lipsum(n=5, html=True, min=20, max=100):
        if not all(isinstance(v, int) and v <= 1000 for v in (n, min, max)):
            raise _TooBig("lipsum is limited to 1000 paragraphs of 1000 words")
        return lipsum(n=n, html=html, min=min, max=max)

    env.globals.update(lipsum=bounded_lipsum, raise_exception=_raise_exception, strftime_now=_strftime_now)
    env.filters["tojson"] = _tojson
    return env


@functools.lru_cache(maxsize=32)
def _compile(template: str, source: str):
    import jinja2

    try:
        return _environment().from_string(template)
    except jinja2.TemplateSyntaxError as exc:
        raise InspectError(f"{source}: chat template syntax error on line {exc.lineno}: {_one_line(exc.message or '')}") from None
    except (RecursionError, MemoryError):
        raise InspectError(f"{source}: chat template is too deeply nested to compile") from None
