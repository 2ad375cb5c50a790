"""The roles a reader can hold on a file; every role filter (status view, history) checks them."""

from __future__ import annotations

from typing import Final, Literal, get_args

Role = Literal["principal_applicant", "sponsor", "representative"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)


def check(role: str) -> str:
    """``role`` when it is one of ROLES; a ValueError naming the known ones otherwise."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return role
