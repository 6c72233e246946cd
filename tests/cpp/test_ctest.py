"""`make test` runs the C++ core's own tests: a standalone CMake build of cpp_ext/ and ctest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CPP_EXT = Path(__file__).resolve().parents[2] / "cpp_ext"


def test_cpp_ext_builds_standalone_and_its_ctest_suite_passes(tmp_path):
    assert shutil.which("cmake") and shutil.which("g++"), "the C++ core needs cmake and g++ (Debian: cmake g++)"
    build = tmp_path / "build"
    configure = subprocess.run(
        ["cmake", "-S", str(CPP_EXT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
        capture_output=True,
        text=True,
    )
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run(["cmake", "--build", str(build), "-j2"], capture_output=True, text=True)
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    tests = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "100% tests passed" in tests.stdout
