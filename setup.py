"""simreal: sim-to-real robotics stack. Tool configuration lives in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    name="simreal",
    version="0.1.0",
    description="Parallel MuJoCo training with domain randomization, deploy bundles, a C++ real-time core and ROS 2",
    python_requires=">=3.11",
    packages=find_packages(include=["sim*", "policies*", "simreal*", "benchmarks*"]),
    package_data={"sim": ["robots/*/*.xml", "robots/*/*.yaml"]},
    install_requires=[
        "torch==2.13.0",
        "mujoco==4.0.0",
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
    ],
    extras_require={"dev": ["pytest==9.2.0", "ruff==0.17.5"]},
    entry_points={"console_scripts": ["simreal=simreal.cli:main"]},
)
