"""Normalisation and index terms: the same functions at index and query time."""

import pytest

from bot.text import anchor, detect_language, normalize, strip_decorations, terms

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
