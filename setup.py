"""simreal: sim-to-real robotics stack. Tool configuration lives in pyproject.toml.

`pip install -e .` also builds the C++ core's pybind11 module `simreal_rt` from
cpp_ext/ (portable flags; SIMREAL_NATIVE=1 adds -march=native).
"""

import os
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_packages, setup

# the core's own flags; its loops pick AVX2/AVX-512 at load time, so the portable build is fast too
CORE_FLAGS = ["-O3", "-ffp-contract=off", "-Wall", "-Wextra"]
if os.environ.get("SIMREAL_NATIVE") == "1":
    CORE_FLAGS.append("-march=native")

ParallelCompile("SIMREAL_BUILD_JOBS", default=2).install()

simreal_rt = Pybind11Extension(
    "simreal_rt",
    sorted(["cpp_ext/python/simreal_rt_module.cpp", *glob("cpp_ext/src/*.cpp")]),
    include_dirs=["cpp_ext/include"],
    cxx_std=17,
    extra_compile_args=CORE_FLAGS,
    depends=sorted(glob("cpp_ext/include/simreal_rt/*.hpp") + glob("cpp_ext/src/*.hpp")),
)

WARP_REQUIREMENTS = ["mujoco-warp==4.0.0", "warp-lang==1.19.0"]

setup(
    name="simreal",
    version="0.1.0",
    description="Parallel MuJoCo training with domain randomization, deploy bundles, a C++ real-time core and ROS 2",
    python_requires=">=3.11",
    packages=find_packages(include=["sim*", "policies*", "simreal*", "benchmarks*", "robot_io*", "calibration*"]),
    package_data={"sim": ["robots/*/*.xml", "robots/*/*.yaml"], "robot_io": ["loopback_udp.xml"]},
    install_requires=[
        "torch==2.13.0",
        "mujoco[sysid]==4.0.0",  # the extra: mujoco.sysid (system identification)
        "rsl-rl-lib==5.5.1",
        "tensordict==0.15.3",
        "numpy>=2.0,<3",
        "pyyaml==6.0.3",
        "tensorboard==2.21.0",
        "tqdm==4.70.1",
        "matplotlib==3.11.2",
        "imageio==2.38.1",
        "imageio-ffmpeg==0.8.1",
        "safetensors==0.8.0",
        "onnx==1.23.2",
        "onnxruntime==1.31.1",
        # ROS 2 from PyPI (DESIGN.md §5); rclpy fails to import without an rmw implementation
        "ros-rclpy==9.1.2",
        "ros-rmw-fastrtps-cpp==9.3.3",
        "ros-std-msgs==5.5.1",
        "ros-sensor-msgs==5.5.1",
        "ros-geometry-msgs==5.5.1",
        "ros-std-srvs==5.5.1",
        "ros-diagnostic-msgs==5.5.1",
        "ros-rosgraph-msgs==2.3.0",
        "ros-builtin-interfaces==2.3.0",
        "ros-rcl-interfaces==2.3.0",
        # demonstration datasets (LeRobot v3.0 layout) and teleop devices
        "pyarrow==26.0.1",
        "av==18.1.0",
        "pygame==2.6.1",
        "evdev==2.0.0",
        "pyspacemouse==2.1.0",
        # calibration: 5.x wheels lack calibrateHandEye
        "opencv-python-headless>=4.12,<5",
        # system identification from rosbag2 logs
        "rosbags==0.11.9",
    ],
    extras_require={
        # --backend warp: MuJoCo Warp on a CUDA GPU, or on Warp's CPU device (the tests run it there)
        "warp": WARP_REQUIREMENTS,
        "dev": ["pytest==9.2.0", "ruff==0.17.5", "atheris==3.0.0", *WARP_REQUIREMENTS],
    },
    entry_points={"console_scripts": ["simreal=simreal.cli:main"]},
    ext_modules=[simreal_rt],
    cmdclass={"build_ext": build_ext},
)
