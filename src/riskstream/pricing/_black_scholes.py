"""Generalised Black-Scholes-Merton with cost of carry: price and greeks, vectorised.

One formula serves every European option family (Haug, *The Complete Guide to Option Pricing Formulas*, 2nd ed.,
§1.1.6): with ``φ = +1`` for a call and ``−1`` for a put,

    V = φ·[S·e^{(b−r)T}·N(φ·d1) − K·e^{−rT}·N(φ·d2)],
    d1 = (ln(S/K) + (b + σ²/2)·T) / (σ√T),   d2 = d1 − σ√T,

``b = r`` is Black-Scholes (1973), ``b = r − q`` Merton (1973) with a continuous dividend yield ``q`` and
``b = r_d − r_f`` Garman-Kohlhagen (1983) for currency options. ``S`` and ``K`` are in the same currency (the
option's); ``T`` in years; ``r``, ``b`` and ``σ`` are continuously-compounded decimals per year.

All inputs broadcast against each other; the domain is ``S, K, T, σ > 0``: outside it results are NaN, without
warnings (a stress scenario may carry such a value, and the run goes on).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from ..domain import OptionType
from ._family import Checked, Exposures, FactorColumns, Sink, Workspace, block_rows, blocks

__all__ = [
    "BlackScholesGreeks",
    "OptionBlock",
    "OptionSetup",
    "black_scholes",
    "black_scholes_greeks",
    "option_signs",
    "price_in_blocks",
]

ArrayLike = np.ndarray | float


def black_scholes(
    spot: ArrayLike,
    strike: ArrayLike,
    expiry: ArrayLike,
    rate: ArrayLike,
    carry: ArrayLike,
    vol: ArrayLike,
    phi: ArrayLike,
    *,
    out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> np.ndarray:
    """Generalised Black-Scholes-Merton price, in the currency of spot and strike.

    Parameters
    ----------
    spot
        Underlying price ``S`` (> 0).
    strike
        Strike ``K`` (> 0), same currency as spot.
    expiry
        Time to expiry ``T`` in years (> 0).
    rate
        Risk-free (discounting) rate ``r``, continuously compounded, per year.
    carry
        Cost of carry ``b`` per year (``r − q`` for a dividend yield ``q``; ``r_d − r_f`` for FX).
    vol
        Black volatility ``σ`` per √year, as a decimal (0.2 = 20 %).
    phi
        ``+1`` for a call, ``−1`` for a put.
    out, work
        Optional buffers of the broadcast shape and of (2, *that shape): pricing block after block reuses them
        rather than allocating a dozen temporaries each time. ``out`` may not alias an input.
    """
    shape = np.broadcast_shapes(*(np.shape(x) for x in (spot, strike, expiry, rate, carry, vol, phi)))
    a = np.empty(shape) if out is None else out
    work = np.empty((2, *shape)) if work is None else work
    b, c = work[0, ...], work[1, ...]
    with np.errstate(divide="ignore", invalid="ignore"):
        sqrt_t = np.sqrt(expiry)
        vs = np.multiply(vol, sqrt_t, out=c)
        if not np.all(vs > 0):  # a stress scenario can shift a vol to ≤ 0: no price, not a wrong one
            np.copyto(vs, np.nan, where=~(vs > 0))
        np.divide(spot, strike, out=a)
        np.log(a, out=a)
        a += np.multiply(carry, expiry, out=b)
        a /= vs
        vs *= 0.5
        a += vs  # d1
        np.subtract(a, vs, out=b)
        b -= vs  # d2 = d1 − σ√T
        # only N(φ·d1) and N(φ·d2) are used
        a *= phi
        b *= phi
        nd1 = ndtr(a, out=a)
        nd2 = ndtr(b, out=b)
        growth = np.subtract(carry, rate, out=c)
        growth *= expiry
        nd1 *= np.exp(growth, out=growth)
        nd1 *= spot
        discount = np.multiply(rate, np.negative(expiry), out=c)
        nd2 *= np.exp(discount, out=discount)
        nd2 *= strike
        nd1 -= nd2
        nd1 *= phi
    return nd1


@dataclass(frozen=True)
class BlackScholesGreeks:
    """Price and partial derivatives of the generalised Black-Scholes-Merton formula.

    Every field is in the option's currency per unit of the option. ``rate`` and ``carry`` are independent
    arguments here: a move in the discount curve moves both for an equity option (``b = r − q``), and a move in a
    foreign curve moves ``b`` only — combine the partials accordingly (chain rule).
    """

    price: np.ndarray
    #: ∂V/∂S
    delta: np.ndarray
    #: ∂²V/∂S²
    gamma: np.ndarray
    #: ∂V/∂σ (per unit of σ, i.e. per 100 vol points)
    vega: np.ndarray
    #: ∂²V/∂σ²
    volga: np.ndarray
    #: ∂V/∂r with b held fixed (= −T·V)
    d_rate: np.ndarray
    #: ∂V/∂b with r held fixed
    d_carry: np.ndarray
    #: ∂²V/∂r²
    d2_rate: np.ndarray
    #: ∂²V/∂b²
    d2_carry: np.ndarray
    #: ∂²V/∂r∂b
    d_rate_carry: np.ndarray


def black_scholes_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    expiry: ArrayLike,
    rate: ArrayLike,
    carry: ArrayLike,
    vol: ArrayLike,
    phi: ArrayLike,
) -> BlackScholesGreeks:
    """Price and closed-form greeks of the generalised Black-Scholes-Merton formula (Haug §2.1-2.3).

    Parameters are those of :func:`black_scholes` (``S``, ``K``, ``T`` in years, ``r``, ``b``, ``σ``, ``φ``).
    """
    s, k, t, r, b, v, p = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, expiry, rate, carry, vol, phi))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        sqrt_t = np.sqrt(t)
        vs = np.where(v * sqrt_t > 0, v * sqrt_t, np.nan)
        d1 = (np.log(s / k) + (b + 0.5 * v * v) * t) / vs
        d2 = d1 - vs
        carry_df = np.exp((b - r) * t)
        df = np.exp(-r * t)
        n_d1 = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
        cdf1 = ndtr(p * d1)
        price = p * (s * carry_df * cdf1 - k * df * ndtr(p * d2))
        delta = p * carry_df * cdf1
        vega = s * carry_df * n_d1 * sqrt_t
        d_carry = t * s * delta
    return BlackScholesGreeks(
        price=price,
        delta=delta,
        gamma=carry_df * n_d1 / (s * vs),
        vega=vega,
        volga=vega * d1 * d2 / v,
        d_rate=-t * price,
        d_carry=d_carry,
        d2_rate=t * t * price,
        d2_carry=t * s * carry_df * (t * p * cdf1 + n_d1 * sqrt_t / v),
        d_rate_carry=-t * d_carry,
    )


#: Inputs of a block of options: spot, strike, expiry, rate, carry, vol, phi and a scale applied to the price
#: (multiplier × FX translation), each broadcastable to (block rows, n_scenarios).
OptionBlock = tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


def option_signs(options: Sequence[Any]) -> np.ndarray:
    """φ of each option: +1 for a call, −1 for a put."""
    return np.array([1.0 if o.option_type is OptionType.CALL else -1.0 for o in options], dtype=np.float64)


@dataclass
class OptionSetup(Checked):
    """European options checked against a market: their terms and how to read a block's market inputs.

    A family fills in :meth:`market_inputs` (spot, rate, carry and the scale that turns the formula's price
    into a reporting-currency value per unit); pricing and greeks follow from it.
    """

    strike: np.ndarray
    phi: np.ndarray
    vol: FactorColumns

    def market_inputs(
        self, rows: slice, ws: Workspace
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Spot, rate, carry and scale of the options ``rows``, each (n_rows, n_scenarios)."""
        raise NotImplementedError

    def block(self, rows: slice, ws: Workspace) -> OptionBlock:
        spot, rate, carry, scale = self.market_inputs(rows, ws)
        vol = self.vol.rows(rows, out=ws("vol", rows.stop - rows.start))
        return (
            spot,
            self.strike[rows, None],
            self.expiry[rows, None],
            rate,
            carry,
            vol,
            self.phi[rows, None],
            scale,
        )

    def value(self, n_scenarios: int, sink: Sink) -> dict[int, str]:
        """Write every option's values into the sink; return the failed ones."""
        price_in_blocks(self.ok, n_scenarios, self.block, sink)
        return self.checks.failed

    def greeks(self) -> tuple[OptionBlock, BlackScholesGreeks]:
        """Inputs (each (n_ok,)) and greeks of every option in a one-scenario market."""
        inputs = self.block(slice(0, len(self.ok)), Workspace(len(self.ok), 1))
        spot, strike, expiry, rate, carry, vol, phi, scale = (x[:, 0] for x in inputs)
        greeks = black_scholes_greeks(spot, strike, expiry, rate, carry, vol, phi)
        return (spot, strike, expiry, rate, carry, vol, phi, scale), greeks

    def add_vol_exposures(
        self, exposures: Exposures, factor_ids: Sequence[str], inputs: OptionBlock, g: BlackScholesGreeks
    ) -> None:
        """Relative vol delta ``scale·σ·∂V/∂σ`` and gamma ``scale·σ²·∂²V/∂σ²`` from :meth:`greeks`."""
        *_, vol, _, scale = inputs
        exposures.add(self.ok, factor_ids, scale * vol * g.vega, scale * vol**2 * g.volga)


def price_in_blocks(
    rows: np.ndarray, n_scenarios: int, block: Callable[[slice, Workspace], OptionBlock], sink: Sink
) -> None:
    """Scaled Black-Scholes-Merton values of many options under many scenarios, block of rows by block.

    Parameters
    ----------
    rows
        The family's rows of the options, in the order ``block`` sees them.
    n_scenarios
        Number of scenarios.
    block
        Returns the inputs of the options at a slice of ``rows`` (see :data:`OptionBlock`), written into
        buffers of the workspace where they are (rows × scenarios).
    sink
        Receives the values.
    """
    ws = Workspace(min(len(rows), block_rows(n_scenarios)), n_scenarios)
    for part in blocks(len(rows), n_scenarios):
        n = part.stop - part.start
        spot, strike, expiry, rate, carry, vol, phi, scale = block(part, ws)
        values = black_scholes(
            spot, strike, expiry, rate, carry, vol, phi, out=ws("price", n), work=ws("work", n, depth=2)
        )
        values *= scale
        sink.put(rows[part], values)
