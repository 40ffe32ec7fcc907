"""The library's exceptions: a small hierarchy whose messages name the thing and the reason."""

from __future__ import annotations


class DynosaurError(Exception):
    """Base of every error the library raises on purpose."""


class UsageError(DynosaurError):
    """A setting or argument is missing or invalid."""


class StoreError(DynosaurError):
    """The store cannot be reached, started or migrated."""


class HubError(DynosaurError):
    """The Hub or its Dataset Viewer answered with an error for one dataset."""

    def __init__(self, message: str, *, reason: str, dataset_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.dataset_id = dataset_id


class LLMError(DynosaurError):
    """An LLM call failed for good (after its retries)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LLMAuthError(LLMError):
    """The LLM endpoint rejected the API key: retrying cannot help, the run must stop."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="llm_auth_error")


class LLMQuotaError(LLMAuthError):
    """The LLM account has no quota left (``insufficient_quota``): like a rejected key, retrying
    cannot help and the run must stop."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = "llm_quota_exhausted"


# --- ORCH: batches and runs ---------------------------------------------------------------------


class BatchStateError(DynosaurError):
    """The batch is not in a state that allows the operation (e.g. publishing a failed batch)."""


# --- hub ----------------------------------------------------------------------------------------


class HubRequestError(HubError):
    """One Hub or viewer request failed for good: HTTP status (0 = no answer), error code, and
    whether the failure was transient (retries ran out: a later run may succeed)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        dataset_id: str | None = None,
        status: int = 0,
        code: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message, reason=reason, dataset_id=dataset_id)
        self.status = status
        self.code = code
        self.transient = transient


class ConfigNotFound(DynosaurError):
    """No ``dataset_config`` row has that id."""


# --- curate, select, export ---------------------------------------------------------------------


class SelectionError(DynosaurError):
    """A selection cannot be made or stored as asked (unknown version, name clash...)."""


# --- runs: a service the run needed could not be reached ----------------------------------------


class ServiceUnavailable(DynosaurError):
    """The LLM endpoint or the Hub could not be reached for a step's work (connection errors,
    timeouts, 5xx after retries). The step recorded what it deferred; re-running the same run
    once the service is back completes it."""

    def __init__(self, message: str, *, service: str, deferred: int = 0) -> None:
        super().__init__(message)
        self.service = service
        self.deferred = deferred


# --- runs: locks and leases (issue 12) ----------------------------------------------------------


class LockTimeout(StoreError):
    """A lock (publishing, migrations) was not granted within the lock timeout."""


class RunInProgress(DynosaurError):
    """Another live process is building this run's batch (its heartbeat is fresh)."""
