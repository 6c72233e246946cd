"""build_cpp_ext: a compiler error surfaces as CppBuildError carrying the compiler's output."""

from __future__ import annotations

import pytest

from benchmarks import cpp_build
from benchmarks.cpp_build import CppBuildError, build_cpp_ext

CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project(broken LANGUAGES CXX)
add_executable(broken broken.cpp)
"""


def test_a_compile_error_carries_the_compiler_output(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(CMAKELISTS)
    (source / "broken.cpp").write_text("int main() { return undeclared_name; }\n")
    monkeypatch.setattr(cpp_build, "CPP_EXT", source)
    with pytest.raises(CppBuildError, match="cmake build of") as caught:
        build_cpp_ext(tmp_path / "build")
    assert "undeclared_name" in str(caught.value) and "undeclared_name" in caught.value.output


def test_a_fixed_source_builds_incrementally(tmp_path, monkeypatch):
    source = tmp_path / "src"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(CMAKELISTS)
    (source / "broken.cpp").write_text("int main() { return 0; }\n")
    monkeypatch.setattr(cpp_build, "CPP_EXT", source)
    build = build_cpp_ext(tmp_path / "build")
    binary = build / "broken"
    built_at = binary.stat().st_mtime_ns
    assert build_cpp_ext(tmp_path / "build") == build
    assert binary.stat().st_mtime_ns == built_at  # nothing changed, nothing relinked
