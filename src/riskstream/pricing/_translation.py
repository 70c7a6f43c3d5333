"""Translation of values into the reporting currency, and the FX sensitivities it creates.

``FX.<ccy>`` is the value of one unit of ``ccy`` in the reporting currency (1 for the reporting currency itself,
which is not a factor). A single-currency instrument worth ``V`` in its own currency is worth ``X·V`` in the
reporting currency, so its relative FX delta ``X·∂(X·V)/∂X`` is its reporting-currency value and its own FX
gamma is zero. A currency-pair instrument (FX forward, FX option) is worth ``X_dom·f(S)`` with
``S = X_for / X_dom``; its FX deltas and gammas follow from ``f``, ``∂f/∂S`` and ``∂²f/∂S²`` below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._family import Exposures, Leg, fx_ids

__all__ = ["add_fx_exposure", "add_pair_exposures"]


def add_fx_exposure(
    exposures: Exposures,
    rows: np.ndarray,
    currencies: Sequence[str] | np.ndarray,
    reporting: str,
    value: np.ndarray,
) -> None:
    """Relative FX delta of single-currency instruments: their value in the reporting currency.

    Parameters
    ----------
    rows
        Instrument rows, shape (m,).
    currencies
        Currency of each instrument, shape (m,).
    reporting
        Reporting currency (no FX factor).
    value
        Value of each instrument in the reporting currency, shape (m,).
    """
    foreign = np.asarray(currencies) != reporting
    ids = np.asarray(fx_ids(np.asarray(currencies)[foreign]), dtype=object)
    exposures.add(np.asarray(rows)[foreign], ids, np.asarray(value)[foreign])


def add_pair_exposures(
    exposures: Exposures,
    rows: np.ndarray,
    domestic: Leg,
    foreign: Leg,
    reporting: str,
    f: np.ndarray,
    f_s: np.ndarray,
    f_ss: np.ndarray,
) -> None:
    """FX deltas and own gammas of ``V = X_dom·f(S)``, ``S = X_for/X_dom``, in the relative shock convention.

    ``X_for·∂V/∂X_for = S·X_dom·f'``, ``X_for²·∂²V/∂X_for² = S²·X_dom·f''``,
    ``X_dom·∂V/∂X_dom = X_dom·(f − S·f')``, ``X_dom²·∂²V/∂X_dom² = S²·X_dom·f''``.

    Parameters
    ----------
    rows
        Instrument rows, shape (m,).
    domestic, foreign
        The instruments' legs in a one-scenario market: currencies and ``FX.<ccy>`` (reporting-currency value
        of one unit).
    reporting
        Reporting currency (no FX factor).
    f, f_s, f_ss
        Value in the domestic currency and its first and second derivatives with respect to ``S``, shape (m,).
    """
    rows = np.asarray(rows)
    x_for = foreign.fx.rows(slice(None))[:, 0]
    x_dom = domestic.fx.rows(slice(None))[:, 0]
    s = x_for / x_dom
    gamma = s * s * x_dom * f_ss
    for ccys, delta in ((foreign.currency, s * x_dom * f_s), (domestic.currency, x_dom * (f - s * f_s))):
        keep = np.asarray(ccys) != reporting
        exposures.add(
            rows[keep], np.asarray(fx_ids(np.asarray(ccys)[keep]), dtype=object), delta[keep], gamma[keep]
        )
