"""riskstream: real-time market risk — multi-asset pricing under scenarios, VaR/ES, decomposition, stress, back-tests.

Conventions used everywhere (see README, "Risk conventions"):

* P&L is positive for a gain. VaR and ES are reported as **positive losses** in the reporting currency.
* Confidence and horizon are part of every measure's name: ``var_99_1d``, ``es_975_10d``.
* Scenario P&L vectors are what aggregates: they sum across positions and up the hierarchy; VaR/ES of a node are
  computed from its summed vector, never by summing VaRs.
"""

__version__ = "0.1.0"
