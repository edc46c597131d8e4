"""gptheory: the executable companion to "Diffusion Transformer Captures Spatial-Temporal
Dependencies: A Theory for Gaussian Process Data" (Fu, Dou, Guo, Wang, Chen; ICLR 2025).

The math (exact Gaussian-process score, schedules, samplers, metrics) lives in one module per idea;
the most used names are re-exported here.
"""

from .construct import build_gd_transformer, size_report
from .experiments import learn_process
from .gp import GaussianProcess, kernel, kernel_matrix, random_spatial_covariance
from .model import DiT
from .profiles import by_profile, device, profile
from .samplers import prior, sample
from .schedules import DDPMSchedule, OUSchedule, Schedule
from .train import TrainConfig, generate, train
from .unroll import banded, condition_number, gd_score, truncation_length

__version__ = "0.1.0"

__all__ = [
    "DDPMSchedule",
    "DiT",
    "GaussianProcess",
    "OUSchedule",
    "Schedule",
    "TrainConfig",
    "banded",
    "build_gd_transformer",
    "by_profile",
    "condition_number",
    "device",
    "gd_score",
    "generate",
    "kernel",
    "kernel_matrix",
    "learn_process",
    "prior",
    "profile",
    "random_spatial_covariance",
    "sample",
    "size_report",
    "train",
    "truncation_length",
]
