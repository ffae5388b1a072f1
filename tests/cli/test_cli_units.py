"""Server-free tests of the CLI building blocks: safe extraction, output, progress, prompts."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import tarfile

import pytest

from tinkex.checkpoint_download import (
    DownloadError,
    UnsafeArchiveError,
    safe_extract_tar,
    safe_join,
)
from tinkex.cli._context import CommandError
from tinkex.cli._output import Output, Table, emit, format_size, render_table, to_jsonable
from tinkex.cli._progress import ProgressBar, format_rate
from tinkex.cli.sample import read_prompt


def _tar(path: str, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def test_safe_extract_writes_regular_files(tmp_path):
    archive = _tar(
        str(tmp_path / "ok.tar"),
        [(_file("adapter_config.json"), b"{}"), (_file("sub/adapter_model.safetensors"), b"xy")],
    )
    out = tmp_path / "out"
    out.mkdir()
    files = safe_extract_tar(archive, str(out))
    expected = ["adapter_config.json", os.path.join("sub", "adapter_model.safetensors")]
    assert sorted(files) == expected
    assert (out / "sub" / "adapter_model.safetensors").read_bytes() == b"xy"


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt", "..", "C:/x"])
def test_safe_extract_rejects_path_traversal(tmp_path, name):
    archive = _tar(str(tmp_path / "bad.tar"), [(_file("fine.txt"), b"1"), (_file(name), b"2")])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError):
        safe_extract_tar(archive, str(out))
    # Validation happens before anything is written.
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_safe_extract_rejects_links_and_devices(tmp_path, kind):
    link = _file("link")
    link.type = kind
    link.linkname = "/etc/passwd"
    archive = _tar(str(tmp_path / "bad.tar"), [(link, None)])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match="only files and directories"):
        safe_extract_tar(archive, str(out))


def test_safe_extract_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(DownloadError, match="not a valid tar"):
        safe_extract_tar(str(bad), str(tmp_path))


def test_safe_join_through_symlinked_directory_is_rejected(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError):
        safe_join(str(root), "escape/file")
    assert safe_join(str(root), "a/b.txt") == str(root / "a" / "b.txt")


def test_render_table_aligns_columns():
    text = render_table(Table(["A", "Long header"], [["x", "1"], ["longer cell", "22"]]))
    lines = text.splitlines()
    assert lines[0].startswith("A            Long header")
    assert lines[3].startswith("longer cell  22")
    assert "(none)" in render_table(Table(["A"], []))


def test_to_jsonable_handles_sdk_values():
    import attrs

    @attrs.frozen
    class Thing:
        name: str
        when: dt.datetime
        tags: tuple[str, ...]

    value = Thing("a", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC), ("x",))
    assert to_jsonable({"t": [value]}) == {
        "t": [{"name": "a", "when": "2025-01-02 03:04:05+00:00", "tags": ["x"]}]
    }
    out = io.StringIO()
    emit(Output({"k": value}, text="ignored in json"), "json", out)
    assert json.loads(out.getvalue())["k"]["name"] == "a"


def test_formatters():
    assert format_size(None) == "-"
    assert format_size(512) == "512 B"
    assert format_size(1536) == "1.5 KB"
    assert format_rate(4123.0) == "4.1k"


def test_progress_bar_in_a_pipe_prints_plain_lines():
    stream = io.StringIO()
    with ProgressBar(4, label="train", unit="steps", stream=stream) as bar:
        for _ in range(4):
            bar.update(1, loss="0.5")
    text = stream.getvalue()
    assert "\r" not in text
    assert text.strip().splitlines()[-1].startswith("train [########################] 4/4 steps")
    assert "loss 0.5" in text


def test_read_prompt_variants(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text("[72, 105]")
    text = tmp_path / "text.txt"
    text.write_text("[not json] hello")
    ns = argparse.Namespace
    assert read_prompt(ns(prompt="hi", prompt_file=None)) == "hi"
    assert read_prompt(ns(prompt=None, prompt_file=str(tokens))) == [72, 105]
    assert read_prompt(ns(prompt=None, prompt_file=str(text))) == "[not json] hello"
    with pytest.raises(CommandError, match="not both"):
        read_prompt(ns(prompt="x", prompt_file=str(text)))
    with pytest.raises(CommandError, match="no prompt"):
        read_prompt(ns(prompt=None, prompt_file=None))
    bad = tmp_path / "bad.json"
    bad.write_text('[1, "a"]')
    with pytest.raises(CommandError, match="integer token ids"):
        read_prompt(ns(prompt=None, prompt_file=str(bad)))
    with pytest.raises(CommandError, match="cannot read"):
        read_prompt(ns(prompt=None, prompt_file=str(tmp_path / "missing.txt")))


def test_progress_bar_shows_an_eta_until_done(monkeypatch):
    import tinkex.cli._progress as progress

    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    bar = ProgressBar(4, label="train", unit="steps", stream=stream, log_interval=1e9)
    now[0] = 110.0
    bar.update(1)  # 1 of 4 after 10 s: 30 s left
    assert bar.render().endswith("1/4 steps 0:10 ETA 0:30")
    now[0] = 130.0
    bar.update(3)  # done: no ETA, just the elapsed time
    assert bar.render().endswith("4/4 steps 0:30")
    assert ProgressBar(None, stream=stream).eta() is None  # unknown total: no ETA


def test_demo_samples_table_fits_100_columns_and_explains_its_cells(capsys):
    from tinkex.demo import EMPTY_CELL, Example, print_side_by_side

    examples = [
        Example("Q: " + "a very long question that does not fit " * 3 + "\nA:", " Answer."),
        Example("Q: Short?\nA:", " Yes."),
    ]
    base = ["\x00\x01 noise 砾砾砾砾砾砾砾砾砾砾砾砾 " * 4, ""]
    tuned = [" Answer.", " No."]
    correct = print_side_by_side(examples, base, tuned)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert correct == 1
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert lines[0].split() == ["prompt", "expected", "base", "model", "fine-tuned", "match"]
    assert EMPTY_CELL in lines[3]  # the empty base answer is marked, not a blank cell
    assert "砾" not in out  # wide characters would break the columns
    legend = "\n".join(lines[4:])
    assert f"{EMPTY_CELL}:" in legend and "\u00b7:" in legend and "\u2026:" in legend
    assert lines[2].rstrip().endswith("yes") and lines[3].rstrip().endswith("no")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("non_negative_int", "x", "expected an integer, got 'x'"),
        ("non_negative_int", "-1", "must be >= 0, got -1"),
        ("positive_int", "0", "must be >= 1, got 0"),
        ("positive_float", "x", "expected a number, got 'x'"),
        ("positive_float", "0", "must be > 0, got 0"),
        ("non_negative_float", "x", "expected a number, got 'x'"),
        ("non_negative_float", "-0.5", "must be >= 0, got -0.5"),
        ("non_negative_float", "nan", "must be >= 0, got nan"),
    ],
)
def test_number_option_types_say_what_they_expected(name, text, message):
    import re

    from tinkex.cli import _parsers

    parse = getattr(_parsers, name)
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{re.escape(message)}$"):
        parse(text)


def test_number_option_types_accept_their_range():
    from tinkex.cli._parsers import (
        non_negative_float,
        non_negative_int,
        positive_float,
        positive_int,
    )

    assert (non_negative_int("0"), positive_int("3")) == (0, 3)
    assert (positive_float("0.5"), non_negative_float("0")) == (0.5, 0.0)
