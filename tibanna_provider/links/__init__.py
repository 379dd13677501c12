"""Tibanna's Airflow links."""
