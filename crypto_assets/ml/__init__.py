"""Modelling: pure pandas / scikit-learn code (folds, baselines, metrics), apart from the Dagster wiring."""
