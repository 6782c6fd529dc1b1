"""A/B(/n) experiments between models: a control (stable) and candidates, each serving its
share of units, judged on a business KPI with always-valid statistics, so the experiment may be
looked at every day and stopped at any look. `stats` holds the numbers, `verdict` the decision.
"""
