"""MLflow's error shape: ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…"}``.

Every MLflow-compatible route answers a client mistake with this body and the status
MLflow gives its code (``ERROR_CODE_TO_HTTP_STATUS`` in mlflow/exceptions.py). The
``mlflow`` client reads ``error_code`` (``get_experiment_by_name`` turns
RESOURCE_DOES_NOT_EXIST into ``None``), so the codes are part of the protocol.
"""

from __future__ import annotations

from conveyor.errors import (
    AlreadyExists,
    Conflict,
    ConveyorError,
    InvalidInput,
    NotFound,
    SchemaOutdated,
    ServiceUnavailable,
    StorageError,
)

STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 409,
    "RESOURCE_CONFLICT": 409,
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_LIMIT_EXCEEDED": 413,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


class ApiError(Exception):
    """An MLflow-shaped error answer: ``error_code`` names the kind, ``status`` follows from it."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = STATUS[error_code]

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


def from_conveyor(error: ConveyorError) -> ApiError:
    """The one place a domain error becomes an MLflow error code."""
    text = str(error)
    if isinstance(error, NotFound):
        return ApiError("RESOURCE_DOES_NOT_EXIST", text)
    if isinstance(error, AlreadyExists):
        return ApiError("RESOURCE_ALREADY_EXISTS", text)
    if isinstance(error, InvalidInput):
        return ApiError("INVALID_PARAMETER_VALUE", text)
    if isinstance(error, Conflict):
        return ApiError("INVALID_STATE", text)
    if isinstance(error, (SchemaOutdated, StorageError, ServiceUnavailable)):
        return ApiError("TEMPORARILY_UNAVAILABLE", text)
    return ApiError("INTERNAL_ERROR", text)
