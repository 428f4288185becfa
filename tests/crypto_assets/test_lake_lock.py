"""One writer per lake: a second run waits or is refused, and a dead writer never blocks."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from crypto_assets.lake_lock import LakeBusy, lake_writer


def test_a_second_writer_is_refused_with_who_holds_the_lake(tmp_path):
    with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-03")):
        with pytest.raises(LakeBusy) as refused:
            with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-03", "2024-03-04")):
                pass
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "2024-03-01..2024-03-03" in message
    assert "overlap" in message and "--wait" in message and "the same partitions" in message
    with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-03")):
        with pytest.raises(LakeBusy) as other_days:
            with lake_writer(tmp_path, "crypto-analytics run", ("2024-04-01", "2024-04-02")):
                pass
    # Other days: not "the same partitions", still one writer at a time.
    assert "overlap" not in str(other_days.value) and "same partitions" not in str(other_days.value)
    assert "One writer at a time keeps every partition whole" in str(other_days.value)
    with lake_writer(tmp_path, "crypto-analytics import"):  # free again
        pass


@pytest.mark.parametrize("command", [["import", "x.csv"], ["lake", "remove", "--source", "x.csv"]])
def test_import_and_lake_remove_accept_the_wait_the_message_offers(command):
    from crypto_assets.cli import build_parser

    assert build_parser().parse_args([*command, "--wait"]).wait is True


def test_a_waiting_writer_goes_when_the_first_is_done(tmp_path):
    said: list[str] = []
    release = threading.Event()

    def first() -> None:
        with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-01")):
            release.wait(5)

    holder = threading.Thread(target=first)
    holder.start()
    time.sleep(0.3)
    threading.Timer(1.0, release.set).start()
    started = time.monotonic()
    with lake_writer(
        tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-01"), wait=True, say=said.append, poll=0.1
    ):
        waited = time.monotonic() - started
    holder.join()
    assert waited >= 0.5 and said and said[0].startswith("waiting for `crypto-analytics run`")


def test_a_killed_writer_leaves_no_stale_lock(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from crypto_assets.lake_lock import lake_writer\n"
        "with lake_writer(Path(sys.argv[1]), 'holder'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LakeBusy):
        with lake_writer(tmp_path, "second"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with lake_writer(tmp_path, "second"):
        pass


def test_the_cli_refuses_a_second_run_on_the_same_lake(tmp_path):
    env = {**os.environ, "LAKE_ROOT": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster")}
    with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-02")):
        second = subprocess.run(
            [sys.executable, "-m", "crypto_assets.cli", "run", "--start", "2024-03-02", "--end", "2024-03-02"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert second.returncode == 2
    assert "is being written by `crypto-analytics run`" in second.stderr and "overlap" in second.stderr
    assert not (tmp_path / "raw").exists()  # nothing was written


def test_a_child_started_for_the_holders_own_work_writes_under_its_lock(tmp_path):
    from crypto_assets.lake_lock import child_env

    code = (
        "import sys; from pathlib import Path; from crypto_assets.lake_lock import lake_writer\n"
        "with lake_writer(Path(sys.argv[1]), 'child'):\n    print('wrote')\n"
    )
    with lake_writer(tmp_path, "crypto-analytics run", ("2024-03-01", "2024-03-01")):
        ours = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env=child_env(tmp_path),
            capture_output=True,
            text=True,
        )
        stranger = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
        other_lake = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env=child_env(tmp_path / "elsewhere"),
            capture_output=True,
            text=True,
        )
    assert ours.returncode == 0 and ours.stdout.strip() == "wrote"
    assert stranger.returncode != 0 and "LakeBusy" in stranger.stderr
    assert other_lake.returncode != 0 and "LakeBusy" in other_lake.stderr
