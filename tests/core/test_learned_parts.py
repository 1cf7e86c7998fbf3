"""The part a question asks about, learned from question sets: the fit on the shipped dev split, how the
retriever uses it, and how the fit is stored (real embedder, real knowledge base)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.aspects import AspectLexicon
from bot.embedders import Embedder
from bot.knowledge import KnowledgeBase, load_knowledge
from bot.learned_parts import (
    FILL_PROBABILITY,
    IN_SCOPE_PROBABILITY,
    OUT_OF_SCOPE,
    OUT_OF_SCOPE_PROBABILITY,
    OVERRULE_PROBABILITY,
    fit_learned_parts,
    load_learned_parts,
    training_pairs,
)
from bot.pipeline import Advisor
from bot.questions import QuestionSetError
from tests.conftest import KNOWLEDGE, make_settings

DEV = KNOWLEDGE / "questions" / "dev"


class QueryCounter:
    """A real embedder, counting the questions it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.id, self.dimension, self.embedded = inner, inner.id, inner.dimension, 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(scope="module")
def aspects() -> AspectLexicon:
    return AspectLexicon.load(KNOWLEDGE / "aspects.yaml")


def small_set(folder: Path, n: int = 60) -> Path:
    """The first ``n`` questions of the shipped dev sets of the four articles, as one file in ``folder``."""
    lines = [line for name in ("ai_product_manager", "data_scientist", "machine_learning_engineer",
                               "product_manager", "out_of_scope")
             for line in (DEV / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[: n // 5] if line.strip()]
    path = folder / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_dev_split_teaches_every_part_of_the_template_and_what_lies_outside(kb, aspects) -> None:
    training = training_pairs([DEV], knowledge=kb, aspects=aspects)
    pairs = training.pairs
    assert training.careers == {a.slug for a in kb.articles}
    parts = {part for _, part in pairs}
    assert {"salary", "duties", "skills", "tools", "collaboration", "career_path", "outlook", "learning",
            "companies", "interview", "definition", "summary", OUT_OF_SCOPE} <= parts
    assert "tags" not in parts  # a role no aspect has teaches nothing
    assert len(pairs) > 1000
    assert ("AI PMの年収は？", "salary") in pairs or any(part == "salary" and "年収" in q for q, part in pairs)
    sections = {section for _, section in training.sections}
    assert OUT_OF_SCOPE in sections and len(sections) > 60  # most of the 99 sections, each career's own
    assert all(s == OUT_OF_SCOPE or s.split("#")[0] in training.careers for s in sections)


def test_the_section_a_question_asks_is_learned_beside_its_part(advisor: Advisor) -> None:
    learned = advisor.retriever.learned
    assert learned is not None and learned.sections
    vector = advisor.embedder.embed_queries(["do data scientists even talk to sales? for what?"])[0]
    section, p = max(learned.section_probabilities(vector).items(), key=lambda kv: kv[1])
    assert section == "data_scientist#ビジネス部門経営企画マーケティング営業"  # a dev question (fresh26)
    assert sum(learned.section_probabilities(vector).values()) == pytest.approx(1.0) and p > 0.2


def test_a_cue_for_another_part_is_overruled_when_the_model_is_sure(advisor: Advisor, lexicon_advisor: Advisor) -> None:
    question = "データサイエンティストって営業チームと組んで何するの？"  # 「何する」 is the duties' cue
    lexicon = lexicon_advisor.retriever.search(question).analysis
    assert lexicon is not None and lexicon.aspect is not None and lexicon.aspect.name == "duties"
    retrieval = advisor.retriever.search(question)
    a = retrieval.analysis
    assert a is not None and a.aspect is not None and a.aspect.name == "collaboration"
    assert a.aspect_learned is not None and a.aspect_learned >= OVERRULE_PROBABILITY and a.aspect_cue == "何する"
    assert retrieval.hits[0].passage.section.id == "data_scientist#ビジネス部門経営企画マーケティング営業"
    assert a.to_json()["aspect_learned"] == round(a.aspect_learned, 3)


@pytest.mark.parametrize(
    ("question", "part", "section"),
    [
        ("What tooling do data scientists lean on besides Python?", "tools", "data_scientist#ツールサービス"),
        ("As a data scientist, what would I end up doing with the marketing folks?", "collaboration",
         "data_scientist#ビジネス部門経営企画マーケティング営業"),
    ],
)
def test_a_question_that_names_no_part_takes_the_learned_one(advisor: Advisor, question: str, part: str, section: str) -> None:
    assert advisor.retriever.analyze(question).aspect is None  # no cue word
    retrieval = advisor.retriever.search(question)
    a = retrieval.analysis
    assert a is not None and a.aspect is not None and a.aspect.name == part and a.aspect_cue is None
    assert a.aspect_learned is not None and a.aspect_learned >= FILL_PROBABILITY
    assert retrieval.hits[0].passage.section.id == section


def test_a_question_like_the_out_of_scope_ones_is_steered_to_no_part(advisor: Advisor) -> None:
    question = "When is the next MLOps conference in Japan? I want to go as an ML engineer."
    learned = advisor.retriever.learned
    assert learned is not None
    assert learned.predict(advisor.embedder.embed_queries([question])[0])[0] == OUT_OF_SCOPE
    answer = advisor.ask(question)
    assert answer.retrieval.analysis is not None and answer.retrieval.analysis.aspect_learned is None
    assert answer.abstained


@pytest.mark.parametrize("question", ["Which keyboard do most ML engineers prefer?",
                                      "What's the most popular coffee order among product managers?"])
def test_a_question_the_model_surely_takes_for_out_of_scope_is_not_answered(
    advisor: Advisor, lexicon_advisor: Advisor, question: str
) -> None:
    assert not lexicon_advisor.ask(question).abstained  # the lexicon alone answers it from some part
    answer = advisor.ask(question)
    assert answer.abstained and answer.retrieval.confidence == 0.0
    assert answer.retrieval.signals["out_of_scope"] >= OUT_OF_SCOPE_PROBABILITY
    assert advisor.ask("AI PMの年収は？").retrieval.signals["out_of_scope"] < 0.1


@pytest.mark.parametrize(("question", "section"), [
    ("AI PMがサクッとAIデモ作るときって何のツール使うの？", "ai_product_manager#ツールサービス"),
    ("プロダクトマネジメントを一通り学びたいです。日本の事情に合わせて全体をカバーしてる本ってありますか？",
     "product_manager#1-プロダクトマネジメントの全体像をつかむ"),
])
def test_words_the_articles_never_use_do_not_halve_a_question_the_model_takes_for_in_scope(
    advisor: Advisor, lexicon_advisor: Advisor, question: str, section: str
) -> None:
    alone = lexicon_advisor.ask(question)  # 「サクッと」, 「カバー」: words the articles never use halve it
    assert alone.abstained and 0.0 < alone.retrieval.confidence < 0.5
    answer = advisor.ask(question)
    assert answer.retrieval.signals["out_of_scope"] < IN_SCOPE_PROBABILITY
    assert not answer.abstained and answer.retrieval.confidence >= 2 * alone.retrieval.confidence - 0.01
    assert section in {c.section_id for c in answer.citations}


@pytest.mark.parametrize("weights", [{"rank_learned": 0.5, "rank_section": 0.0}, {"rank_learned": 0.0, "rank_section": 1.0}])
def test_the_learned_parts_and_sections_lift_the_passages_they_find_probable(
    shared_data_dir: Path, weights: dict[str, float]
) -> None:
    question = "文系で営業企画をやってる者です。AI PMってプログラミングはどこまでできないとダメですか？"
    hard_skills = "ai_product_manager#技術スキルハードスキル"
    without = Advisor(settings=make_settings(shared_data_dir, rank_learned=0.0, rank_section=0.0)).retriever.search(question)
    retrieval = Advisor(settings=make_settings(shared_data_dir, **weights)).retriever.search(question)
    assert [h.passage.section.id for h in without.hits].index(hard_skills) > 0
    assert retrieval.hits[0].passage.section.id == hard_skills
    # the cue 「できないと」 asks how to start; once the skills come first, the answer is composed from them
    assert without.analysis.aspect.name == "start" and retrieval.analysis.aspect.name == "skills"


@pytest.mark.parametrize(("history", "question", "part", "section"), [
    ((), "do AI product managers actually need to write python or is reading it enough?", "skills",
     "ai_product_manager#技術スキルハードスキル"),  # "reading" is no book
    (("PdMへの転職考えてます",), "SaaS系だとどこが採用してる？", "companies",
     "product_manager#日本での就職可能な企業"),  # the conversation's aspect was how to start
    ((), "PdMって要望の優先順位どうやって決めてるの？フレームワークとかある？", "duties", "product_manager#主な業務"),
])
def test_the_first_passages_part_answers_when_the_learned_parts_prefer_it_to_the_aspects(
    advisor: Advisor, lexicon_advisor: Advisor, history: tuple[str, ...], question: str, part: str, section: str
) -> None:
    alone = lexicon_advisor.ask(question, history=history)
    assert alone.retrieval.analysis.aspect.name != part and section not in {c.section_id for c in alone.citations}
    answer = advisor.ask(question, history=history)
    assert answer.retrieval.hits[0].passage.section.id == section
    assert answer.retrieval.analysis.aspect.name == part
    assert not answer.abstained and answer.citations[0].section_id == section


def test_the_fit_is_stored_and_read_back_without_embedding_again(tmp_path: Path, kb, aspects, advisor: Advisor) -> None:
    training, store = small_set(tmp_path), tmp_path / "parts"
    embedder = QueryCounter(advisor.embedder)
    first = load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=embedder, store=store)
    assert first is not None and embedder.embedded == first.examples > 0
    assert [p.suffix for p in store.iterdir()] == [".npz"]  # no temporary file left behind
    again = load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=embedder, store=store)
    assert again is not None and embedder.embedded == first.examples  # read, not fitted
    assert again.parts == first.parts and np.allclose(again.weights, first.weights)
    assert again.sections == first.sections and len(first.sections) >= 2
    assert np.allclose(again.section_weights, first.section_weights)
    vector = advisor.embedder.embed_queries(["MLエンジニアの年収は？"])[0]
    assert again.predict(vector) == pytest.approx(first.predict(vector))
    # Another question in the set is another fit.
    with training.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "extra-1", "question": "DSの給料は？",
                            "expected_sections": ["data_scientist#日本での推定年収dodaopenwork参照"]}, ensure_ascii=False) + "\n")
    load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=embedder, store=store)
    assert embedder.embedded == 2 * first.examples + 1 and len(list(store.iterdir())) == 2


