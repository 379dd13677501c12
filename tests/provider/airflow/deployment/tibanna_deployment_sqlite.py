"""SQLite connection arguments of the test deployment's Airflow processes (on their PYTHONPATH).

Four processes and their task runners write one SQLite file; the driver's default 5 s wait for a
lock is too short on a loaded machine, so they wait up to two minutes.
"""
CONNECT_ARGS = {"timeout": 120}
