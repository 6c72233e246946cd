"""A standalone CMake Release build of `cpp_ext/`, shared by the benchmarks; incremental across runs."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sim.errors import SimrealError

ROOT = Path(__file__).resolve().parents[1]
CPP_EXT = ROOT / "cpp_ext"
DEFAULT_BUILD_DIR = ROOT / "build" / "cpp_ext"
OUTPUT_TAIL_LINES = 60  # enough for the first compiler errors, short enough for a terminal


class CppBuildError(SimrealError):
    """CMake configure or build failed; `output` holds everything cmake and the compiler printed."""

    def __init__(self, message: str, output: str = "") -> None:
        tail = "\n".join(output.strip().splitlines()[-OUTPUT_TAIL_LINES:])
        super().__init__(f"{message}\n{tail}" if tail else message)
        self.output = output


def build_cpp_ext(build_dir: Path | None = None, targets: Sequence[str] = ()) -> Path:
    """Configure (Release) and build `cpp_ext/` into `build_dir` (default build/cpp_ext); returns the build dir.

    Only what changed is recompiled; `targets` limits the build to those executables. SIMREAL_NATIVE=1 in
    the environment builds with -march=native (see cpp_ext/CMakeLists.txt).
    """
    for tool in ("cmake", "g++"):
        if shutil.which(tool) is None:
            raise CppBuildError(f"the C++ core needs {tool} on PATH (Debian: apt-get install cmake g++)")
    build_dir = (build_dir or DEFAULT_BUILD_DIR).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    # two builds into one directory at once (a test run and a manual bench) would corrupt it
    with (build_dir / ".simreal-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # re-configuring an existing tree is cheap and picks up new sources and changed options
        configure = ["cmake", "-S", str(CPP_EXT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
        if "SIMREAL_NATIVE" in os.environ:
            # CMake reads the variable only on the first configure (the option is cached): pass it on every time
            configure.append(f"-DSIMREAL_NATIVE={os.environ['SIMREAL_NATIVE'] or 'OFF'}")
        _run(configure, "configure")
        command = ["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 1)]
        if targets:
            command += ["--target", *targets]
        _run(command, "build")
    return build_dir


def _run(command: list[str], step: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CppBuildError(
            f"cmake {step} of {CPP_EXT} failed (exit {result.returncode}): {' '.join(command)}",
            result.stdout + result.stderr,
        )
