"""Evaluation: accuracy, fidelity, reports and figures."""
