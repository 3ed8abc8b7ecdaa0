"""API keys over HTTP (admin): list, create with an optional expiry, revoke.

The same rules as ``promise keys``: the key is in the creation's answer only, an admin key has
no team, and a team must be one of teams.yaml.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from api.deps import Admin, StateDep, aware
from api.schemas import KeyCreated, KeyIn, KeyOut
from engine.keys import KeyInfo, create_key, key_info, list_keys, revoke

router = APIRouter(tags=["keys"])


@router.get("/keys", response_model=list[KeyOut])
def get_keys(state: StateDep, _: Admin) -> list[KeyOut]:
    """Every key with its scopes, team, expiry and status (active, expired or revoked)."""
    return [_out(k) for k in list_keys(state.sessions)]


@router.post("/keys", response_model=KeyCreated, status_code=201)
def post_key(body: KeyIn, state: StateDep, _: Admin) -> KeyCreated:
    """Create a key; the answer holds it, once. 422 for an admin key with a team, a team
    not in teams.yaml, an expiry in the past or without offset, or a name in use."""
    aware({"expires_at": body.expires_at})
    key = create_key(
        state.sessions,
        body.name,
        list(body.scopes),
        body.team,
        teams=state.catalog.teams,
        expires_at=body.expires_at,
    )
    return KeyCreated(**_out(key_info(state.sessions, body.name)).model_dump(), key=key)


@router.delete("/keys/{name:path}", response_model=KeyOut)
def delete_key(name: str, state: StateDep, _: Admin) -> KeyOut:
    """Revoke a key: it stops working at once, and stays listed as revoked."""
    return _out(revoke(state.sessions, name))


def _out(key: KeyInfo) -> KeyOut:
    return KeyOut(**asdict(key), status=key.status)
