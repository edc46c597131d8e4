"""gptheory: the executable companion to "Diffusion Transformer Captures Spatial-Temporal
Dependencies: A Theory for Gaussian Process Data" (Fu, Dou, Guo, Wang, Chen; ICLR 2025).

The math (exact Gaussian-process score, schedules, samplers, metrics) lives in one module per idea;
the most used names are re-exported here. One sentence per module:

* ``gp`` -- Gaussian-process sequences ``N(mu, Gamma (x) Sigma)`` and their exact diffusion score;
* ``schedules`` -- the forward processes ``(alpha_t, sigma_t)`` and the noising ``x_t = alpha_t x0 + sigma_t eps``;
* ``samplers`` -- the backward process for any score, and sampling from a trained network (``generate``);
* ``unroll`` -- the score as the last iterate of gradient descent, and the banded kernel (Section 3);
* ``construct`` -- the transformer with hand-set weights that runs that gradient descent (Theorem 1);
* ``denoiser`` -- what every score network shares (input checks, eps/v output, training target, score);
* ``model`` -- the diffusion transformer (DiT) that learns the score;
* ``unet``, ``diffusers_unet`` -- the attention-free peers: a 1D UNet over the frames, and diffusers' ``UNet1DModel``;
* ``train``, ``checkpoint`` -- training it (resumable) and its checkpoint files;
* ``analysis`` -- measurements on a trained DiT (attention against the kernel, per-direction noise response);
* ``metrics`` -- what a generator learned (covariance estimates, the paper's relative error);
* ``experiments``, ``results`` -- the paper's experiment as one driver, and its small saved results;
* ``profiles`` -- problem sizes per profile (smoke, cpu, gpu), device and precision;
* ``atomic``, ``validation``, ``notebook``, ``plots`` -- whole-or-nothing files, input checks, chapter helpers,
  shared figures; ``bench`` -- speed against peers.
"""

from .construct import build_gd_transformer, size_report
from .denoiser import Denoiser
from .diffusers_unet import DiffusersUNet1D
from .dit import DiT
from .gp import GaussianProcess, kernel, kernel_matrix, random_spatial_covariance
from .profiles import by_profile, device, profile
from .samplers import generate, prior, sample
from .schedules import DDPMSchedule, OUSchedule, Schedule
from .train import TrainConfig, train
from .truncation import banded, truncation_length
from .unet import UNet1D
from .unroll import condition_number, gd_score
from .version import __version__ as __version__

__all__ = [
    "DDPMSchedule",
    "Denoiser",
    "DiT",
    "DiffusersUNet1D",
    "GaussianProcess",
    "OUSchedule",
    "Schedule",
    "TrainConfig",
    "UNet1D",
    "banded",
    "build_gd_transformer",
    "by_profile",
    "condition_number",
    "device",
    "gd_score",
    "generate",
    "kernel",
    "kernel_matrix",
    "prior",
    "profile",
    "random_spatial_covariance",
    "sample",
    "size_report",
    "train",
    "truncation_length",
]
