"""The error hierarchy. Every expected failure is a ``ZanloopError`` and becomes an
RFC 9457 problem-details response; anything else reaching the client as a 500 is a bug.

    ZanloopError                    500 base, never raised directly
    ├── BadRequest                  400 malformed input the schema could not catch
    │   └── IdempotencyKeyMissing   400 a money-moving POST without Idempotency-Key
    ├── Unauthorized                401 missing or unknown API key
    ├── Forbidden                   403 key lacks the scope
    │   └── RiskBlocked             403 risk control blocked the action (reasons attached)
    ├── NotFound                    404 absent, or owned by another tenant
    ├── Conflict                    409 a business rule refuses the change
    │   ├── InvalidState            409 the object is not in a state that allows it
    │   ├── InsufficientFunds       409 an account would go below zero
    │   ├── DuplicateConflict       409 an id is reused for something different
    │   ├── PayerNotBound           409 paying needs a bound payment account
    │   ├── ContentNotEligible      409 the content accepts no paid pins
    │   └── IdempotencyKeyInFlight  409 the first request with this key still runs
    ├── Unprocessable               422 well-formed but semantically wrong (names a field)
    │   ├── IdempotencyKeyReused    422 the key was used with another request body
    │   └── InvalidDocument         422 a configuration document (risk policy) with errors
    └── ProviderError               502 the payment provider failed or answered nonsense
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ZanloopError(Exception):
    status_code = 500
    title = "Internal error"
    slug = "internal"
    # True: the request's changes so far are committed before the error is answered.
    keeps_changes = False

    def __init__(self, message: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        # Extra members of the problem-details body (RFC 9457 section 3.2).
        self.extensions: dict[str, object] = {}


class BadRequest(ZanloopError):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"


class IdempotencyKeyMissing(BadRequest):
    title = "Idempotency-Key required"
    slug = "idempotency-key-missing"


class Unauthorized(ZanloopError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(ZanloopError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class RiskBlocked(Forbidden):
    title = "Blocked by risk control"
    slug = "risk-blocked"
    # The decision that blocked is logged even though the action is refused.
    keeps_changes = True

    def __init__(self, message: str, *, decision_id: str, reasons: list[str]) -> None:
        super().__init__(message)
        self.extensions = {"decision_id": decision_id, "reasons": reasons}


class NotFound(ZanloopError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class Conflict(ZanloopError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class InvalidState(Conflict):
    title = "Invalid state"
    slug = "invalid-state"


class InsufficientFunds(Conflict):
    title = "Insufficient funds"
    slug = "insufficient-funds"


class DuplicateConflict(Conflict):
    title = "Duplicate identifier"
    slug = "duplicate"


class PayerNotBound(Conflict):
    title = "No payment account bound"
    slug = "payer-not-bound"


class ContentNotEligible(Conflict):
    title = "Content does not accept paid pins"
    slug = "content-not-eligible"


class CouponUnavailable(Conflict):
    """The coupon cannot be issued (stock, budget or per-user limit spent, template paused or
    over) or used (not the user's, not available, expired, below threshold, wrong store)."""

    title = "Coupon unavailable"
    slug = "coupon-unavailable"


class RedemptionRefused(Conflict):
    """A catalogue item cannot be redeemed (paused, out of stock, the member's limit spent)."""

    title = "Redemption refused"
    slug = "redemption-refused"


class IdempotencyKeyInFlight(Conflict):
    title = "Request with this Idempotency-Key is still running"
    slug = "idempotency-key-in-flight"


class Unprocessable(ZanloopError):
    status_code = 422
    title = "Unprocessable content"
    slug = "unprocessable"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, errors=[FieldError(field, message)] if field else None)


class IdempotencyKeyReused(Unprocessable):
    title = "Idempotency-Key reused with a different request"
    slug = "idempotency-key-reused"


class InvalidDocument(Unprocessable):
    title = "Invalid document"
    slug = "invalid-document"

    def __init__(self, message: str, *, errors: list[FieldError]) -> None:
        super().__init__(message)
        self.errors = errors


class ProviderError(ZanloopError):
    status_code = 502
    title = "Payment provider error"
    slug = "provider-error"


class NotificationRejected(ZanloopError):
    """A provider notification we refuse; answered in the provider's own error format so that
    it retries (WeChat Pay: 4xx/5xx with ``{"code": "FAIL", "message": ...}``)."""

    status_code = 400
    title = "Notification rejected"
    slug = "notification-rejected"

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code
