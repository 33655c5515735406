"""Agreement statistics of synthetic against real SPECT: intraclass correlation, Bland-Altman
limits and a proportion with its Wilson interval.

ICC form: ICC(A,1) of McGraw & Wong (1996) -- two-way model, absolute agreement, single
measure (Shrout & Fleiss's ICC(2,1)). A synthetic SPECT stands in for the real one only if it
reproduces its values, so a systematic offset must lower the score: consistency (ICC(C,1) =
ICC(3,1)) forgives any offset and is reported beside it only to show how much of the
disagreement is bias. Targets are the rows (subject x region), the two "raters" the columns
(synthetic, real).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LOA_Z = 1.96  # Bland-Altman: 95 % limits of agreement = bias +- 1.96 SD of the differences


@dataclass(frozen=True)
class Icc:
    absolute: float  # ICC(A,1)
    lower: float  # its 95 % confidence interval (McGraw & Wong 1996, case 2A)
    upper: float
    consistency: float  # ICC(C,1), for reference
    n: int  # targets (rows)


def two_way_mean_squares(ratings: np.ndarray) -> tuple[float, float, float]:
    """Mean squares of rows (targets), columns (raters) and error of a two-way ANOVA without
    replication on an (n targets x k raters) table."""
    x = np.asarray(ratings, dtype=float)
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    return ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))


def icc(ratings: np.ndarray, confidence: float = 0.95) -> Icc:
    """ICC(A,1) with its confidence interval, and ICC(C,1), of an (n x k) table (rows with any
    NaN are dropped). Needs at least 2 complete rows and 2 columns."""
    x = np.asarray(ratings, dtype=float)
    x = x[~np.isnan(x).any(axis=1)]
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 targets and 2 raters, got {n} x {k}")
    msr, msc, mse = two_way_mean_squares(x)
    absolute = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    consistency = (msr - mse) / (msr + (k - 1) * mse)
    lower, upper = _absolute_interval(absolute, msr, msc, mse, n, k, 1 - confidence)
    return Icc(float(absolute), lower, upper, float(consistency), int(n))


def _absolute_interval(
    rho: float, msr: float, msc: float, mse: float, n: int, k: int, alpha: float
) -> tuple[float, float]:
    """McGraw & Wong (1996) interval of ICC(A,1): F tests with Satterthwaite's degrees of
    freedom v for the combination of the rater and error mean squares."""
    if not np.isfinite(rho) or rho >= 1 or mse <= 0:
        return float("nan"), float("nan")
    a = k * rho / (n * (1 - rho))
    b = 1 + k * rho * (n - 1) / (n * (1 - rho))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_low = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_up = stats.f.ppf(1 - alpha / 2, v, n - 1)
    c = k * msc + (k * n - k - n) * mse
    lower = n * (msr - f_low * mse) / (f_low * c + n * msr)
    upper = n * (f_up * msr - mse) / (c + n * f_up * msr)
    return float(lower), float(upper)


@dataclass(frozen=True)
class BlandAltman:
    bias: float  # mean of (synthetic - real)
    sd: float  # SD of the differences (ddof 1)
    lower: float  # bias - 1.96 SD
    upper: float  # bias + 1.96 SD
    n: int


def bland_altman(synthetic: np.ndarray, real: np.ndarray) -> BlandAltman:
    """Bias and 95 % limits of agreement of synthetic - real (pairs with a NaN dropped)."""
    d = np.asarray(synthetic, dtype=float) - np.asarray(real, dtype=float)
    d = d[~np.isnan(d)]
    if d.size < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {d.size}")
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return BlandAltman(bias, sd, bias - LOA_Z * sd, bias + LOA_Z * sd, int(d.size))


def wilson(count: int, nobs: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Proportion count / nobs with its Wilson score interval (NaN when nobs is 0)."""
    if nobs == 0:
        return float("nan"), float("nan"), float("nan")
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(count, nobs, alpha=1 - confidence, method="wilson")
    return count / nobs, float(lo), float(hi)
