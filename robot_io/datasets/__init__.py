"""Demonstration datasets in the LeRobot v3.0 layout (DESIGN.md §6), with pyarrow and PyAV, no torch."""

from robot_io.datasets.errors import DatasetError
from robot_io.datasets.integrity import check_dataset, dataset_info, recover_dataset
from robot_io.datasets.reader import Dataset, load_dataset
from robot_io.datasets.schema import FeatureSpec
from robot_io.datasets.writer import DatasetWriter

__all__ = [
    "Dataset",
    "DatasetError",
    "DatasetWriter",
    "FeatureSpec",
    "check_dataset",
    "dataset_info",
    "load_dataset",
    "recover_dataset",
]
