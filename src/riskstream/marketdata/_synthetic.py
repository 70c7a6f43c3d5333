"""Synthetic but calibrated risk-factor history: twenty years of daily levels for a bank-sized factor universe.

Only two series are real; everything else is simulated around them, with parameters chosen to match the
stylised facts of each market, so the history behaves like market data without being anyone's market data.

Real
    The dates (1999-01-04 … 2018-12-31, US trading days) and the two equity indices: ``EQ.SPX`` is the S&P 500
    and ``EQ.NASDAQ`` the NASDAQ composite, adjusted closes as shipped with ``arch`` (``arch.data.sp500``,
    ``arch.data.nasdaq``). The S&P 500 simple daily return is the US market factor; the part of the NASDAQ
    return not explained by it (an OLS residual) is the technology factor, so the 2000 bubble and 2008 crash are
    in every name.
Equities (``EQ.<name>``)
    r = β·market + γ·tech + λ·sector + idiosyncratic. β is the name's (`EquitySpec.beta`); γ > 0 for
    technology names only; the eleven sector factors and every idiosyncratic term are GARCH(1,1) with
    Student-t innovations (ν between 4.5 and 6 per name, persistence 0.97–0.98), scaled by a common volatility
    factor that follows the real market's (idiosyncratic risk rises in crises), which gives fat tails and
    volatility clustering. Names outside the US load on their own regional market factor instead of the US one:
    that factor is correlated with the same day's and the previous day's US return (European and Japanese
    markets close before and after New York) plus its own GARCH-t term. Annualised idiosyncratic volatility is
    12–35 % by sector; a per-name drift fixes each name's log growth over the twenty years at a plausible rate.
    Levels are a starting price (currency-appropriate) times the cumulative product of gross returns.
FX (``FX.<ccy>``: value of one unit of the currency in US dollars)
    Log changes with GARCH-t volatility (annualised 7–12 %), correlated through a common dollar factor and
    European, commodity and safe-haven blocs, a small loading on the equity market (AUD up, JPY down in a sell
    off) and mild mean reversion of the log level to the January 1999 level (half-life ≈ 3.5 years).
Rates (``IR.<ccy>.<tenor>``, continuously-compounded zero rates at every tenor of `TENORS`)
    Nelson-Siegel level, slope and curvature (decay 0.5 per year) with absolute daily changes: GARCH-t with
    daily volatility of the level 5.5–6.5 bp (JPY 3 bp: its yields barely move), slope negatively correlated
    with level, factors correlated across currencies and 1.5 bp of level per 1 % of equity market return;
    mean reversion (3 years for the level) keeps twenty-year paths plausible. A small mean-reverting noise
    per tenor point keeps the curves off an exact three-factor surface. EUR and JPY may go negative.
Volatilities (``VOL.<underlying>``: Black implied volatility, annualised)
    For an equity, an index or an FX pair (``VOL.EURUSD``): premium × the underlying's trailing realised
    volatility (EWMA, λ = 0.94) × exp(u), with u an AR(1) that rises when the underlying falls (the leverage
    effect) plus noise, floored smoothly above zero.

Everything is seeded and deterministic: the same universe and seed give the same history, bit for bit. The
recursions are vectorised across series (linear ones via ``scipy.signal.lfilter``; the GARCH variance loops
over days only), so the default 5,031 days × 1,000 factors take about a second.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ..domain import TENORS, equity_factor, fx_factor, rate_factor, vol_factor
from ..errors import ConfigurationError, ModelError

__all__ = ["SECTORS", "EquitySpec", "Universe", "synthetic_history"]

TRADING_DAYS = 252

#: Sector → (mean beta, annualised idiosyncratic vol, technology-factor loading, weight in the default universe).
#: Betas and vols are typical of each GICS sector; weights roughly follow developed-market index composition.
SECTORS: dict[str, tuple[float, float, float, float]] = {
    "Information Technology": (1.20, 0.27, 0.75, 0.16),
    "Communication Services": (1.00, 0.24, 0.30, 0.07),
    "Consumer Discretionary": (1.10, 0.24, 0.00, 0.11),
    "Consumer Staples": (0.65, 0.15, 0.00, 0.07),
    "Health Care": (0.85, 0.23, 0.00, 0.12),
    "Financials": (1.15, 0.20, 0.00, 0.15),
    "Industrials": (1.05, 0.20, 0.00, 0.11),
    "Energy": (1.05, 0.23, 0.00, 0.06),
    "Materials": (1.05, 0.22, 0.00, 0.06),
    "Utilities": (0.55, 0.14, 0.00, 0.05),
    "Real Estate": (0.80, 0.17, 0.00, 0.04),
}

#: Equity currency → (region, same-day US loading, previous-day US loading, own annualised vol, exchange
#: suffixes, median starting price). US names have no regional factor of their own.
_MARKETS: dict[str, tuple[str, float, float, float, tuple[str, ...], float]] = {
    "USD": ("AMER", 1.0, 0.0, 0.0, ("",), 35.0),
    "EUR": ("EMEA", 0.55, 0.15, 0.14, ("-GY", "-FP", "-NA", "-IM", "-SM"), 30.0),
    "GBP": ("EMEA", 0.50, 0.12, 0.13, ("-LN",), 6.0),
    "JPY": ("APAC", 0.20, 0.45, 0.16, ("-JT",), 2000.0),
    "CHF": ("EMEA", 0.45, 0.12, 0.12, ("-SW",), 80.0),
    "CAD": ("AMER", 0.75, 0.05, 0.10, ("-CN",), 30.0),
    "AUD": ("APAC", 0.20, 0.40, 0.12, ("-AU",), 10.0),
}
_DEFAULT_MARKET = ("OTHER", 0.40, 0.20, 0.15, ("-XX",), 20.0)

#: Currency → (value in USD on 1999-01-04, annualised vol, loadings on dollar / Europe / commodity / safe-haven
#: blocs, loading on the equity market return).
_FX: dict[str, tuple[float, float, tuple[float, float, float, float], float]] = {
    "EUR": (1.1812, 0.095, (0.60, 0.60, 0.00, 0.20), 0.00),
    "GBP": (1.6550, 0.085, (0.55, 0.35, 0.10, 0.00), 0.00),
    "JPY": (1 / 112.15, 0.100, (0.35, 0.00, -0.10, 0.60), -0.08),
    "CHF": (1 / 1.3620, 0.100, (0.55, 0.55, 0.00, 0.45), -0.04),
    "CAD": (1 / 1.5220, 0.075, (0.40, 0.00, 0.50, 0.00), 0.06),
    "AUD": (0.6220, 0.115, (0.50, 0.00, 0.70, -0.10), 0.12),
    "NZD": (0.5300, 0.120, (0.50, 0.00, 0.65, -0.10), 0.10),
    "SEK": (1 / 8.0500, 0.105, (0.55, 0.55, 0.25, 0.00), 0.02),
    "NOK": (1 / 7.6000, 0.105, (0.50, 0.45, 0.40, 0.00), 0.03),
}
_DEFAULT_FX = (1.0, 0.10, (0.40, 0.00, 0.00, 0.00), 0.00)

#: Curve currency → (level/slope/curvature on 1999-01-04, long-run level/slope/curvature, daily vol of the
#: level; all rates as decimals). Slope < 0 is an upward-sloping curve.
_CURVES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    "USD": ((0.0560, -0.0090, 0.0000), (0.0450, -0.0250, 0.0000), 0.00065),
    "EUR": ((0.0490, -0.0180, 0.0000), (0.0300, -0.0250, 0.0000), 0.00055),
    "GBP": ((0.0460, 0.0160, 0.0000), (0.0400, -0.0250, 0.0000), 0.00060),
    "JPY": ((0.0220, -0.0200, 0.0000), (0.0120, -0.0120, 0.0000), 0.00030),
    "CHF": ((0.0320, -0.0200, 0.0000), (0.0150, -0.0150, 0.0000), 0.00045),
    "CAD": ((0.0530, -0.0050, 0.0000), (0.0400, -0.0200, 0.0000), 0.00060),
    "AUD": ((0.0550, -0.0050, 0.0000), (0.0450, -0.0150, 0.0000), 0.00065),
}
_DEFAULT_CURVE = ((0.0400, -0.0150, 0.0000), (0.0400, -0.0150, 0.0000), 0.00060)

_NS_DECAY = 0.5  # Nelson-Siegel decay per year: curvature peaks near 3.6 years
_INDEX_VOL_PREMIUM = 1.20  # implied over realised: the variance risk premium of index options
_NAME_VOL_PREMIUM = 1.10
_FX_VOL_PREMIUM = 1.05

DEFAULT_FX_CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK")
DEFAULT_CURVES: tuple[str, ...] = ("USD", "EUR", "GBP", "JPY")
DEFAULT_FX_VOL_PAIRS: tuple[str, ...] = ("EURUSD", "GBPUSD", "USDJPY", "EURGBP", "EURJPY")
INDICES: tuple[str, ...] = ("SPX", "NASDAQ")


@dataclass(frozen=True, slots=True)
class EquitySpec:
    """One single-name equity of the universe.

    Parameters
    ----------
    name
        Ticker, also the factor name (``EQ.<name>``).
    currency
        Currency the stock is quoted in; decides its home market.
    sector
        GICS sector, a key of `SECTORS`.
    region
        ``AMER``, ``EMEA`` or ``APAC``.
    beta
        Loading on the home market's daily return (dimensionless).
    """

    name: str
    currency: str
    sector: str
    region: str
    beta: float


@dataclass(frozen=True)
class Universe:
    """Which risk factors exist: single names, indices, FX currencies, zero curves and vol underlyings.

    Parameters
    ----------
    equities
        Single names, largest first (the sample bank trades the first ones most).
    indices
        Equity indices; only the two with real history, ``SPX`` and ``NASDAQ``, are supported.
    fx_currencies
        Currencies with an ``FX.<ccy>`` factor (value of one unit in the reporting currency).
    curves
        Currencies with a zero curve ``IR.<ccy>.<tenor>`` at every tenor of `TENORS`.
    vol_underlyings
        Underlyings with a ``VOL.<underlying>`` factor: an index, a single name, or a six-letter currency pair
        (``EURUSD``: EUR priced in USD) of the reporting and FX currencies.
    reporting_currency
        Currency of the FX factors; the history is calibrated against the US dollar, so only ``USD``.
    """

    equities: tuple[EquitySpec, ...]
    indices: tuple[str, ...] = INDICES
    fx_currencies: tuple[str, ...] = DEFAULT_FX_CURRENCIES
    curves: tuple[str, ...] = DEFAULT_CURVES
    vol_underlyings: tuple[str, ...] = ()
    reporting_currency: str = "USD"

    def __post_init__(self) -> None:
        if self.reporting_currency != "USD":
            raise ConfigurationError("reporting_currency", self.reporting_currency, "the history is in USD")
        unknown = set(self.indices) - set(INDICES)
        if unknown:
            raise ConfigurationError("indices", sorted(unknown), f"only {', '.join(INDICES)} have history")
        names = [e.name for e in self.equities] + list(self.indices)
        if len(set(names)) != len(names):
            raise ConfigurationError("equities", len(names), "equity and index names must be unique")
        ccys = {self.reporting_currency, *self.fx_currencies}
        for e in self.equities:
            if e.currency not in ccys:
                raise ConfigurationError(
                    "currency", e.currency, f"equity {e.name} quoted in a currency without FX"
                )
            if e.sector not in SECTORS:
                raise ConfigurationError(
                    "sector", e.sector, f"equity {e.name}: not one of {', '.join(SECTORS)}"
                )
        if len(set(self.vol_underlyings)) != len(self.vol_underlyings):
            raise ConfigurationError("vol_underlyings", len(self.vol_underlyings), "duplicate underlyings")
        for u in self.vol_underlyings:
            if u not in names and not (len(u) == 6 and u[:3] in ccys and u[3:] in ccys and u[:3] != u[3:]):
                raise ConfigurationError(
                    "vol_underlyings", u, "neither an equity, an index nor a currency pair"
                )

    @classmethod
    def default(cls, n_equities: int = 500, n_option_names: int = 434) -> Universe:
        """The sample bank's universe: with the defaults, exactly 1,000 factors.

        Parameters
        ----------
        n_equities
            Number of single names (about 56 % US, 20 % euro area, 12 % UK, 12 % Japan).
        n_option_names
            How many of the largest names have a listed-option vol factor (at most ``n_equities``).
        """
        if n_equities < 1 or not 0 <= n_option_names <= n_equities:
            raise ConfigurationError(
                "n_option_names", n_option_names, f"need 1 ≤ n_equities and 0 ≤ n_option_names ≤ {n_equities}"
            )
        return _default_universe(n_equities, n_option_names)

    @property
    def equity_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.equities)

    @property
    def factor_ids(self) -> tuple[str, ...]:
        """Every factor id, in the column order of the history: indices, names, FX, curves, vols."""
        return (
            *(equity_factor(i) for i in self.indices),
            *(equity_factor(e.name) for e in self.equities),
            *(fx_factor(c) for c in self.fx_currencies),
            *(rate_factor(c, t) for c in self.curves for t in TENORS),
            *(vol_factor(u) for u in self.vol_underlyings),
        )

    @property
    def n_factors(self) -> int:
        return len(self.factor_ids)


@functools.lru_cache(maxsize=8)
def _default_universe(n_equities: int, n_option_names: int) -> Universe:
    rng = np.random.default_rng(19990104)  # fixed: the universe is the same whatever the history's seed
    shares = {"USD": 0.56, "EUR": 0.20, "GBP": 0.12, "JPY": 0.12}
    ccy = rng.choice(list(shares), size=n_equities, p=list(shares.values()))
    weights = np.array([s[3] for s in SECTORS.values()])
    sector = rng.choice(list(SECTORS), size=n_equities, p=weights / weights.sum())
    betas = np.array([SECTORS[s][0] for s in sector]) + rng.normal(0.0, 0.2, n_equities)
    betas = np.clip(betas, 0.3, 2.2).round(2)
    tickers = _tickers(rng, [_MARKETS[c][4] for c in ccy])
    equities = tuple(
        EquitySpec(t, str(c), str(s), _MARKETS[str(c)][0], float(b))
        for t, c, s, b in zip(tickers, ccy, sector, betas, strict=True)
    )
    vols = (*INDICES, *(e.name for e in equities[:n_option_names]), *DEFAULT_FX_VOL_PAIRS)
    return Universe(equities, vol_underlyings=vols)


def _tickers(rng: np.random.Generator, suffixes: Sequence[tuple[str, ...]]) -> list[str]:
    """Pronounceable three- and four-letter tickers with an exchange suffix, unique."""
    consonants, vowels = "BCDFGHKLMNPRSTVXZ", "AEIOUY"
    taken = set(INDICES) | set(_FX) | set(_CURVES)  # a ticker that reads as a currency code would confuse
    out: list[str] = []
    for choices in suffixes:
        while True:
            letters = [rng.choice(list(consonants)), rng.choice(list(vowels)), rng.choice(list(consonants))]
            if rng.random() < 0.6:
                letters.append(rng.choice(list(consonants + vowels)))
            name = "".join(letters) + str(rng.choice(list(choices)))
            if name not in taken:
                taken.add(name)
                out.append(name)
                break
    return out


# ---------------------------------------------------------------------------------------------------------------
# building blocks


def _real_indices() -> pd.DataFrame:
    """Adjusted closes of the S&P 500 and NASDAQ composite shipped with arch, on their common dates."""
    from arch.data import nasdaq, sp500

    spx = sp500.load()["Adj Close"]
    ndq = nasdaq.load()["Adj Close"]
    levels = pd.concat({"SPX": spx, "NASDAQ": ndq}, axis=1, join="inner").astype(np.float64)
    levels.index = pd.DatetimeIndex(levels.index).normalize()
    levels.index.name = "date"
    return levels


def _std_t(rng: np.random.Generator, shape: tuple[int, int], nu: np.ndarray) -> np.ndarray:
    """Student-t draws with ν degrees of freedom per column, scaled to unit variance."""
    normal = rng.standard_normal(shape)
    chi2 = rng.chisquare(nu, size=shape)
    return normal * np.sqrt((nu - 2.0) / chi2)


def _correlated_t(rng: np.random.Generator, n_days: int, corr: np.ndarray, nu: float) -> np.ndarray:
    """Multivariate Student-t draws (shared mixing variable per day) with correlation ``corr``, unit variance."""
    chol = np.linalg.cholesky(_psd(corr))
    normal = rng.standard_normal((n_days, corr.shape[0])) @ chol.T
    return normal * np.sqrt((nu - 2.0) / rng.chisquare(nu, size=(n_days, 1)))


def _psd(corr: np.ndarray) -> np.ndarray:
    """The nearest correlation matrix with eigenvalues ≥ 1e-6 (clip and rescale), so Cholesky succeeds."""
    w, v = np.linalg.eigh((corr + corr.T) / 2)
    fixed = (v * np.maximum(w, 1e-6)) @ v.T
    d = np.sqrt(np.diag(fixed))
    return fixed / np.outer(d, d)


def _garch(z: np.ndarray, vol: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """GARCH(1,1) shocks ε_t = σ_t·z_t, σ²_t = ω + α·ε²_{t−1} + β·σ²_{t−1}, per column.

    Parameters
    ----------
    z
        Unit-variance innovations, shape (days, series).
    vol
        Unconditional volatility of each series per day (decimal); ω = vol²·(1 − α − β), σ²_0 = vol².
    alpha, beta
        ARCH and GARCH coefficients per series, α + β < 1.
    """
    var = vol**2
    omega = var * (1.0 - alpha - beta)
    out = np.empty_like(z)
    sig2 = var.copy()
    for t in range(z.shape[0]):
        eps = np.sqrt(sig2) * z[t]
        out[t] = eps
        sig2 = omega + alpha * eps * eps + beta * sig2
    return out


def _common_vol(market: np.ndarray, power: float = 0.6) -> np.ndarray:
    """Scale of non-market equity shocks on each day: yesterday's market EWMA vol over its mean, ^``power``.

    Idiosyncratic volatility rises and falls with the market's (a common idiosyncratic volatility factor), so
    2002 and 2008 show in every name; normalised to mean square 1 so unconditional volatilities are unchanged.
    """
    ewma = _ewma_vol(market[:, None])[:, 0]
    scale = (np.concatenate([ewma[:1], ewma[:-1]]) / ewma.mean()) ** power
    return np.asarray(scale / np.sqrt(np.mean(scale**2)))


def _ar1(shocks: np.ndarray, phi: float | np.ndarray, start: np.ndarray) -> np.ndarray:
    """x_t = φ·x_{t−1} + shocks_t along axis 0, with x_{−1} = ``start``: a vectorised linear recursion."""
    phi = np.broadcast_to(np.asarray(phi, dtype=np.float64), start.shape)
    if np.all(phi == phi.flat[0]):
        p = float(phi.flat[0])
        out, _ = lfilter([1.0], [1.0, -p], shocks, axis=0, zi=(p * start)[None, :])
        return np.asarray(out)
    return np.column_stack(
        [_ar1(shocks[:, [j]], phi[j : j + 1], start[j : j + 1]) for j in range(len(start))]
    )


def _ewma_vol(returns: np.ndarray, lam: float = 0.94) -> np.ndarray:
    """Annualised EWMA (RiskMetrics, λ = 0.94) volatility of each column, seeded with the first 20 days."""
    seed = np.maximum(np.mean(returns[:20] ** 2, axis=0), 1e-8)
    var = _ar1((1.0 - lam) * returns**2, lam, seed)
    return np.sqrt(np.maximum(var, 1e-10) * TRADING_DAYS)


# ---------------------------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class _Drivers:
    """Real and simulated common factors the single names load on (daily simple returns, shape (days,))."""

    market: np.ndarray
    tech: np.ndarray
    regional: dict[str, np.ndarray]
    sectors: np.ndarray  # (days, n_sectors), columns in SECTORS order


def _simulate_equities(
    universe: Universe, drivers: _Drivers, idio: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Price levels of the single names, shape (days, n_equities)."""
    n = len(universe.equities)
    sectors = list(SECTORS)
    beta = np.array([e.beta for e in universe.equities])
    gamma = np.array([SECTORS[e.sector][2] for e in universe.equities]) * rng.uniform(0.7, 1.3, n)
    sector_loading = rng.uniform(0.8, 1.2, n)
    sector_idx = np.array([sectors.index(e.sector) for e in universe.equities])
    home = np.column_stack([drivers.regional.get(e.currency, drivers.market) for e in universe.equities])
    returns = beta * home + gamma * drivers.tech[:, None]
    returns += sector_loading * drivers.sectors[:, sector_idx] + idio
    log_r = np.log1p(np.clip(returns, -0.75, 3.0))
    # drift fixing each name's twenty-year log growth at a plausible annual rate (mean 6 %, dispersion 5 %)
    growth = rng.normal(0.06, 0.05, n) / TRADING_DAYS
    log_r += growth - log_r.mean(axis=0)
    log_r[0] = 0.0
    median_start = np.array([_MARKETS.get(e.currency, _DEFAULT_MARKET)[5] for e in universe.equities])
    start = median_start * np.exp(rng.normal(0.0, 0.6, n))
    return np.asarray(start * np.exp(np.cumsum(log_r, axis=0)))


