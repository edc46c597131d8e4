"""gptheory: the executable companion to "Diffusion Transformer Captures Spatial-Temporal
Dependencies: A Theory for Gaussian Process Data" (Fu, Dou, Guo, Wang, Chen; ICLR 2025).

The core (math, networks, training, configuration) is flat; the experiments, the bouncing ball and the book's
helpers are subpackages above it, and ``import gptheory`` loads only the core. One line per module:

The math
* ``gp`` -- Gaussian-process sequences ``vec(x) ~ N(mu, Gamma (x) Sigma)`` and their exact diffusion score;
* ``schedules`` -- variance-preserving forward processes ``(alpha_t, sigma_t)`` and the noising of data;
* ``samplers`` -- the backward process for any score function, and sampling from a trained network (``generate``);
* ``unroll`` -- the score as the last iterate of gradient descent, its condition number and step counts (Lemma 1);
* ``truncation`` -- the band ``Gamma_bar``, its PSD checks and the band length Corollary 1 prescribes;
* ``early_stopping`` -- Lemma 12 exactly: how far stopping the sampler at ``t0`` moves Gaussian data;
* ``conditional`` -- the exact law of missing frames or entries given observed ones (imputation, forecasting): its
  mean, covariance, draws, condition number and conditional score at every ``t``, the Kronecker algebra frame-wise;
* ``masks`` -- which frames are observed: forecasting, interpolation and block masks, and the random masks a
  conditional network trains on;
* ``posterior`` -- conditional samples against the exact posterior: mean, ``W2``, coverage, CRPS, PIT, and floors;
* ``metrics`` -- what a generator learned: the law it is measured against (the data's, or at ``t0``), covariance
  estimates and errors, the Kronecker fit, Gaussian distances, the paper's relative error;
* ``fitting`` -- the Gaussian learners measured beside the DiT: Kronecker and parametric maximum likelihood;
* ``floors`` -- each estimator's sampling floor at ``m`` sequences (closed form or Monte Carlo) and the excess over it;
* ``statistics`` -- the one verdict rule (holds / fails / inconclusive, with its interval over seeds), per-seed and
  per-segment slopes, the plateau test, the log-log fit and rank correlation;
* ``attention`` -- measurements on a trained DiT: its attention against the kernel, its weights, its noise response;
* ``construct`` -- the transformer with hand-set weights that runs gradient descent to the score (Theorem 1):
  ``builder`` writes its weights, ``layers`` and ``modules`` are its blocks and slot-by-slot moves, ``embedding`` the
  frames' time code, ``heads`` the kernel-mixing attention, ``network`` the assembled module, ``size`` its size
  against Theorem 1's orders, ``uniform`` one network for every ``t`` and ``over_times`` its comparison with per-time
  networks.

The networks and their training
* ``denoiser`` -- what every score network shares (input checks, eps/v output, training target, score), and
  ``build_model``;
* ``dit`` -- the one-dimensional diffusion transformer (DiT) that learns the score;
* ``unet``, ``diffusers_unet`` -- the attention-free peers: a 1D UNet over the frames, and diffusers' ``UNet1DModel``;
* ``conditional_dit`` -- the DiT given observed frames and their mask, for imputation and forecasting;
* ``imputers`` -- three ways to draw missing frames through one sampler: a conditional network, replacement with an
  unconditional one, and the exact conditional score;
* ``recipe`` -- the training settings, time sampling, learning-rate schedule and optimiser; ``train`` -- the engine
  that runs them, resumable; ``checkpoint`` -- its checkpoint files; ``convergence`` -- when to stop (validation loss,
  patience, cap) and the memorisation check;
* ``config`` -- the one typed configuration of every training and the command-line options derived from it;
* ``validation`` -- the input rules, each written once, that configurations and networks share;
* ``profiles`` -- problem sizes per profile (smoke, cpu, gpu), device and precision.

Results and many trainings
* ``streams`` -- independent random streams from one seed, each named once (``numpy.random.SeedSequence`` children);
* ``trial`` -- the train-and-measure step every experiment shares;
* ``results`` -- typed records with provenance, the shipped results (``shipped/``) and the local cache, and
  reading helpers (group, setting, summary);
* ``provenance`` -- where a result came from (source hash, commit, device, date); ``atomic`` -- files written whole
  or not at all; ``version`` -- the package version;
* ``sweep`` -- a grid of trainings, resumable, with its table; ``executors`` -- where its points run (this
  process, local workers, Slurm).
* ``shipping`` -- which shipped results are a sweep's, the rule that they come from one version of the code, and
  what they took to compute.

Subpackages
* ``experiments`` -- one module per experiment chapter (``dit_learns``, ``sample_complexity``, ``architecture``
  with ``architecture_claims``, its verdicts, ``attention_learned``, and ``probe``, the measurement the last two
  share, with ``dynamics``, its training dynamics, and ``tuning``, each network's learning rate and cap; beyond the
  paper ``imputation``, read by ``imputation_analysis``), ``calibration`` (the exact score through the same sampler
  and metrics) and the registry of their sweeps;
* ``bouncing_ball`` -- Section 6.2: the video generator (``videos``), the tracker (``tracking``), the frame VAE
  (``vae``), latent statistics (``latents``), figures (``figures``) and the experiment (``experiment``);
* ``book`` -- what serves only the chapters: numbers into prose and tables (``notebook``), verdict words
  (``prose``), exercise checks (``exercises``, ``answers``), shared plots (``plots``), the chapters as plain notebooks
  (``myst``) and as otter-grader assignments (``assignment``);
* ``bench`` -- benchmarks that print JSON (``score``: the exact score against dense and library solvers; ``train``
  and ``sweep``: training and sweep throughput); ``__main__`` -- the command line
  (``python -m gptheory train | calibrate | dit-learns | sweep NAME | bouncing-ball | assignment CHAPTER``).
"""

from .config import ExperimentConfig, ModelConfig, ProcessConfig, SamplerConfig
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
    "ExperimentConfig",
    "ModelConfig",
    "ProcessConfig",
    "SamplerConfig",
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
