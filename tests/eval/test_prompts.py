"""``soundgen eval prompts``: evaluation prompts from a dataset's own captions, held-out splits first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sg_testdata import write_labelled_dataset
from soundgen.cli.main import main
from soundgen.eval.generation_eval import PromptFileError, prompts_from_dataset, read_prompts


def test_prompts_come_from_held_out_captions_first(tmp_path: Path) -> None:
    clips = write_labelled_dataset(tmp_path / "ds", {"train": 6, "test": 2})  # test holds tone and noise only
    rows = prompts_from_dataset(tmp_path / "ds", per_category=2)
    assert [r["category"] for r in rows] == ["click", "click", "noise", "tone"]
    by_split = {(c.split, c.category): c.caption for c in clips}
    assert {"prompt": by_split[("test", "tone")], "category": "tone", "split": "test"} in rows
    assert {r["split"] for r in rows if r["category"] == "click"} == {"train"}
    with pytest.raises(PromptFileError, match="no captions of door"):
        prompts_from_dataset(tmp_path / "ds", labels=["tone", "door"])

    out = tmp_path / "prompts.jsonl"
    assert main(["eval", "prompts", "--data", str(tmp_path / "ds"), "--out", str(out)]) == 0
    specs = read_prompts(out)
    assert [s.category for s in specs] == ["click", "noise", "tone"]
    assert all(json.loads(line)["prompt"] for line in out.read_text().splitlines())
