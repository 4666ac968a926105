"""Reports of `run` and `chat`: prefill timing, generations, the sweep summary, beam steps, conversation turns.

The per-layer timing of a prefill and where its time goes, the measured prefill and decode step beside
the roofline of this machine, the generations (model x prompt x temperature x
trial, with correct or not), the sweep summary (accuracy and distinct outputs per model and temperature), the
steps of a beam search, and the turns of a conversation with their KV-cache reuse. Only cells here; render
lays them out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from inspector.generations import Generation, ModelRun
from inspector.reports.render import Report, Section
from inspector.reports.trace import routing_data, routing_section, shape_text, step_json
from inspector.steps import Record
from inspector.units import plural

CUT = " […]"  # shown after a reply that the token limit cut (the live stream, the table and md Reply column)
GEN_FIELDS = ["model", "prompt", "temperature", "trial", "seed", "text", "correct", "tokens", "stop", "batch",
              "prompt_tokens", "prefill_tokens_per_s", "decode_tokens_per_s"]


def layer_timing_rows(records: list[Record]) -> list[list[str]]:
    """Top-level modules (embedding, each layer, final norm, head) with shapes and times."""
    rows = []
    for r in records:
        if r.name in ("embed", "norm", "lm_head", "rope") or (r.layer is not None and r.name == f"layers.{r.layer}"):
            rows.append([r.name, r.module, shape_text(r.shapes), r.dtype, f"{(r.seconds or 0) * 1000:.3f}"])
    return rows


def dominant(records: list[Record], top: int = 5) -> list[tuple[str, float]]:
    """Where the time goes, by kind of module summed over layers (attention, MLP, head, ...)."""
    kinds: dict[str, float] = {}
    for r in records:
        if r.seconds is None:
            continue
        rel = r.name.split(".", 2)[2] if r.layer is not None and r.name.count(".") >= 2 else r.name
        if rel in ("attn", "mlp", "attn_norm", "mlp_norm", "embed", "norm", "lm_head"):
            kinds[rel] = kinds.get(rel, 0.0) + r.seconds
    return sorted(kinds.items(), key=lambda kv: -kv[1])[:top]


def _prefill_sections(run: ModelRun) -> list[Section]:
    records = run.records
    total = sum(r.seconds or 0 for r in records if r.layer is None or r.name == f"layers.{r.layer}")
    sections = [Section(f"Prefill of {plural(len(run.prompt_ids), 'token')}, layer by layer ({run.timing_method})",
                        ["Module", "Type", "Output shape", "Dtype", "Time (ms)"], layer_timing_rows(records))]
    dom = dominant(records)
    if dom:
        sections.append(Section("Where the prefill time goes (summed over layers)", ["Part", "Time (ms)", "Share"],
                                [[k, f"{v * 1000:.2f}", f"{100 * v / total:.0f}%" if total else ""] for k, v in dom]))
    return sections


def output_text(g: Generation, eos_text: str = "") -> str:
    if g.text or not g.stopped_at_once:
        return g.text
    return f"(stopped at once: {eos_text or 'end of sequence'})"


def _mark(correct: bool | None) -> str:
    return "" if correct is None else ("yes" if correct else "no")


@dataclass
class Summary:
    model: str
    temperature: float
    correct: int
    judged: int
    distinct: dict[str, int] = field(default_factory=dict)  # prompt -> distinct outputs among the trials


def summarize(generations: list[Generation]) -> list[Summary]:
    """Per model and temperature: correct / judged outputs, and distinct outputs per prompt."""
    out: dict[tuple[str, float], Summary] = {}
    texts: dict[tuple[str, float, str], set[str]] = {}
    for g in generations:
        key = (g.model, g.temperature)
        s = out.setdefault(key, Summary(*key, 0, 0))
        if g.correct is not None:
            s.judged += 1
            s.correct += int(g.correct)
        texts.setdefault((*key, g.prompt), set()).add(g.text)
    for (model, temperature, prompt), seen in texts.items():
        out[(model, temperature)].distinct[prompt] = len(seen)
    return list(out.values())


def _summary_section(gens: list[Generation]) -> Section:
    prompts = list(dict.fromkeys(g.prompt for g in gens))
    rows = []
    for s in summarize(gens):
        acc = f"{s.correct}/{s.judged} ({100 * s.correct / s.judged:.0f}%)" if s.judged else "not judged"
        rows.append([s.model, s.temperature, acc, ", ".join(str(s.distinct.get(p, 0)) for p in prompts)])
    trials = max(g.trial for g in gens)
    return Section("Summary: accuracy and distinct outputs", ["Model", "Temperature", "Correct",
                                                              f"Distinct outputs of {trials} trials, per prompt"],
                   rows, notes=["prompts in order: " + " | ".join(prompts),
                                "temperature 0 is greedy: every trial gives the same output (1 distinct)"])


def run_report(runs: list[ModelRun], prompt_set: str = "") -> Report:
    """Per model: the timed prefill (when measured) and the first batch's prefill and decode step beside this
    machine's roofline (when predicted; why not, as a note), then the generations of all models, then a
    summary when there is more than one trial, temperature, model or any expected answer."""
    sections: list[Section] = []
    for run in runs:
        if run.records:
            sections.extend(_prefill_sections(run))
    gens = [g for run in runs for g in run.generations]
    eos_text = {run.model: run.eos_text for run in runs}
    several = len(runs) > 1
    unpredicted = []
    for run in runs:
        if run.roofline.get("prefill"):
            sections.append(roofline_section(run.roofline, f", {run.model}" if several else ""))
        elif run.roofline:
            unpredicted.append(f"{run.model}: {run.roofline['status']}" if several else run.roofline["status"])
    judged = any(g.correct is not None for g in gens)
    headers = [*(["Model"] if several else []), "Prompt", "Temperature", "Trial", "Output",
               *(["Correct"] if judged else []), "New tokens", "Prefill tok/s", "Decode tok/s", "Stop"]
    rows = [[*([g.model] if several else []), g.prompt, g.temperature, g.trial,
             output_text(g, eos_text.get(g.model, "")), *([_mark(g.correct)] if judged else []),
             g.tokens, f"{g.prefill_tokens_per_s:.1f}", _decode_rate(g), g.stop]
            for g in gens]
    batch = max((g.batch for g in gens), default=1)
    notes = [_batch_note(batch, len({g.prompt for g in gens}))] if batch > 1 else []
    sections.append(Section("Generations", headers, rows, notes=notes))
    sweep = several or judged or len({(g.temperature, g.trial) for g in gens}) > 1
    if sweep:
        sections.append(_summary_section(gens))
    for run in runs:
        if run.routing:
            pads = " (with several prompts, the left padding is routed too)" if batch > 1 else ""
            of = f", {run.model}" if several else ""
            sections.append(routing_section(run.routing, "Expert choices during generation, per MoE layer (the prompt "
                                                         f"and every new token){pads}{of}"))
    data: dict[str, Any] = {"runs": [_run_json(run) for run in runs], "generations": [asdict(g) for g in gens]}
    if prompt_set:
        data["prompt_set"] = prompt_set
    if len(runs) == 1:  # the single-model keys of earlier versions stay at the top
        data = {**_run_json(runs[0]), **data}
    if sweep:
        data["summary"] = [s.__dict__ for s in summarize(gens)]
    csv_rows = [[getattr(g, k) for k in GEN_FIELDS] for g in gens]
    return Report(sections, data, csv_headers=GEN_FIELDS, csv_rows=csv_rows, notes=unpredicted)


def roofline_section(r: dict[str, Any], of: str = "") -> Section:
    """The first batch's prefill and decode step: measured, predicted by this machine's roofline, the
    bound, measured / predicted and the share of the roofline achieved (predicted / measured)."""
    m, pre, dec = r["machine"], r["prefill"], r["decode"]
    rows = [[f"prefill, {pre['batch']} × {plural(pre['tokens'], 'token')}", *_versus(pre)],
            [f"decode step, {pre['batch']} × 1 token at context {dec['context']:,}", *_versus(dec)]]
    notes = [
        f"predicted = max(FLOPs / {m['matmul_gflops']:.1f} GFLOP/s, bytes / {m['copy_gb_s']:.1f} GB/s), the FLOPs "
        f"ledger's (inspect flops) in {m['dtype']}: the prefill computes the logits at the last position only, "
        f"reads the weights once and writes the KV cache ({pre['flops']:,.0f} FLOPs, {pre['bytes']:,.0f} bytes); "
        f"a decode step reads the weights once and each row's KV cache at the mean context of the "
        f"{plural(dec['steps'], 'step')} timed ({dec['flops']:,.0f} FLOPs, {dec['bytes']:,.0f} bytes)",
        f"measured: {r['measured']}",
        "of the roofline: predicted / measured, the share of this machine's achieved peak (an MFU for a "
        "compute-bound step, an MBU for a memory-bound one)",
        f"status: {r['status']}; {m['how']}",
        "--no-predict leaves the prediction out (measuring the machine takes about 0.3 s)"]
    return Section(f"Measured beside the roofline of this machine{of} ({m['device']}, {m['dtype']}: copy "
                   f"{m['copy_gb_s']:.1f} GB/s, matmul {m['matmul_gflops']:.1f} GFLOP/s)",
                   ["Step", "Measured (ms)", "Predicted (ms)", "Bound", "Measured / predicted", "Of the roofline"],
                   rows, notes=notes)


def _versus(step: dict[str, Any]) -> list[str]:
    """Measured ms, predicted ms, bound, measured / predicted, predicted / measured (dashes where nothing
    was measured: no decode step ran)."""
    dash = "—"
    measured = f"{step['measured_ms']:.2f}" if step["measured_ms"] is not None else dash
    ratio = f"{step['measured_over_predicted']:.2f}" if step["measured_over_predicted"] is not None else dash
    share = f"{100 * step['of_roofline']:.0f}%" if step["of_roofline"] is not None else dash
    return [measured, f"{step['predicted_ms']:.2f}", step["bound"], ratio, share]


def _run_json(run: ModelRun) -> dict[str, Any]:
    out: dict[str, Any] = {"model": run.model, "device": run.device, "dtype": run.dtype, "threads": run.threads}
    if run.routing:
        out["routing"] = routing_data(run.routing)
    if run.roofline:
        out["roofline"] = run.roofline
    if run.records:
        out.update({"tokens": run.prompt_ids, "timing": run.timing_method,
                    "layers": [step_json(r) for r in run.records
                               if r.name in ("embed", "norm", "lm_head") or r.name == f"layers.{r.layer}"],
                    "dominant": [{"part": k, "seconds": v} for k, v in dominant(run.records)]})
    return out


# --------------------------------------------------------------------------- beam search


def beam_report(model: str, prompt: str, result, tok, num_beams: int, length_penalty: float,
                early_stopping: bool | str, show_steps: int = 8) -> Report:
    """The best hypotheses, then each step: the (K, n_v) candidates, the kept beams, the finished ones."""
    def text(ids: list[int]) -> str:
        return tok.decode(ids, skip_special_tokens=True)

    hyps = [[i + 1, text(ids), len(ids), f"{score:.4f}"] for i, (ids, score) in enumerate(result.hypotheses)]
    sections = [Section(f"Beam search of {model}: {num_beams} beams, length penalty {length_penalty:g}, "
                        f"early stopping {early_stopping}", ["Rank", "Output", "New tokens", "Score"], hyps,
                        notes=["score = sum of log-probabilities / (new tokens) ** length_penalty"])]
    rows = []
    for st in result.steps[:show_steps]:
        kept = [f"beam {b} <- beam {p} + {t} {tok.decode([t])!r}: {lp:.4f}" for b, (p, t, lp) in enumerate(st.kept)]
        done = [f"ends: beam {p} + {t} {tok.decode([t])!r}, score {s:.4f}" for p, t, s in st.finished]
        rows.append([st.step, f"{st.candidates}", kept + done])
    more = len(result.steps) - show_steps
    sections.append(Section("Beam steps: candidates, kept beams and cumulative log-probabilities",
                            ["Step", "Candidate scores (K, n_v)", "Kept beams (cumulative log p)"], rows,
                            notes=[f"{more} more steps in the JSON output"] if more > 0 else []))
    data = {"model": model, "prompt": prompt, "num_beams": num_beams, "length_penalty": length_penalty,
            "early_stopping": early_stopping, "best": {"tokens": result.tokens, "text": text(result.tokens),
                                                       "score": result.score},
            "hypotheses": [{"tokens": ids, "text": text(ids), "score": s} for ids, s in result.hypotheses],
            "steps": [{"step": st.step, "candidates": list(st.candidates),
                       "kept": [{"parent": p, "token": t, "logprob": lp} for p, t, lp in st.kept],
                       "finished": [{"parent": p, "token": t, "score": s} for p, t, s in st.finished]}
                      for st in result.steps],
            "prefill_s": result.prefill_s, "decode_s": result.decode_s}
    return Report(sections, data)


# --------------------------------------------------------------------------- chat


def chat_report(model: str, turns, checks: list[bool] | None = None) -> Report:
    """One row per turn: the reply, the prompt tokens reused from the KV cache and computed, the cache."""
    headers = ["Turn", "User", "Reply", "Prompt tokens", "Reused", "Computed", "Cache length", "Time (s)"]
    rows = [[i + 1, t.user, t.reply + (CUT if t.cut else ""), t.prompt_tokens, t.reused, t.computed, t.cache_length,
             f"{t.seconds:.2f}"] for i, t in enumerate(turns)]
    if checks is not None:
        headers.append("Same as from scratch")
        for row, ok in zip(rows, checks):
            row.append("yes" if ok else "NO")
    data = {"model": model, "turns": [{**t.__dict__, **({"same_as_from_scratch": checks[i]} if checks else {})}
                                      for i, t in enumerate(turns)]}
    return Report([Section(f"Conversation with {model} (KV cache kept between turns)", headers, rows)], data)


def _batch_note(batch: int, prompts: int) -> str:
    """How the generations were batched (runtime.run.generate_all): several temperature x trial runs share
    a batch when the prompts leave room for them."""
    rates = "tokens/s are the batch's (every row's tokens)"
    if batch == prompts:
        return f"all {batch} prompts run as one left-padded batch per temperature and trial; {rates}"
    if batch < prompts:
        return f"the prompts run as left-padded batches of {batch} per temperature and trial; {rates}"
    return (f"all {prompts} {'prompt' if prompts == 1 else 'prompts'} run {batch // prompts} times (temperatures x "
            f"trials) in one left-padded batch of {batch} rows, each run sampled with its own seeded generator; {rates}")


def _decode_rate(g: Generation) -> str:
    """The decode rate, or a dash when no token came from a decode step (one new token at most:
    the first comes from the prefill, so there is no rate to show)."""
    return f"{g.decode_tokens_per_s:.1f}" if g.tokens > 1 else "—"
