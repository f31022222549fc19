"""Expected, user-facing failures of a run: one clear message, a non-zero exit, no traceback."""


class CrossmarginError(Exception):
    exit_code = 2


class InputSchemaError(CrossmarginError):
    """A missing table, or a missing / ill-typed column: the run stops before writing anything."""

    exit_code = 3


class IssueRateExceeded(CrossmarginError):
    """Too many accounts have data issues: data_issues went to the rejected location, nothing else."""

    exit_code = 4


class UsageError(CrossmarginError):
    """An option outside its range or a value that cannot be parsed: nothing is done."""


class DestinationError(CrossmarginError):
    """An unclear or unsafe output destination: refused before any work, nothing created or deleted."""


class EngineError(CrossmarginError):
    """The ray engine could not run a bucket (no cluster, or a task failed after its retries): the run
    stops and nothing is published."""

    exit_code = 5
