"""Orchestration of many folds: a cross-validated run, executors, sweeps."""
