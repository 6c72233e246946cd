"""ROS 2 test isolation: each test talks real DDS on loopback in a domain of its own."""

from __future__ import annotations

import itertools
import os

import pytest

from robot_io import sim2sim

_domains = itertools.count()


@pytest.fixture
def ros_domain(monkeypatch) -> int:
    """A DDS domain id no other test of this run (and, likely, no other run on the machine) uses.

    Child processes inherit it. ROS_DOMAIN_ID must stay in 0..101 for the default UDP port mapping.
    """
    domain = 1 + (os.getpid() * 7 + next(_domains)) % 100
    for key in sim2sim.INHERITED_DDS_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    for key, value in sim2sim.loopback_udp_environment(domain).items():
        monkeypatch.setenv(key, value)
    return domain
