"""Malformed question sets are rejected with the file, the item and the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.questions import QuestionSetError, load_labelled_question_sets, load_question_set, question_files

GOOD = '{"id": "ok-1", "question": "DSの年収は？", "expected_sections": ["data_scientist#主な業務"]}\n'


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "where", "field"),
    [
        ('{"id": "bad-1", "question": "x", "expected_section": ["a#b"]}', "line 2 (id 'bad-1')", "expected_section: unknown field"),
        ('{"id": "bad-2", "expected_sections": ["a#b"]}', "line 2 (id 'bad-2')", "question: required field is missing"),
        ('{"id": "bad-3", "question": "x", "expected_sections": "a#b"}', "line 2 (id 'bad-3')", "expected_sections:"),
        ('{"id": "bad-4", "question": "x", "out_of_scope": "maybe"}', "line 2 (id 'bad-4')", "out_of_scope:"),
        ('{"id": "bad-5", "question": "x"}', "line 2 (id 'bad-5')", "needs expected_sections or expected_text"),
        ('{"id": "bad-6", "question": "   ", "out_of_scope": true}', "line 2 (id 'bad-6')", "question: is blank"),
        ('{"id": "bad-7", "question": "x", "turns": [""], "out_of_scope": true}', "line 2 (id 'bad-7')", "turns: contains a blank"),
        ('{"id": "ok-1", "question": "x", "out_of_scope": true}', "line 2 (id 'ok-1')", "duplicate id 'ok-1'"),
        ('{"id": "bad-9", "question": "x",', "line 2", "invalid JSON"),
        ('["not", "an", "object"]', "line 2", "a question must be an object"),
    ],
)
def test_malformed_jsonl_names_file_item_and_field(tmp_path: Path, line: str, where: str, field: str) -> None:
    path = _write(tmp_path, "bad.jsonl", GOOD + line + "\n")
    with pytest.raises(QuestionSetError) as info:
        load_question_set(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {where}: "), message
    assert field in message
    assert "\n" not in message


def test_malformed_yaml_names_the_item(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "- id: y-1\n  question: DSとは？\n  expected_sections: [data_scientist#主な業務]\n- id: y-2\n  question: 天気は？\n  tags: weather\n  out_of_scope: true\n")
    with pytest.raises(QuestionSetError, match=r"bad\.yaml: item 2 \(id 'y-2'\): tags: "):
        load_question_set(path)


def test_folders_missing_paths_and_repeats(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.jsonl", GOOD)
    _write(tmp_path, "notes.txt", "not a set")
    assert question_files([tmp_path, a]) == [a]  # the folder's set, once; other files ignored
    assert [q.id for _, q in load_labelled_question_sets([tmp_path, a])] == ["ok-1"]
    with pytest.raises(QuestionSetError, match="no such file or folder"):
        question_files([tmp_path / "missing.jsonl"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QuestionSetError, match="no question sets"):
        question_files([empty])
    b = _write(tmp_path, "b.yaml", "- id: ok-1\n  question: again\n  out_of_scope: true\n")
    with pytest.raises(QuestionSetError, match=r"b\.yaml: id 'ok-1' is also used in .*a\.jsonl"):
        load_labelled_question_sets([a, b])


def test_cli_rejects_a_malformed_set_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "broken.jsonl", GOOD + '{"id": "bad-1", "question": "x", "expected_sections": 3}\n')
    assert main(["eval", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("careerbot: error: ")
    assert str(path) in err and "line 2 (id 'bad-1')" in err and "expected_sections" in err
    assert not (tmp_path / "out").exists()
