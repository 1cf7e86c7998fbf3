"""The `SlackStore` contract as a reusable test suite: every implementation must pass it unchanged.

Subclass `StoreConformance` in a test module and provide one fixture, ``open_store``: a factory
``open_store(clock) -> SlackStore`` that opens *the same* database each time it is called within a test
(so that closing and opening again shows what survives a restart), starting empty for every test. The
store must take its notion of "now" from ``clock`` (a zero-argument callable returning time.time()-like
seconds), so that the suite can move time forward. The SQLite implementation runs it in
``test_store_sqlite.py``; another implementation (PostgreSQL) adds a module of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from bot.slack.store import KEEP_SECONDS, SlackStore

OpenStore = Callable[[Callable[[], float]], SlackStore]


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def race(n: int, action: Callable[[], Any]) -> list[Any]:
    """Run ``action`` on ``n`` threads released at once; their results."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        value = action()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == n
    return results


class StoreConformance:
    """What every `SlackStore` does. Needs the fixture ``open_store`` (see the module docstring)."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def store(self, open_store: OpenStore, clock: Clock):
        store = open_store(clock)
        yield store
        store.close()

    # -- the inbox -------------------------------------------------------------------------------

    def test_it_is_a_slack_store(self, store: SlackStore) -> None:
        assert isinstance(store, SlackStore)
        assert store.durable is True and store.problem is None

    def test_an_item_is_accepted_once_by_its_id_and_by_its_event_id(self, store: SlackStore) -> None:
        assert store.accept("slack:C1:1.0", kind="message", payload={"text": "質問"}, event_id="Ev1")
        assert not store.accept("slack:C1:1.0", kind="message", payload={"text": "again"}, event_id="Ev2")
        assert not store.accept("slack:C1:2.0", kind="message", payload={}, event_id="Ev1")  # a retry's event id
        [item] = store.unfinished()
        assert (item.id, item.kind, item.payload, item.state, item.attempts) == (
            "slack:C1:1.0", "message", {"text": "質問"}, "pending", 0
        )

    def test_of_concurrent_accepts_exactly_one_wins(self, store: SlackStore) -> None:
        wins = race(8, lambda: store.accept("slack:C1:9.0", kind="message", payload={}, event_id="EvRace"))
        assert wins.count(True) == 1
        keys = iter(range(8))
        lock = threading.Lock()

        def accept_distinct() -> bool:
            with lock:
                n = next(keys)
            return store.accept(f"slack:C2:{n}", kind="message", payload={}, event_id=f"Ev{n}")

        assert race(8, accept_distinct).count(True) == 8  # no false duplicates under contention
        assert len(store.unfinished()) == 9

    def test_items_go_from_pending_to_running_to_finished(self, store: SlackStore, clock: Clock) -> None:
        for n in range(4):
            clock.now += 1
            store.accept(f"slack:C1:{n}", kind="message", payload={"n": n})
        assert store.claim("slack:C1:0") == 1
        store.finish("slack:C1:0", "done")
        store.claim("slack:C1:1")
        store.finish("slack:C1:1", "failed")
        store.claim("slack:C1:2")  # running when the process died
        assert [(i.id, i.state, i.attempts) for i in store.unfinished()] == [
            ("slack:C1:2", "running", 1),
            ("slack:C1:3", "pending", 0),
        ]  # oldest first
        assert store.claim("slack:C1:2") == 2  # resumed: a second attempt
        store.finish("slack:C1:2", "dropped")
        with pytest.raises(ValueError):
            store.finish("slack:C1:3", "pending")  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            store.claim("slack:C9:never-accepted")
        assert store.claim("slack:C1:0") is None  # finished: nobody claims it again

    # -- leases: one process at a time works on an item ----------------------------------------------

    def test_an_accepted_item_is_leased_to_its_store_and_adopted_once_the_lease_lapses(
        self, store: SlackStore, clock: Clock
    ) -> None:
        lease = store.lease_seconds  # type: ignore[attr-defined]
        store.accept("mine", kind="message", payload={"n": 1})
        assert store.adopt() == []  # held by this store's live lease
        assert store.claim("mine") == 1
        clock.now += lease / 2
        assert store.renew() == 1
        clock.now += lease * 0.9
        assert store.adopt() == []  # renewed: still live
        clock.now += lease
        [item] = store.adopt(limit=5)  # it stopped renewing: anyone may take it over
        assert (item.id, item.state, item.attempts, item.payload) == ("mine", "running", 1, {"n": 1})
        assert store.adopt() == []  # adopted: leased again
        assert store.claim("mine") == 2
        assert store.holds("mine")
        store.finish("mine", "done")
        assert not store.holds("mine")  # finished: nobody's
        with pytest.raises(KeyError):
            store.claim("never")
        assert not store.holds("never")

    def test_adopt_takes_the_oldest_first_within_the_limit_and_release_hands_pending_items_back(
        self, store: SlackStore, clock: Clock
    ) -> None:
        for n in range(5):
            clock.now += 1
            store.accept(f"slack:C1:{n}", kind="message", payload={})
        store.claim("slack:C1:0")
        assert store.release() == 4  # pending ones only: slack:C1:0 is being answered
        assert [i.id for i in store.adopt(limit=2)] == ["slack:C1:1", "slack:C1:2"]
        assert [i.id for i in store.adopt()] == ["slack:C1:3", "slack:C1:4"]
        assert store.adopt() == []

    def test_expire_leaves_items_a_live_lease_holds(self, store: SlackStore, clock: Clock) -> None:
        lease = store.lease_seconds  # type: ignore[attr-defined]
        store.accept("held", kind="message", payload={})
        clock.now += lease / 2
        assert store.expire(before=clock.now) == 0
        clock.now += lease
        assert store.expire(before=clock.now) == 1

    def test_health_names_the_backend_and_the_schema(self, store: SlackStore) -> None:
        info = store.health()
        assert info["up"] is True and isinstance(info["schema_version"], int) and info["schema_version"] >= 1
        assert info["backend"] in ("sqlite", "postgresql")

    def test_expire_gives_up_on_old_unfinished_items_only(self, store: SlackStore, clock: Clock) -> None:
        store.accept("old", kind="message", payload={})
        store.accept("old-running", kind="message", payload={})
        store.claim("old-running")
        store.accept("old-done", kind="message", payload={})
        store.claim("old-done")
        store.finish("old-done", "done")
        clock.now += 700
        store.accept("young", kind="message", payload={})
        assert store.expire(before=clock.now - 600) == 2
        assert [i.id for i in store.unfinished()] == ["young"]
        assert store.expire(before=clock.now - 600) == 0

    def test_what_was_accepted_survives_a_restart(self, open_store: OpenStore, clock: Clock) -> None:
        first = open_store(clock)
        first.accept("slack:C1:1.0", kind="message", payload={"text": "a"}, event_id="EvKeep")
        first.accept("slack:C1:2.0", kind="message", payload={})
        first.claim("slack:C1:2.0")
        answer_id = first.record_answer(
            channel="C1", thread_ts="1.0", user="U1", question="q", turns=[], answer="a", section_ids=["s#a"],
            language="ja", confident=True, abstained=False,
        )
        first.record_feedback(answer_id=answer_id, channel="C1", message_ts="5.0", user="U1", value="good")
        first.close()

        again = open_store(clock)
        try:
            assert [(i.id, i.state) for i in again.unfinished()] == [("slack:C1:1.0", "pending"), ("slack:C1:2.0", "running")]
            assert not again.accept("slack:C1:1.0", kind="message", payload={})  # a retry after the restart
            assert not again.accept("slack:C1:7.0", kind="message", payload={}, event_id="EvKeep")
            [row] = again.feedback()
            assert (row.value, row.question, row.section_ids) == ("good", "q", ("s#a",))
        finally:
            again.close()

    def test_prune_forgets_old_finished_work_and_keys_but_never_unfinished_work(
        self, store: SlackStore, clock: Clock
    ) -> None:
        store.accept("done", kind="message", payload={}, event_id="EvDone")
        store.claim("done")
        store.finish("done", "done")
        store.accept("waiting", kind="message", payload={}, event_id="EvWaiting")
        clock.now += KEEP_SECONDS + 1
        store.prune()
        assert [i.id for i in store.unfinished()] == ["waiting"]
        assert store.accept("done", kind="message", payload={}, event_id="EvDone")  # both keys forgotten
        assert not store.accept("waiting", kind="message", payload={})

    # -- rate limits -------------------------------------------------------------------------------

    def test_rate_limit_is_a_sliding_minute_per_key(self, store: SlackStore, clock: Clock) -> None:
        assert store.allow("user:U1", per_minute=2)
        clock.now += 30
        assert store.allow("user:U1", per_minute=2)
        assert not store.allow("user:U1", per_minute=2)  # refused, and not counted
        assert store.allow("user:U2", per_minute=2)
        clock.now += 31  # the first hit left the window
        assert store.allow("user:U1", per_minute=2)
        assert not store.allow("user:U1", per_minute=2)
        assert all(store.allow("user:U3", per_minute=0) for _ in range(50))  # 0: no limit
        assert race(8, lambda: store.allow("user:U4", per_minute=3)).count(True) == 3

    # -- answers and feedback ------------------------------------------------------------------------

    def test_feedback_last_click_wins_and_carries_the_answer(self, store: SlackStore, clock: Clock) -> None:
        answer_id = store.record_answer(
            channel="C1", thread_ts="1.0", user="U1", question="AI PMの年収は？", turns=["前の質問"],
            answer="500〜850万円 [1]", section_ids=["ai_product_manager#年収"], language="ja", confident=True,
            abstained=False,
        )
        other = store.record_answer(
            channel="C1", thread_ts="2.0", user="U1", question="q2", turns=[], answer="a2", section_ids=[],
            language="ja", confident=False, abstained=True,
        )
        assert answer_id != other
        row = store.record_feedback(answer_id=answer_id, channel="C1", message_ts="9.0", user="U1", value="good")
        assert (row.value, row.question, row.turns, row.answer) == ("good", "AI PMの年収は？", ("前の質問",), "500〜850万円 [1]")
        clock.now += 5
        store.record_feedback(answer_id=answer_id, channel="C1", message_ts="9.0", user="U1", value="bad")
        store.record_feedback(answer_id=answer_id, channel="C1", message_ts="9.0", user="U2", value="good")
        store.record_feedback(answer_id=other, channel="C1", message_ts="10.0", user="U1", value="bad")
        assert [(r.user, r.value) for r in store.feedback(message_ts="9.0")] == [("U1", "bad"), ("U2", "good")]
        [mine] = store.feedback(channel="C1", message_ts="9.0", user="U1")
        assert mine.updated > mine.created
        assert [(r.message_ts, r.abstained) for r in store.feedback(value="bad")] == [("9.0", False), ("10.0", True)]
        unknown = store.record_feedback(answer_id="gone", channel="C1", message_ts="11.0", user="U1", value="bad")
        assert unknown.question == "" and unknown.section_ids == ()
        with pytest.raises(ValueError):
            store.record_feedback(answer_id=answer_id, channel="C1", message_ts="9.0", user="U1", value="meh")
