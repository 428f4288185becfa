import threading
import time

import pytest

from crypto_assets.ingestion.http import RequestBudget


class FakeTime:
    def __init__(self, start: float = 600.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_budget_waits_for_the_next_window_when_spent():
    fake = FakeTime(600.0)
    budget = RequestBudget(10, 60.0, clock=lambda: fake.now, sleep=fake.sleep)
    for _ in range(5):
        budget.acquire(2)
    assert fake.sleeps == []
    budget.acquire(2)  # 12 > 10: wait for the window starting at 660
    assert fake.now == pytest.approx(660.0)


def test_server_count_wins_and_pause_stops_everyone():
    fake = FakeTime(600.0)
    budget = RequestBudget(10, 60.0, clock=lambda: fake.now, sleep=fake.sleep)
    budget.observe(9)  # another client on our IP spent 9 already
    budget.acquire(2)
    assert fake.now == pytest.approx(660.0)
    budget.pause(5)
    budget.acquire(1)
    assert fake.now == pytest.approx(665.0)


def test_budget_is_shared_by_threads_without_overspending():
    budget = RequestBudget(20, 0.5)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            budget.acquire(1)
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    windows: dict[int, int] = {}
    for stamp in stamps:
        windows[int(stamp // 0.5)] = windows.get(int(stamp // 0.5), 0) + 1
    assert len(stamps) == 40 and max(windows.values()) <= 20


def test_budget_needs_a_positive_limit():
    with pytest.raises(ValueError, match="positive"):
        RequestBudget(0)
