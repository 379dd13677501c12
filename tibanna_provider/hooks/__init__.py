"""Tibanna's Airflow hooks."""
