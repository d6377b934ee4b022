"""Model directories on disk: example prompts."""

from __future__ import annotations

from pathlib import Path

from soundgen.model_files import read_example_prompts, write_example_prompts


def test_example_prompts_file_is_validated(tmp_path: Path) -> None:
    assert read_example_prompts(tmp_path) is None
    write_example_prompts(tmp_path, ["a steady tone", "rain"])
    assert read_example_prompts(tmp_path) == ["a steady tone", "rain"]
    for bad in ("not json", '{"example_prompts": [1, 2]}', '["a"]', '{"example_prompts": [" "]}'):
        (tmp_path / "prompts.json").write_text(bad)
        assert read_example_prompts(tmp_path) is None
