"""The trainer's VisualDL tags live in one table (``seghw.train.observers.tags``); the docs' table
names exactly those, and a real run writes exactly those."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from seghw.train.observers import tags

DOC = Path(__file__).resolve().parents[1] / "docs" / "trainer.md"


def _doc_rows() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## VisualDL tags"):]
    section = section[: section.index("\n\n", section.index("| tag |"))]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| tag ")]


def _documented() -> set[str]:
    """The tag names in the first column of the docs' table."""
    names = set()
    for row in _doc_rows():
        names |= set(re.findall(r"`([A-Za-z_]+(?:/[A-Za-z_*]+)?)`", row.split(" | ")[0]))
    return names


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def test_every_tag_of_the_table_is_documented():
    documented = _documented()
    for tag in tags.TAGS:
        if tag.kind == "hparams":
            assert any(row.startswith("| hparams") for row in _doc_rows())
            continue
        assert any(_matches(d, tag.name) for d in documented), f"{tag.name} is not in docs/trainer.md's table"


def test_the_docs_name_no_tag_the_trainer_does_not_write():
    names = [t.name for t in tags.TAGS]
    for doc_name in _documented():
        assert any(_matches(doc_name, n) for n in names), f"docs/trainer.md names {doc_name}, which no tag is"


def test_the_guides_seven_tags_come_first_with_their_exact_names():
    guide = ["Loss/Train", "Loss/Validation", "Learning_Rate", "Model/Gradient_Norm", "Model/Parameter_Norm",
             "Model/Total_Parameters", "Time/Epoch_Duration"]
    assert [t.name for t in tags.TAGS[:7]] == guide


def test_a_run_writes_every_tag_of_the_table(tmp_path):
    """A tiny real run: every scalar, image and histogram of the table is in its records file."""
    from trainer_helpers import TINY, only_run, run_seghw, vdl_steps

    root = tmp_path / "models"
    run_seghw(["train", *TINY, "--epochs", "1", "--log-root", str(root)], tmp_path / "cache", check=True)
    written = set(vdl_steps(only_run(root)))
    needs_large_crops = {"Metrics/MS_SSIM", "Metrics/Score"}  # 176 px and more; this run has 32
    for tag in tags.TAGS:
        if tag.kind in ("scalar", "image", "histogram") and tag.name not in needs_large_crops:
            assert any(_matches(w, tag.name) for w in written), f"{tag.name} was not written"
    for name in written:
        assert any(_matches(name, t.name) for t in tags.TAGS), f"{name} is written but not in the table"
