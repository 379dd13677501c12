"""Tibanna's Airflow triggers."""
