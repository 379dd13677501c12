"""The AWS backend: Step Functions `tibanna_unicorn*`, the `run_task_awsem`/`check_task_awsem`
Lambdas, one EC2 instance per job, S3 log buckets and the DynamoDB index `tibanna-master`."""
from tibanna.backends.aws.backend import AWSBackend

__all__ = ["AWSBackend"]
