"""One family for the errors that reach a user, grouped by what went wrong, not by protocol.

The engine raises them without knowing about HTTP: ``api/errors.py`` turns each kind into a
status code in one handler, and the ``promise`` command prints the message. Raise a subclass
of one of the kinds below (never ``PromiseEngineError`` itself); the message is the answer's
text, so it says what is wrong and, where it can, what to do.

``rules.errors.DefinitionError`` stays in ``rules/`` (rules never import the engine): where an
invalid definition reaches a user through the engine, it is raised as
:class:`InvalidDefinition`, which says which definitions (the catalog, a draft) are invalid.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from rules.errors import Problem

DATABASE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
"""What SQLAlchemy raises while the database is down, restarting or out of connections: the
API answers 503 with Retry-After, the worker and dispatcher back off and try again."""


class PromiseEngineError(Exception):
    """Base of the family: an error caused by, or to be explained to, the user."""


class NotFound(PromiseEngineError):
    """What was asked for does not exist (or is not visible to the one asking)."""


class Forbidden(PromiseEngineError):
    """It exists, but the one asking may not do this to it."""


class Malformed(PromiseEngineError):
    """The input cannot be read at all: malformed JSON, a cursor this service never issued."""


class Invalid(PromiseEngineError):
    """The input is readable but asks for what cannot be done; the message says why."""


class TooLarge(PromiseEngineError):
    """The request asks for more than a bound of this service allows (a period too long);
    the message names the bound and the setting that sets it."""


class Unavailable(PromiseEngineError):
    """The request is sound but cannot be served now: retry, or fix the configuration."""

    retry_after: int | None = None
    """Seconds after which trying again may succeed; None when only a fix will help."""


class OtherTeam(Forbidden):
    """The object belongs to a team other than the one the caller may act for."""

    def __init__(self, what: str, owner: str) -> None:
        super().__init__(f"{what} belongs to team '{owner}'")


class InvalidDefinition(Invalid):
    """Promise definitions that do not load; ``problems`` are ``FILE:LINE: message`` texts."""

    def __init__(self, message: str, problems: Iterable[Problem]) -> None:
        super().__init__(message)
        self.problems = [str(p) for p in sorted(problems)]
