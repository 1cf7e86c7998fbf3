"""Sections → passages: block boundaries, the size window, tables that keep their header."""

from bot.knowledge import Section, load_article
from bot.passages import MAX_CHARS, passages_of, split_blocks, split_section
from tests.conftest import KNOWLEDGE


def section(text: str) -> Section:
    return Section(id="x#s", slug="x", anchor="s", heading="S", breadcrumb=("X", "S"), text=text)


def test_blocks_are_paragraphs_items_and_tables() -> None:
    text = "前書き。\n\n1.  **項目A**\n    説明A。\n\n2.  **項目B**\n    説明B。\n\n| h1 | h2 |\n| --- | --- |\n| a | b |\n\n結び。"
    kinds = [b.kind for b in split_blocks(text)]
    assert kinds == ["paragraph", "item", "item", "table", "paragraph"]
    assert split_blocks(text)[1].text == "1.  **項目A**\n    説明A。"


def test_nested_list_items_stay_with_their_parent() -> None:
    text = "*   **質問1: 何？**\n    *   **ポイント:** これ。\n*   **質問2: なぜ？**\n    *   **ポイント:** あれ。"
    blocks = split_blocks(text)
    assert [b.text.splitlines()[0] for b in blocks] == ["*   **質問1: 何？**", "*   **質問2: なぜ？**"]
    assert "ポイント:** これ" in blocks[0].text


def test_long_sections_split_on_block_boundaries_within_the_limit() -> None:
    items = "\n\n".join(f"{i}.  **項目{i}**\n    " + "説明の文章です。" * 12 for i in range(1, 12))
    passages = split_section(section(items))
    assert len(passages) > 1
    for p in passages:
        assert len(p.text) <= MAX_CHARS
        assert p.text.lstrip()[0].isdigit()  # every passage starts at an item, never mid-item
    assert "".join(p.text for p in passages).count("**項目") == 11


def test_a_long_table_repeats_its_header_in_every_piece() -> None:
    header = "| 経験年数 | 年収範囲 (万円) | 特徴 |\n| :--- | :--- | :--- |"
    rows = "\n".join(f"| レベル{i} | {i}00〜{i}50 | " + "特徴の説明" * 10 + " |" for i in range(1, 16))
    passages = split_section(section(header + "\n" + rows))
    assert len(passages) > 1
    for p in passages:
        assert p.text.startswith(header)
    assert sum(p.text.count("| レベル") for p in passages) == 15


def test_passages_carry_their_breadcrumb() -> None:
    article = load_article(KNOWLEDGE / "ai_product_manager.md")
    passages = passages_of(article.sections)
    skills = next(p for p in passages if p.section.anchor == "技術スキルハードスキル")
    assert skills.embed_text.startswith("3️⃣ 必要なスキルとツール › 🚀 技術スキル（ハードスキル）\n")
    assert skills.id == "ai_product_manager#技術スキルハードスキル~0"


def test_the_seed_salary_table_is_one_passage_with_every_row() -> None:
    article = load_article(KNOWLEDGE / "ai_product_manager.md")
    salary = [p for p in passages_of(article.sections) if p.section.anchor.startswith("日本での推定年収")]
    assert len(salary) == 1
    for row in ("ジュニア (0-3年)", "ミドル (3-7年)", "シニア (7年以上/リード)"):
        assert row in salary[0].text


def test_passage_hash_changes_with_text_only() -> None:
    a = split_section(section("本文。"))[0]
    b = split_section(section("本文。"))[0]
    c = split_section(section("本文が変わった。"))[0]
    assert a.hash == b.hash != c.hash
