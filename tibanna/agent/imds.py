"""The instance metadata service (IMDSv2) of an EC2 instance, where the agent reads its identity."""
from __future__ import annotations

import urllib.request

from tibanna import settings

_TOKEN_TTL_SECONDS = "300"


def metadata(path: str, timeout: float = 5.0) -> str:
    """One instance metadata value through IMDSv2 (a session token first); proxies are bypassed,
    as IMDS is link-local. Raises OSError (URLError, HTTPError, timeouts) when it does not answer."""
    endpoint = str(settings.AWS_EC2_METADATA_SERVICE_ENDPOINT.get()).rstrip("/")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    token_request = urllib.request.Request(f"{endpoint}/latest/api/token", method="PUT",
                                           headers={"X-aws-ec2-metadata-token-ttl-seconds": _TOKEN_TTL_SECONDS})
    with opener.open(token_request, timeout=timeout) as answer:
        token = answer.read().decode()
    request = urllib.request.Request(f"{endpoint}/latest/meta-data/{path}",
                                     headers={"X-aws-ec2-metadata-token": token})
    with opener.open(request, timeout=timeout) as answer:
        return answer.read().decode()
