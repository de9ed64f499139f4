"""Typed engine errors, each carrying the HTTP status the Docker API gives it.

Docker clients decide what to raise from the status code alone (docker-py maps
404 to NotFound, 409 to Conflict ...), so the status travels with the error and
the API layer never has to guess::

    EngineError (500)            anything the engine could not do
    ├── InvalidParameter (400)   the request itself is wrong; fix it and retry
    ├── Forbidden (403)          the request is valid but not allowed
    ├── NotFound (404)           no such container / image / volume / exec
    ├── Conflict (409)           the object exists or is in the wrong state
    └── NotModified (304)        the object is already in the asked-for state
"""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine reports to a client."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(EngineError):
    status = 400


class Forbidden(EngineError):
    status = 403


class NotFound(EngineError):
    status = 404


class Conflict(EngineError):
    status = 409


class NotModified(EngineError):
    status = 304