def test_a_damaged_store_is_fitted_again_with_a_warning(tmp_path: Path, kb, aspects, advisor: Advisor, caplog) -> None:
    training, store = small_set(tmp_path), tmp_path / "parts"
    first = load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=advisor.embedder, store=store)
    assert first is not None
    (stored,) = store.iterdir()
    stored.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING, logger="bot.learned_parts"):
        again = load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=advisor.embedder, store=store)
    assert again is not None and again.parts == first.parts
    assert any("unreadable" in r.getMessage() and str(stored) in r.getMessage() for r in caplog.records)
    assert np.load(stored)["weights"].shape == first.weights.shape  # and stored again


def test_a_store_that_cannot_be_written_is_warned_about_and_the_model_still_used(
    tmp_path: Path, kb, aspects, advisor: Advisor, caplog
) -> None:
    training = small_set(tmp_path)
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    store = tmp_path / "a-file" / "parts"  # no folder can be made there, not even by root
    with caplog.at_level(logging.WARNING, logger="bot.learned_parts"):
        model = load_learned_parts([training], knowledge=kb, aspects=aspects, embedder=advisor.embedder, store=store)
    assert model is not None
    assert any("could not be stored" in r.getMessage() for r in caplog.records)


def test_too_few_questions_or_none_learn_nothing(tmp_path: Path, kb, aspects, advisor: Advisor) -> None:
    store = tmp_path / "parts"
    assert load_learned_parts([tmp_path / "missing"], knowledge=kb, aspects=aspects, embedder=advisor.embedder,
                              store=store) is None
    few = small_set(tmp_path, n=10)
    assert load_learned_parts([few], knowledge=kb, aspects=aspects, embedder=advisor.embedder, store=store) is None
    assert not store.exists()
    assert fit_learned_parts([("年収は？", "salary")] * 30, embedder=advisor.embedder) is None  # one part only


