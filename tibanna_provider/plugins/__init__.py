"""Airflow plugins of the Tibanna provider (loaded by Airflow's plugins manager from `get_provider_info`)."""