def _simulate_fx(universe: Universe, market: np.ndarray, z: np.ndarray) -> np.ndarray:
    """FX levels (USD per unit), shape (days, n_currencies), from unit-variance innovations ``z``."""
    specs = [_FX.get(c, _DEFAULT_FX) for c in universe.fx_currencies]
    if not specs:
        return np.empty((len(market), 0))
    vol = np.array([s[1] for s in specs]) / np.sqrt(TRADING_DAYS)
    k = len(specs)
    eps = _garch(z, vol, np.full(k, 0.05), np.full(k, 0.93))
    eps += np.array([s[3] for s in specs]) * market[:, None]
    kappa = 1.0 / (5 * TRADING_DAYS)  # half-life ≈ 3.5 years
    start = np.log([s[0] for s in specs])
    log_level = _ar1(eps + kappa * start, 1.0 - kappa, start)
    return np.exp(log_level)


def _fx_correlation(currencies: Sequence[str]) -> np.ndarray:
    loadings = np.array([_FX.get(c, _DEFAULT_FX)[2] for c in currencies], dtype=np.float64).reshape(-1, 4)
    norms = np.linalg.norm(loadings, axis=1, keepdims=True)
    loadings = loadings * np.minimum(1.0, 0.95 / np.maximum(norms, 1e-12))
    corr = loadings @ loadings.T
    np.fill_diagonal(corr, 1.0)
    return corr


