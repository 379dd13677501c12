"""Tibanna's Airflow sensors."""