def test_two_parts_are_learned_as_well_as_many(advisor: Advisor) -> None:
    pairs = [(f"{career}の年収はいくら？", "salary") for career in ("DS", "PM", "MLE", "AI PM", "データサイエンティスト")] * 3
    pairs += [(f"{career}の面接で聞かれることは？", "interview") for career in ("DS", "PM", "MLE", "AI PM", "PdM")] * 3
    model = fit_learned_parts(pairs, embedder=advisor.embedder)
    assert model is not None and model.parts == ("interview", "salary") and model.weights.shape[0] == 2
    salary = advisor.embedder.embed_queries(["プロダクトマネージャーの給料は？"])[0]
    interview = advisor.embedder.embed_queries(["MLエンジニアの選考で何を聞かれる？"])[0]
    assert model.predict(salary)[0] == "salary" and model.predict(interview)[0] == "interview"
    assert 0.5 < model.predict(salary)[1] <= 1.0
    assert sum(model.probabilities(salary).values()) == pytest.approx(1.0)
    assert model.predict(salary) == max(model.probabilities(salary).items(), key=lambda kv: kv[1])


def test_a_malformed_training_set_names_the_file(tmp_path: Path, kb, aspects, advisor: Advisor) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x-1", "question": "年収は？", "expected_section": []}\n', encoding="utf-8")
    with pytest.raises(QuestionSetError, match="bad.jsonl"):
        load_learned_parts([bad], knowledge=kb, aspects=aspects, embedder=advisor.embedder, store=tmp_path / "parts")