def _curve_correlation(currencies: Sequence[str]) -> np.ndarray:
    """Correlation of (level, slope, curvature) changes across currencies: Kronecker of two correlations."""
    k = len(currencies)
    cross = np.full((k, k), 0.55)
    for i, a in enumerate(currencies):
        for j, b in enumerate(currencies):
            if "JPY" in (a, b):
                cross[i, j] = 0.30
    np.fill_diagonal(cross, 1.0)
    within = np.array([[1.0, -0.6, 0.0], [-0.6, 1.0, 0.1], [0.0, 0.1, 1.0]])
    return np.kron(cross, within)


def _simulate_curves(
    universe: Universe, market: np.ndarray, z: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Zero rates, shape (days, n_curves × n_tenors), currency-major in `TENORS` order."""
    k = len(universe.curves)
    n_days = len(market)
    if k == 0:
        return np.empty((n_days, 0))
    specs = [_CURVES.get(c, _DEFAULT_CURVE) for c in universe.curves]
    level_vol = np.array([s[2] for s in specs])
    # daily vols of (level, slope, curvature) per currency, flattened currency-major like z's columns
    vol = np.column_stack([level_vol, 0.8 * level_vol, 0.9 * level_vol]).ravel()
    eps = _garch(z, vol, np.full(3 * k, 0.06), np.full(3 * k, 0.92))
    eps[:, 0::3] += 0.015 * market[:, None]  # risk-on days lift yields: 1.5 bp per 1 % equity return
    kappa = np.tile([1.0 / (3 * TRADING_DAYS), 1.0 / (1.5 * TRADING_DAYS), 1.0 / TRADING_DAYS], k)
    start = np.array([s[0] for s in specs]).ravel()
    mean = np.array([s[1] for s in specs]).ravel()
    ns = _ar1(eps + kappa * mean, 1.0 - kappa, start)
    tau = np.array(list(TENORS.values()))
    slope = (1 - np.exp(-_NS_DECAY * tau)) / (_NS_DECAY * tau)
    loadings = np.vstack([np.ones_like(tau), slope, slope - np.exp(-_NS_DECAY * tau)])  # (3, tenors)
    noise = _ar1(0.00006 * rng.standard_normal((n_days, k * len(tau))), 0.95, np.zeros(k * len(tau)))
    curves = [ns[:, 3 * i : 3 * i + 3] @ loadings for i in range(k)]
    return np.hstack(curves) + noise


def _simulate_vols(
    returns: np.ndarray, premium: np.ndarray, floor: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Implied vols from the underlyings' daily returns (days, n): premium × EWMA vol × leverage/noise term."""
    realised = _ewma_vol(returns)
    daily = realised / np.sqrt(TRADING_DAYS)
    prev = np.vstack([daily[:1], daily[:-1]])
    z = returns / prev
    shocks = -0.03 * z + 0.015 * rng.standard_normal(returns.shape)  # a fall lifts vol: the leverage effect
    u = _ar1(shocks, 0.94, np.zeros(returns.shape[1]))
    raw = premium * realised * np.exp(u)
    return np.sqrt(raw**2 + floor**2)


# ---------------------------------------------------------------------------------------------------------------


def synthetic_history(universe: Universe | None = None, seed: int = 0) -> pd.DataFrame:
    """Daily factor levels for ``universe`` over 1999-01-04 … 2018-12-31; see the module docstring for the model.

    Parameters
    ----------
    universe
        The factors to generate; `Universe.default` (1,000 factors) if omitted.
    seed
        Seed of every random draw; the same universe and seed give an identical frame.

    Returns
    -------
    pandas.DataFrame
        Index: trading dates (``date``); columns: ``universe.factor_ids``. Prices and FX in their currency
        units, rates as decimals (0.05 = 5 %), vols annualised decimals. No NaN; prices, FX and vols > 0.
    """
    universe = universe if universe is not None else Universe.default()
    return _history(universe, int(seed)).copy()


@functools.lru_cache(maxsize=4)
def _history(universe: Universe, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, 0x5EED])
    indices = _real_indices()
    n_days = len(indices)
    market = indices["SPX"].pct_change().fillna(0.0).to_numpy()
    nasdaq = indices["NASDAQ"].pct_change().fillna(0.0).to_numpy()
    tech = nasdaq - (np.cov(market, nasdaq)[0, 1] / market.var()) * market

    n = len(universe.equities)
    home_ccys = sorted({e.currency for e in universe.equities} - {"USD"})
    n_sec = len(SECTORS)
    # one GARCH-t pass for all independent equity terms: regional markets, sectors, idiosyncratic
    nu = np.concatenate([np.full(len(home_ccys) + n_sec, 6.0), rng.uniform(4.5, 6.0, n)])
    z = _std_t(rng, (n_days, len(nu)), nu)
    idio_vol = np.array([SECTORS[e.sector][1] for e in universe.equities]) * rng.uniform(0.75, 1.35, n)
    vol = np.concatenate(
        [
            [_MARKETS.get(c, _DEFAULT_MARKET)[3] for c in home_ccys],
            np.full(n_sec, 0.08),
            idio_vol,
        ]
    ) / np.sqrt(TRADING_DAYS)
    alpha = np.concatenate([np.full(len(home_ccys) + n_sec, 0.07), rng.uniform(0.05, 0.08, n)])
    beta = np.concatenate([np.full(len(home_ccys) + n_sec, 0.91), rng.uniform(0.90, 0.92, n)])
    eps = _garch(z, vol, alpha, beta) * _common_vol(market)[:, None]
    lagged = np.concatenate([[0.0], market[:-1]])
    regional = {}
    for j, c in enumerate(home_ccys):
        spec = _MARKETS.get(c, _DEFAULT_MARKET)
        regional[c] = spec[1] * market + spec[2] * lagged + eps[:, j]
    drivers = _Drivers(market, tech, regional, eps[:, len(home_ccys) : len(home_ccys) + n_sec])
    equities = _simulate_equities(universe, drivers, eps[:, len(home_ccys) + n_sec :], rng)

    fx_z = _correlated_t(rng, n_days, _fx_correlation(universe.fx_currencies), 5.0)
    fx = _simulate_fx(universe, market, fx_z)
    curve_z = _correlated_t(rng, n_days, _curve_correlation(universe.curves), 5.0)
    curves = _simulate_curves(universe, market, curve_z, rng)

    levels: dict[str, np.ndarray] = {equity_factor(i): indices[i].to_numpy() for i in universe.indices}
    levels.update({equity_factor(e.name): equities[:, j] for j, e in enumerate(universe.equities)})
    levels.update({fx_factor(c): fx[:, j] for j, c in enumerate(universe.fx_currencies)})
    ids = [rate_factor(c, t) for c in universe.curves for t in TENORS]
    levels.update({f: curves[:, j] for j, f in enumerate(ids)})
    levels.update(_vol_levels(universe, levels, n_days, rng))

    frame = pd.DataFrame(levels, index=indices.index)[list(universe.factor_ids)]
    _validate(frame)
    return frame


