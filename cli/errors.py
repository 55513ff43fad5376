"""Exit codes (issue 14) and the errors that map to them. Each carries a message for the
user; none of them is ever shown as a traceback."""

from __future__ import annotations

OK = 0  # every task succeeded
FAILED = 1  # some task failed (or the check could not run)
USAGE = 2  # a usage or input error: ours (argparse) or the API's 4xx, with its field
UNREACHABLE = 3  # the API cannot be reached, or answers 5xx / not our JSON
RATE_LIMITED = 4  # 429: the message says how long to wait


class CliError(Exception):
    exit_code = FAILED

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    exit_code = USAGE


class ApiUnreachable(CliError):
    exit_code = UNREACHABLE


class RateLimited(CliError):
    exit_code = RATE_LIMITED

    def __init__(self, message: str, retry_after_s: int | None):
        super().__init__(message)
        self.retry_after_s = retry_after_s
