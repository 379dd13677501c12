"""Tibanna's Airflow operators."""
