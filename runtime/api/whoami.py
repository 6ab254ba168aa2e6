"""``GET /api/v1/whoami``: the caller's name, tenant and role (what a UI may offer)."""

from __future__ import annotations

from quart import Response

from runtime.api.routing import Api, Call, json_response
from runtime.api.schemas import WhoAmI
from runtime.api.state import ApiState

TAG = "system"


def add_routes(api: Api, state: ApiState) -> None:
    @api.route("GET", "/whoami", summary="Who the token is", tag=TAG, responses={200: WhoAmI})
    async def whoami(call: Call) -> Response:
        """The token's name, tenant and role; ``auth`` is false when the API has no tokens."""
        p = call.principal
        who = WhoAmI(name=p.name, tenant_id=p.tenant_id, role=p.role.value, auth=api.auth.enabled)
        return json_response(who)
