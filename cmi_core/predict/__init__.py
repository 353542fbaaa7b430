"""Prediction from finished runs: the fold models, ensemble weights, the Kaggle ``Predictor``."""
