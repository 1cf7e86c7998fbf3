"""Normalisation and index terms: the same functions at index and query time."""

import pytest

from bot.text import anchor, detect_language, normalize, normalize_with_spans, strip_decorations, terms

# (original, normalised) pairs from the design notes: NFKC folds ① and ～, leaves 〜, drops keycaps and emoji.
NORMALIZE_CASES = [
    ("①自己分析", "1自己分析"),
    ("～", "~"),
    ("〜", "〜"),
    ("ＡＩ　ＰＭ", "ai pm"),
    ("ｱｲﾋﾟｰｴﾑ", "アイピーエム"),
    ("1️⃣ **AI Product Managerとは？**", "  **ai product managerとは?**"),
    ("💰 年収", "  年収"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE_CASES)
def test_normalize_fixture(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", [raw for raw, _ in NORMALIZE_CASES] + ["ｶﾞｲﾄﾞ", "e\u0301cole", "İ", "\u0301先頭", ""])
def test_normalize_with_spans_is_normalize_with_a_way_back(raw: str) -> None:
    norm, spans = normalize_with_spans(raw)
    assert norm == normalize(raw) and len(spans) == len(norm)
    assert all(0 <= start < end <= len(raw) for start, end in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


def test_a_match_in_normalised_text_maps_back_to_what_was_typed() -> None:
    raw = "①ｳｪﾌﾞﾃﾞｻﾞｲﾅｰとＳＲＥ"
    norm, spans = normalize_with_spans(raw)
    for typed, normalised in (("ｳｪﾌﾞﾃﾞｻﾞｲﾅｰ", "ウェブデザイナー"), ("ＳＲＥ", "sre"), ("①", "1")):
        i = norm.index(normalised)
        j = i + len(normalised)
        assert raw[spans[i][0] : spans[j - 1][1]] == typed


def test_terms_are_ascii_words_and_japanese_bigrams() -> None:
    assert terms("AI PMの年収は？") == ["ai", "pm", "の年", "年収", "収は"]


def test_terms_keep_single_characters_and_programming_names() -> None:
    assert terms("年 C++ Node.js C#") == ["年", "c++", "node.js", "c#"]


def test_terms_ignore_emoji_keycaps_and_punctuation() -> None:
    assert terms("1️⃣ **スキル**！💰") == ["スキ", "キル"]


def test_full_and_half_width_give_the_same_terms() -> None:
    assert terms("ＳＱＬとＰｙｔｈｏｎ") == terms("SQLとPython")


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("1️⃣ **AI Product Managerとは？**", "ai-product-managerとは"),
        ("## 💰 日本での推定年収（doda・OpenWork参照）", "日本での推定年収dodaopenwork参照"),
        ("### データサイエンティスト / MLエンジニア", "データサイエンティスト-mlエンジニア"),
        ("🔟 **まとめ**", "まとめ"),
        ("### 1. 機械学習とデータサイエンスの基礎習得", "1-機械学習とデータサイエンスの基礎習得"),
    ],
)
def test_anchor(heading: str, expected: str) -> None:
    assert anchor(heading) == expected


def test_strip_decorations_keeps_words() -> None:
    assert strip_decorations("3️⃣ **必要なスキルとツール** 🚀") == "必要なスキルとツール"


@pytest.mark.parametrize(
    ("text", "lang"),
    [("AI PMの年収は？", "ja"), ("What does an AI PM earn?", "en"), ("ｶﾀｶﾅ", "ja"), ("1,400万円", "ja"), ("SQL", "en")],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang
