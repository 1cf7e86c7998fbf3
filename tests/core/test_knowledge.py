"""Loading articles: both front-matter forms, every bad-file case, every heading form of the seed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from bot.knowledge import load_article, load_knowledge, split_sections
from tests.conftest import KNOWLEDGE

SEED = KNOWLEDGE / "ai_product_manager.md"
GOOD_YAML = "---\nslug: yaml_article\ntitle: YAML記事\ntags: [テスト]\n---\n## 概要\n本文です。\n"


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


#: sha256 of the owner's seed article (../shared/seeds/ai_product_manager.md), which ships unchanged.
SEED_SHA256 = "f10ff3cef541dd102b34dd3078820d73ccf3a49484a396120bb8d54aa5cf3d88"


def test_seed_is_the_owners_text_unchanged() -> None:
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == SEED_SHA256


def test_seed_json_front_matter_is_read() -> None:
    article = load_article(SEED)
    assert article.slug == "ai_product_manager"
    assert article.title.startswith("AIプロダクトマネージャーの年収")
    assert article.related_jobs == ("data_scientist", "product_manager", "machine_learning_engineer")
    assert "LLM活用" in article.tags


def test_yaml_front_matter_is_read(tmp_path: Path) -> None:
    article = load_article(write(tmp_path, "a.md", GOOD_YAML))
    assert (article.slug, article.title, article.tags) == ("yaml_article", "YAML記事", ("テスト",))
    assert [s.id for s in article.sections] == ["yaml_article#概要"]


BAD_FILES = {
    "bad_json.md": ("---json\n{\"slug\": \"x\", \"title\": }\n---\n本文\n", "invalid JSON front matter"),
    "bad_yaml.md": ("---\nslug: [unclosed\ntitle: t\n---\n本文\n", "invalid YAML front matter"),
    "no_slug.md": ("---\ntitle: タイトル\n---\n本文\n", "missing required key 'slug'"),
    "no_title.md": ("---json\n{\"slug\": \"no_title\"}\n---\n本文\n", "missing required key 'title'"),
    "empty_body.md": ("---\nslug: empty\ntitle: 空\n---\n\n   \n", "the article body is empty"),
    "no_front_matter.md": ("# 見出し\n本文\n", "no front matter"),
    "bad_slug.md": ("---\nslug: Has Spaces\ntitle: t\n---\n本文\n", "'slug' must be lower-case"),
    "unclosed_json.md": ("---json\n{\"slug\": \"u\", \"title\": \"t\"}\n本文\n", "no closing --- line"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_is_one_clear_problem_and_the_rest_still_load(tmp_path: Path, name: str) -> None:
    shutil.copy(SEED, tmp_path / "ai_product_manager.md")
    content, reason = BAD_FILES[name]
    write(tmp_path, name, content)
    kb = load_knowledge(tmp_path)
    assert [a.slug for a in kb.articles] == ["ai_product_manager"]
    assert len(kb.problems) == 1
    message = str(kb.problems[0])
    assert name in message and reason in message
    assert "\n" not in message


def test_not_utf8_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "sjis.md", "---\nslug: sjis\ntitle: 日本語\n---\n本文\n".encode("shift_jis"))
    kb = load_knowledge(tmp_path)
    assert kb.articles == ()
    assert "sjis.md" in str(kb.problems[0]) and "not UTF-8" in str(kb.problems[0])


def age(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_duplicate_slug_without_a_record_keeps_the_older_file_whatever_the_names(tmp_path: Path) -> None:
    real = write(tmp_path, "real.md", GOOD_YAML)
    age(real, 3600)
    newcomer = write(tmp_path, "aa_newcomer.md", GOOD_YAML.replace("YAML記事", "別の記事"))  # sorts first by name
    kb = load_knowledge(tmp_path)
    assert [a.path for a in kb.articles] == [real] and kb.owners == {"yaml_article": "real.md"}
    assert [str(p) for p in kb.problems] == [
        f"{newcomer}: duplicate slug 'yaml_article', which {real} has (the older file)"
    ]


def test_duplicate_slug_with_equal_times_keeps_the_first_name(tmp_path: Path) -> None:
    a = write(tmp_path, "a.md", GOOD_YAML)
    b = write(tmp_path, "b.md", GOOD_YAML.replace("YAML記事", "別の記事"))
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))
    kb = load_knowledge(tmp_path)
    assert [a.title for a in kb.articles] == ["YAML記事"]
    assert [p.path for p in kb.problems] == [str(b)]


def test_duplicate_slug_keeps_the_file_the_index_recorded_even_if_newer(tmp_path: Path) -> None:
    old = write(tmp_path, "old_copy.md", GOOD_YAML.replace("YAML記事", "古いコピー"))
    age(old, 3600)
    served = write(tmp_path, "served.md", GOOD_YAML)
    kb = load_knowledge(tmp_path, owners={"yaml_article": "served.md"})
    assert [a.path for a in kb.articles] == [served]
    assert [str(p) for p in kb.problems] == [
        f"{old}: duplicate slug 'yaml_article', which {served} has (the file the index was built with)"
    ]


def test_a_slug_stays_with_its_owner_while_the_owner_fails_to_load(tmp_path: Path) -> None:
    broken = write(tmp_path, "served.md", "---\nslug: [unclosed\ntitle: t\n---\n本文\n")
    write(tmp_path, "other.md", GOOD_YAML)
    kb = load_knowledge(tmp_path, owners={"yaml_article": "served.md"})
    assert kb.articles == () and kb.owners == {"yaml_article": "served.md"}
    reasons = sorted(str(p) for p in kb.problems)
    assert any(r.startswith(f"{broken}: invalid YAML") for r in reasons)
    assert any("other.md: duplicate slug 'yaml_article', which belongs to" in r and "failed to load" in r for r in reasons)
    # Once the owner is gone for good, the other file may have the slug.
    broken.unlink()
    assert [a.path.name for a in load_knowledge(tmp_path, owners={"yaml_article": "served.md"}).articles] == ["other.md"]


def test_an_article_over_the_size_limit_is_skipped_unread(tmp_path: Path) -> None:
    write(tmp_path, "a.md", GOOD_YAML)
    big = write(tmp_path, "big.md", GOOD_YAML.replace("yaml_article", "big") + "本文。" * 100)
    size = big.stat().st_size
    kb = load_knowledge(tmp_path, max_article_bytes=size - 1)
    assert [a.slug for a in kb.articles] == ["yaml_article"]
    assert [str(p) for p in kb.problems] == [
        f"{big}: {size:,} bytes is over the limit of {size - 1:,} bytes per article (CAREERBOT_MAX_ARTICLE_BYTES)"
    ]
    assert {a.slug for a in load_knowledge(tmp_path, max_article_bytes=size).articles} == {"yaml_article", "big"}


def test_missing_folder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="CAREERBOT_KNOWLEDGE_DIR"):
        load_knowledge(tmp_path / "nope")


def test_readme_and_underscore_files_are_not_articles(tmp_path: Path) -> None:
    write(tmp_path, "README.md", "# how to write articles\n")
    write(tmp_path, "_draft.md", "not ready")
    write(tmp_path, "a.md", GOOD_YAML)
    kb = load_knowledge(tmp_path)
    assert [a.slug for a in kb.articles] == ["yaml_article"] and kb.problems == ()


def test_every_heading_form_of_the_seed_is_a_boundary() -> None:
    body = (
        "## 💰 年収\n| a | b |\n| --- | --- |\n| 1 | 2 |\n\n"
        "# [完全ガイド] 職種\n\n"
        "1️⃣ **職種とは？**\n\n説明。\n\n***\n\n"
        "3️⃣ **スキル**\n\n前書き。\n\n### 🚀 技術スキル（ハード）\n表。\n\n### 🤝 ソフト\n本文。\n\n"
        "***\n\n"
        "🔟 **まとめ**\n\n結び。\n\n---\n\n## 🏷️ #推奨タグ\n#タグ\n"
    )
    sections = split_sections("job", "職種の記事", body)
    assert [s.id for s in sections] == [
        "job#年収",
        "job#職種とは",
        "job#スキル",
        "job#技術スキルハード",
        "job#ソフト",
        "job#まとめ",
        "job#推奨タグ",
    ]
    by_id = {s.id: s for s in sections}
    assert by_id["job#技術スキルハード"].breadcrumb == ("職種の記事", "3️⃣ スキル", "### 🚀 技術スキル（ハード）".removeprefix("### "))
    assert by_id["job#職種とは"].text == "説明。"  # the *** separator is not part of the text
    assert by_id["job#年収"].text.startswith("| a | b |")  # original text, not normalised


def test_seed_sections_have_stable_ids_and_original_text() -> None:
    article = load_article(SEED)
    ids = [s.id for s in article.sections]
    assert len(ids) == len(set(ids))
    assert "ai_product_manager#ai-product-managerとは" in ids
    assert "ai_product_manager#日本での推定年収dodaopenwork参照" in ids
    assert "ai_product_manager#技術スキルハードスキル" in ids
    skills = next(s for s in article.sections if s.anchor == "技術スキルハードスキル")
    assert skills.breadcrumb[1:] == ("3️⃣ 必要なスキルとツール", "🚀 技術スキル（ハードスキル）")
    assert "| 機械学習の基礎知識 |" in skills.text


def test_repeated_headings_get_numbered_anchors() -> None:
    sections = split_sections("x", "X", "## 例\nA\n## 例\nB\n")
    assert [s.id for s in sections] == ["x#例", "x#例-1"]


def test_headings_inside_code_fences_are_text() -> None:
    sections = split_sections("x", "X", "## 本物\n```\n## 偽物\n```\n")
    assert [s.id for s in sections] == ["x#本物"] and "## 偽物" in sections[0].text


def test_shipped_knowledge_loads_cleanly_and_related_jobs_resolve() -> None:
    kb = load_knowledge(KNOWLEDGE)
    assert kb.problems == ()
    slugs = {a.slug for a in kb.articles}
    assert {"ai_product_manager", "data_scientist", "product_manager", "machine_learning_engineer"} <= slugs
    for article in kb.articles:
        assert set(article.related_jobs) <= slugs, article.slug
        json.dumps(article.metadata, ensure_ascii=False)  # plain data only


def test_a_related_job_that_no_article_has_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "a.md", GOOD_YAML.replace("tags: [テスト]", "related_jobs: [ux_designer]"))
    kb = load_knowledge(tmp_path)
    assert [a.slug for a in kb.articles] == ["yaml_article"] and kb.problems == ()
    assert len(kb.warnings) == 1 and "a.md" in kb.warnings[0] and "'ux_designer'" in kb.warnings[0]
    assert load_knowledge(KNOWLEDGE).warnings == ()
