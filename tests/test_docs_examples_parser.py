"""The docs checker itself (tests/docs_examples.py): what it reads as a command, its output and its
exit code, and what its comparison ignores and what it does not."""

from __future__ import annotations

from docs_examples import normalize, parse, run

PAGE = '''# A page

```console
$ A=$(echo /opt/pkg/file.gguf)
$ echo one \\
  two
one two
$ false  # exit 1
```

```console timings
$ inspect params x --format md
```

<!-- output -->
| a | 1.25 |
<!-- /output -->

```bash
not a command
```
'''


def test_commands_outputs_exit_codes_and_regions(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    examples = parse(page)
    assert [e.command for e in examples] == ["A=$(echo /opt/pkg/file.gguf)", "echo one two", "false",
                                             "inspect params x --format md"]
    assert [e.exit_code for e in examples] == [0, 0, 1, 0]
    assert examples[1].shown == "one two\n" and examples[2].shown == ""
    assert examples[3].shown == "| a | 1.25 |\n" and {"md", "timings"} <= examples[3].flags
    assert PAGE.count("\n", 0, examples[3].span[0]) == 15  # the region's first line


def test_runs_in_a_directory_with_the_fixtures(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    echo = parse(page)[1]
    assert run(echo, {}, tmp_path) == (0, "one two\n")
    assert (tmp_path / "fixtures").is_symlink()


def test_comparison_ignores_padding_and_package_directories_only():
    variables = {"A": "/opt/pkg/file.gguf"}
    flags = frozenset()
    assert normalize("| x   | 1 |\n|-----|---|\n", flags, variables) == normalize("| x | 1 |\n|---|---|", flags, variables)
    assert normalize("read /opt/pkg/file.gguf", flags, variables) == "read file.gguf"
    assert normalize("| x | 12 |", flags, variables) != normalize("| x | 13 |", flags, variables)
    assert normalize("took 1.25 s, 40%", frozenset({"timings"}), {}) == normalize("took 3.5 s, 7%", frozenset({"timings"}), {})
    assert normalize("took 1.25 s", flags, {}) != normalize("took 3.5 s", flags, {})


def test_shipped_fixture_checkpoints_are_what_the_builder_writes():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "fixtures" / "build.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_comparison_ignores_machines_versions_and_measured_order_only():
    import sys

    flags, timings = frozenset(), frozenset({"timings"})
    here = f"{sys.prefix}/lib/python3.11/site-packages/pkg/file.gguf"
    assert normalize(f"read {here}", flags, {}) == normalize("read /usr/lib/python3.11/site-packages/pkg/file.gguf"
                                                             .replace("/usr", sys.prefix), flags, {})
    assert "<python>" in normalize(f"read {here}", flags, {})
    assert normalize("from transformers 5.25 on meta", flags, {}) == normalize("from transformers 5.23 on meta", flags, {})
    assert normalize("wrote a.html (43,410 bytes, html)", flags, {}) == normalize("wrote a.html (43,400 bytes, html)", flags, {})
    assert normalize("wrote a.html (43,410 bytes, html)", flags, {}) != normalize("wrote b.html (43,410 bytes, html)", flags, {})
    table = "| Module | ms |\n|---|---|\n| mlp | 1.5 |\n| attn | 0.5 |\n"
    swapped = "| Module | ms |\n|---|---|\n| attn | 0.7 |\n| mlp | 1.1 |\n"
    assert normalize(table, timings, {}) == normalize(swapped, timings, {})
    assert normalize(table, flags, {}) != normalize(swapped, flags, {})  # order counts outside timings
    other = "| Module | ms |\n|---|---|\n| attn | 0.7 |\n| norm | 1.1 |\n"
    assert normalize(table, timings, {}) != normalize(other, timings, {})  # the rows themselves still count


def test_timings_ignore_where_a_note_wraps_and_number_widths_not_the_words():
    """A terminal wraps a note line at a width that depends on the digits of its measured numbers, and pads
    a table's columns to its widest number: in a timings block neither counts; every word still does."""
    timings = frozenset({"timings"})
    shown = ("bench x: measured\n┏━━━┳━━━━━━┓\n┃ B ┃ ms   ┃\n┡━━━╇━━━━━━┩\n│ 1 │ 57.6 │\n└───┴──────┘\n"
             "  • roofline: copy 45.9 GB/s; best of up to\n5 runs after a warm-up\n  • peak memory: RSS\n")
    real = ("bench x: measured\n┏━━━┳━━━━━━━┓\n┃ B ┃ ms    ┃\n┡━━━╇━━━━━━━┩\n│ 1 │ 157.6 │\n└───┴───────┘\n"
            "  • roofline: copy 5.9 GB/s; best of up to 5\nruns after a warm-up\n  • peak memory: RSS\n")
    assert normalize(shown, timings, {}) == normalize(real, timings, {})
    assert normalize(shown, frozenset(), {}) != normalize(real, frozenset(), {})  # outside timings, lines count
    for changed in (real.replace("up to 5", "up to 6"), real.replace("after a", "before a"),
                    real.replace("runs after", "after runs"), real.replace("• peak memory: RSS\n", ""),
                    real.replace("│ 1 │", "│ 2 │")):
        assert normalize(shown, timings, {}) != normalize(changed, timings, {})
    # a wrapped note does not run into a table, nor across a blank line
    assert normalize("a\n| x |\nb\n", timings, {}) != normalize("a b\n| x |\n", timings, {})
    assert normalize("a\n\nb\n", timings, {}) != normalize("a b\n", timings, {})
