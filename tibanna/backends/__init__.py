"""Backends: where jobs run. `local` (this machine) and `aws` (Step Functions + EC2)."""
