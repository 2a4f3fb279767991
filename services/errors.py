"""Errors a page can show as a plain message. Anything else is a bug and is logged, not shown."""


class DashboardError(Exception):
    """Base: its str() is written for a support engineer, never a traceback or SQL."""


class SourceUnavailable(DashboardError):
    """PostgreSQL, Redis or Prometheus is not configured, not reachable, or refused us."""

    def __init__(self, source: str, detail: str):
        self.source = source
        self.detail = detail
        super().__init__(f"{source} is not available: {detail}")


class QueryTimeout(DashboardError):
    def __init__(self, source: str = "PostgreSQL"):
        self.source = source
        super().__init__(f"{source} did not answer in time; try a shorter time range.")


class Busy(DashboardError):
    """Every connection stayed in use by other sessions: the server is there, this process is
    serving more sessions at once than it has connections for."""


class InvalidInput(DashboardError):
    """Bad user input (a ticket id, a tenant id): the message says what is wrong."""


class RecordRefused(DashboardError):
    """The data-access record refused an entry (an implausible actor, purpose or kind): the view
    must not show the data."""

    def __init__(self, reason: str):
        super().__init__(f"the access record was refused: {reason}")


class UnsafeRole(DashboardError):
    """The configured database role is one RLS does not apply to: no tenant data is shown."""
