"""Simulated worlds with a known truth, for judging estimators and gates (issue 14)."""
