"""Input checks shared by the package: every public entry point fails early with a clear message.

Each checker raises ``ValueError`` naming the parameter, the value it got and the valid range,
so that bad input never surfaces as a traceback from deep inside torch or as a silent NaN. A rule is written once,
here or beside the value it guards (the DiT's arguments: :func:`gptheory.dit.dit_args`), and called both where a
configuration is built and where a network or a loop receives the value. :func:`option` is the metadata of a
configuration field: its help text and choices (the command line derives from them) and how the cache key treats it.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


def option(help: str, choices: tuple | None = None, *, internal: bool = False, later: bool = False) -> dict:
    """Metadata of a configuration field (``dataclasses.field(default=..., metadata=option(...))``).

    ``help`` and ``choices`` become the command-line option's (:func:`gptheory.config.add_options`); ``internal``: not
    an option and not part of the cache key (set by the code, e.g. a part's seed from the experiment's); ``later``:
    added after results were shipped, so the cache key leaves it out at its default and older keys stay valid.
    """
    meta: dict = {"help": help, "internal": internal, "later": later}
    return meta | ({"choices": tuple(choices)} if choices is not None else {})


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def nonneg_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (>= 0), got {value!r}")
    return int(value)


def one_of(name: str, value: object, options: tuple | list | dict) -> object:
    """Return ``value`` if it is one of ``options`` (a dict: one of its keys), else raise."""
    if isinstance(value, list | dict) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")
    return value


def odd_int(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is an odd positive integer (a kernel with a centre tap), else raise."""
    if positive_int(name, value) % 2 == 0:
        raise ValueError(f"{name} must be an odd positive integer (1, 3, 5, ...), got {value!r}")
    return int(value)


def halvings(N: int, levels: int) -> int:
    """Return ``levels`` if the ``N`` frames can be halved that many times (``N`` divisible by ``2**levels``), else
    raise naming the largest valid ``levels``."""
    N, levels = positive_int("N", N), nonneg_int("levels", levels)
    if N % 2**levels:
        most = (N & -N).bit_length() - 1  # the power of 2 in N
        raise ValueError(
            f"N must be divisible by 2**levels (each level halves the frames), got N={N} and levels={levels} "
            f"(2**levels={2**levels}); use levels <= {most} or another N"
        )
    return levels


def real_in(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real in the interval, else raise.

    The interval is written the usual way in the message, e.g. ``(0, 2]``.
    """
    lo_b, hi_b = ("(" if low_open else "["), (")" if high_open else "]")
    rng = f"{lo_b}{low:g}, {high:g}{hi_b}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) or (v == high and math.isinf(high) and not high_open)
    ok = ok and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}")
    return v


def finite_tensor(name: str, x: object, shape: tuple[int | None, ...] | None = None) -> torch.Tensor:
    """Check that ``x`` is a tensor (or array-like) of finite floats with the given shape.

    ``shape`` entries of ``None`` match any size; the number of dimensions must match exactly.
    Returns ``x`` as a floating-point tensor (integer input is promoted to float64).
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a tensor of real numbers, got {type(x).__name__}") from err
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if shape is not None:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        if x.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape, strict=False)):
            raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    # one reduction decides the common case: a finite sum means every entry is finite (NaN and inf propagate);
    # only a non-finite sum (a bad entry, or an overflow of huge ones) pays for the entrywise check
    if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries (NaN or inf)")
    return x


def check_geometry(
    size: int, radius: float, speed: float, T: int | None = None, T_name: str = "T"
) -> tuple[int, float, float]:
    """Validate the geometry once, where it enters; raises ``ValueError`` naming the parameter (``T_name`` for
    the number of frames).

    The ball must fit the frame with room to move (``2 radius < size``), and move less than the free width
    ``size - 2 radius`` per frame (at most one hit per wall per frame).
    """
    size = positive_int("size", size)
    if size < 4:
        raise ValueError(f"size must be at least 4 pixels, got {size}")
    radius = real_in("radius", radius, 0.0, math.inf, low_open=True)
    if 2 * radius >= size:
        raise ValueError(
            f"radius must be below size / 2 = {size / 2:g} so the ball fits the {size}x{size} frame "
            f"with room to move, got radius={radius:g}"
        )
    free = size - 2 * radius
    speed = real_in("speed", speed, 0.0, free, low_open=True, high_open=True)
    if T is not None:
        T = positive_int(T_name, T)
        if T < 2:
            raise ValueError(f"{T_name} must be at least 2 (motion needs two frames), got {T_name}={T}")
    return size, radius, speed
