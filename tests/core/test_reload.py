"""Live reload: added, changed, removed and broken articles, with questions asked throughout."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from bot.pipeline import Advisor
from bot.reload import KnowledgeWatcher
from tests.conftest import KNOWLEDGE, NEW_ARTICLE, make_settings


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture()
def live(tmp_path: Path):
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, knowledge)
    advisor = Advisor(settings=make_settings(tmp_path / "data", knowledge_dir=knowledge))
    watcher = KnowledgeWatcher(advisor=advisor, interval=0.1).start()
    yield advisor, watcher, knowledge
    watcher.stop()


def test_added_changed_and_removed_articles_are_served_while_questions_keep_working(live) -> None:
    advisor, watcher, knowledge = live
    failures: list[BaseException] = []
    answered = 0
    stop = threading.Event()

    def ask_forever() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                assert advisor.ask("AI PMの年収は？").citations
                answered += 1
            except BaseException as exc:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(exc)

    asker = threading.Thread(target=ask_forever)
    asker.start()
    try:
        assert advisor.ask("UXデザイナーの年収は？").abstained
        (knowledge / "ux_designer.md").write_text(NEW_ARTICLE, encoding="utf-8")
        wait_for(lambda: advisor.knowledge.article("ux_designer") is not None)
        answer = advisor.ask("UXデザイナーの年収は？")
        assert not answer.abstained and answer.citations[0].section_id.startswith("ux_designer#")
        assert "900〜1,400" in answer.text

        (knowledge / "ux_designer.md").write_text(NEW_ARTICLE.replace("900〜1,400", "950〜1,500"), encoding="utf-8")
        wait_for(lambda: "950〜1,500" in advisor.ask("UXデザイナーのシニアの年収は？").text)
        assert advisor.index_plan is not None and advisor.index_plan.to_embed <= 2  # only the changed passage

        (knowledge / "ux_designer.md").unlink()
        wait_for(lambda: advisor.knowledge.article("ux_designer") is None)
        assert advisor.ask("UXデザイナーの年収は？").abstained
    finally:
        stop.set()
        asker.join()
    assert failures == [] and answered > 0


def test_a_broken_new_article_is_reported_and_the_rest_stay_served(live, caplog: pytest.LogCaptureFixture) -> None:
    advisor, watcher, knowledge = live
    reports = []
    watcher.on_reload = reports.append
    (knowledge / "broken.md").write_text("---json\n{not json}\n---\n本文\n", encoding="utf-8")
    wait_for(lambda: bool(reports))
    assert any("broken.md" in p for p in reports[-1].problems)
    assert len(advisor.knowledge.articles) == 4
    assert advisor.ask("データサイエンティストの年収は？").citations


def test_trigger_reloads_even_without_a_change(live) -> None:
    advisor, watcher, _ = live
    reports = []
    watcher.on_reload = reports.append
    watcher.trigger()
    wait_for(lambda: bool(reports))
    assert reports[0].articles == 4 and reports[0].plan is None  # the index was current: nothing rebuilt
