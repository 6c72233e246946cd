"""SIGKILL at random moments (while frames are added, while an episode commits) never damages a dataset."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_io.datasets import check_dataset, load_dataset

pytestmark = pytest.mark.slow
VICTIM = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[3]


def test_random_kills_leave_every_committed_episode_loadable(tmp_path):
    root, chooser, committed = tmp_path / "ds", random.Random(7), 0
    for kill in range(12):
        process = subprocess.Popen(
            [sys.executable, str(VICTIM), str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        time.sleep(chooser.uniform(1.0, 2.5))  # the interpreter starts in about 1 s, then commits every few ms
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
        printed = [int(line.split()[1]) for line in output.splitlines() if line.startswith("committed")]
        ds = load_dataset(root)
        assert check_dataset(root) == [], f"after kill {kill}"
        # a commit can complete just before the kill lands, before its line is printed
        assert ds.num_episodes >= (printed[-1] + 1 if printed else committed)
        assert ds.num_episodes >= committed  # nothing committed earlier was lost
        committed = ds.num_episodes
    assert committed > 12  # the victim did commit episodes between kills