def _vol_levels(
    universe: Universe, levels: dict[str, np.ndarray], n_days: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    if not universe.vol_underlyings:
        return {}
    equity_names = set(universe.equity_names) | set(universe.indices)
    one = np.ones(n_days)  # FX of the reporting currency
    prices, premium, floor = [], [], []
    for u in universe.vol_underlyings:
        if u in equity_names:
            prices.append(levels[equity_factor(u)])
            premium.append(_INDEX_VOL_PREMIUM if u in universe.indices else _NAME_VOL_PREMIUM)
            floor.append(0.06)
        else:
            prices.append(levels.get(fx_factor(u[:3]), one) / levels.get(fx_factor(u[3:]), one))
            premium.append(_FX_VOL_PREMIUM)
            floor.append(0.03)
    px = np.column_stack(prices)
    returns = np.vstack([np.zeros((1, px.shape[1])), px[1:] / px[:-1] - 1.0])
    vols = _simulate_vols(returns, np.array(premium), np.array(floor), rng)
    return {vol_factor(u): vols[:, j] for j, u in enumerate(universe.vol_underlyings)}


def _validate(frame: pd.DataFrame) -> None:
    values = frame.to_numpy()
    ids = np.asarray(frame.columns, dtype=str)
    positive = ~np.char.startswith(ids, "IR.")
    bad = ~np.isfinite(values).all(axis=0) | (positive & (values <= 0).any(axis=0))
    if bad.any():
        raise ModelError(
            f"synthetic history has non-finite or non-positive values in {ids[bad][:5].tolist()}"
        )
