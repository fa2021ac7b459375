"""A member's balance, answered before routing when it can be (``http.fastpath``): ``GET
/v1/loyalty/members/{user_id}/balance`` on SQLite, with a key seen lately whose scopes may read
it. One prepared query reads the tier and both accounts; a user who is not a member goes on to
the route (its 404)."""

from __future__ import annotations

import json
import re

from starlette.types import Scope

from zanloop.http.fastpath import FastRead, caller
from zanloop.loyalty.domain import available_owner, pending_owner
from zanloop.tenancy.domain import Scope as KeyScope

_PATH = re.compile(r"/v1/loyalty/members/([^/]{1,600})/balance")
_MAX_ID = 200
_QUERY = (
    "SELECT m.tier, COALESCE(a.balance, 0), COALESCE(a.pending_out, 0), COALESCE(p.balance, 0)"
    " FROM loyalty_members m"
    " LEFT JOIN ledger_accounts a"
    "  ON a.tenant_id = m.tenant_id AND a.owner = ? AND a.asset = 'POINTS'"
    " LEFT JOIN ledger_accounts p"
    "  ON p.tenant_id = m.tenant_id AND p.owner = ? AND p.asset = 'POINTS'"
    " WHERE m.tenant_id = ? AND m.user_id = ?"
)


class BalanceFastPath(FastRead):
    route = "/v1/loyalty/members/{user_id}/balance"

    @staticmethod
    def _cached_answer(scope: Scope) -> bytes | None:
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            return None
        user_id = match.group(1)  # ASGI paths arrive percent-decoded
        if not user_id or len(user_id) > _MAX_ID or "\x00" in user_id:
            return None
        found = caller(scope)
        if found is None:
            return None
        principal, db = found
        if not principal.allows(KeyScope.APP, KeyScope.MERCHANT, KeyScope.ANALYST):
            return None  # the route answers the 403
        row = (
            db.sqlite_reader()
            .execute(
                _QUERY,
                (available_owner(user_id), pending_owner(user_id), principal.tenant_id, user_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        tier, balance, held, pending = row
        # As the route's JSONResponse renders schemas.Balance.
        body = {
            "user_id": user_id,
            "available": balance - held,
            "pending": pending,
            "held": held,
            "tier": tier,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
