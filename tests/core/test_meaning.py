"""Unit vectors by the real embedder: aligned with the units asked, and each unit text embedded once."""

from __future__ import annotations

import numpy as np

from bot.answer.meaning import UnitMeaning
from bot.answer.units import section_units
from bot.pipeline import Advisor
from tests.conftest import CountingEmbedder


def test_cosines_follow_the_units_and_each_text_is_embedded_once(advisor: Advisor) -> None:
    counting = CountingEmbedder(advisor.embedder)
    meaning = UnitMeaning(embedder=counting)  # type: ignore[arg-type]
    section = next(s for s in advisor.knowledge.sections if s.id == "ai_product_manager#面接でよくある質問とその対策")
    units = section_units(section)
    query = advisor.embedder.embed_queries(["How do you keep an LLM from making things up?"])[0]
    cos = meaning.cosines(query, units)
    assert cos.shape == (len(units),) and counting.embedded == len(set(u.text for u in units))
    hallucination = next(i for i, u in enumerate(units) if "ハルシネーション" in u.text and u.parent is None)
    assert int(np.argmax(cos)) in {hallucination, *(i for i, u in enumerate(units) if u.parent == units[hallucination].order)}
    again = meaning.cosines(query, list(reversed(units)))
    assert counting.embedded == len(set(u.text for u in units))  # nothing embedded again
    assert np.allclose(again, cos[::-1], atol=1e-6)
    assert meaning.generic([]) is None
    g = meaning.generic(["面接ではどんなことを聞かれる？", "What do interviews ask?"])
    assert g is not None and abs(float(np.linalg.norm(g)) - 1.0) < 1e-5
