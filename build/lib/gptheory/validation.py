"""Input checks shared by the package: every public entry point fails early with a clear message.

Each checker raises ``ValueError`` naming the parameter, the value it got and the valid range,
so that bad input never surfaces as a traceback from deep inside torch or as a silent NaN.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch


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
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} must be finite, got {bad} non-finite entries (NaN or inf)")
    return x
