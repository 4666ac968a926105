"""Chat templates: rendering a model's Jinja chat template into the prompt text it was trained on.

This module owns the sandboxed Jinja environment (the same helpers and whitespace rules that
transformers gives a template: `raise_exception`, `strftime_now`, a `tojson` filter that keeps
non-ASCII text, `trim_blocks`/`lstrip_blocks`, loop controls and a no-op `{% generation %}` block)
and the small ChatML template we use for the embedded Qwen2.5 tokenizer. It knows nothing about
tokenizers; `inspector.tokenizer.text_tokenizer` hands it a template and the special-token strings.

`jinja2` is imported lazily, inside functions, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from inspector.errors import InspectError

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
    import jinja2

    compiled = _compile(template, source)
    try:
        return compiled.render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token or "",
            eos_token=eos_token or "",
            **extra,
        )
    except _TemplateRaised as exc:
        raise InspectError(f"{source}: the chat template refused the messages: {_one_line(str(exc))}") from None
    except jinja2.TemplateError as exc:
        raise InspectError(f"{source}: chat template failed: {_one_line(str(exc))}") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise InspectError(f"{source}: chat template failed: {type(exc).__name__}: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


class _TemplateRaised(Exception):
    """What a template's `raise_exception(...)` raises (turned into InspectError by the caller)."""


@functools.lru_cache(maxsize=32)
def _compile(template: str, source: str):
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _GenerationBlock(Extension):
        """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; here it just renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise _TemplateRaised(message)

    def strftime_now(fmt):
        from datetime import datetime

        return datetime.now().strftime(fmt)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as exc:
        raise InspectError(f"{source}: chat template syntax error on line {exc.lineno}: {_one_line(exc.message or '')}") from None
