"""Shared by the C++ tests: one CMake build of cpp_ext/ per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.cpp_build import build_cpp_ext


@pytest.fixture(scope="session")
def build(tmp_path_factory) -> Path:
    """A fresh standalone Release build of cpp_ext/ with CMake, as an rclcpp user would make it."""
    return build_cpp_ext(tmp_path_factory.mktemp("cpp") / "build")
