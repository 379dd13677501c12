"""Tibanna: run bioinformatics jobs one machine per job, locally or on AWS."""
__version__ = "7.0.0.dev0"
