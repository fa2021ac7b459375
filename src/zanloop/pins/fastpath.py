"""The hottest read, answered before routing when it can be: ``GET
/v1/contents/{content_id}/pins`` with an API key seen lately and a pinned list cached by this
process whose stamp still matches the database (see ``http.fastpath``).
"""

from __future__ import annotations

import re

from starlette.types import Scope

from zanloop.http.fastpath import FastRead, caller
from zanloop.kit.clock import utcnow
from zanloop.pins import service
from zanloop.pins.endpoints import cached_rendering

_PATH = re.compile(r"/v1/contents/([^/]{1,600})/pins")
_MAX_ID = 190


class PinnedListFastPath(FastRead):
    route = "/v1/contents/{content_id}/pins"

    @staticmethod
    def _cached_answer(scope: Scope) -> bytes | None:
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            return None
        content_id = match.group(1)  # ASGI paths arrive percent-decoded
        if not content_id or len(content_id) > _MAX_ID or "\x00" in content_id:
            return None
        found = caller(scope)
        if found is None:  # every scope may read the list; an unseen key is looked up
            return None
        principal, db = found
        listed = service.cached_pinned_list(db, principal.tenant_id, content_id, utcnow())
        if listed is None:
            return None
        return cached_rendering(principal.tenant_id, content_id, listed)
