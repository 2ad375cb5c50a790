"""Application numbers identify a case; each maps to a stable aggregate id."""

import re
from functools import lru_cache
from uuid import UUID, uuid5

# Anchored, so the contract's JSON Schema and the API's OpenAPI (whose patterns search)
# can take PATTERN.pattern as it is.
PATTERN = re.compile(r"^[A-Z][0-9]{9}$")
_NAMESPACE = UUID("6f1c3c7e-4a51-4a8e-9a0c-2f1d8f0b7c11")


class InvalidApplicationNumber(ValueError):
    """Raised for anything that is not one uppercase letter and nine digits."""

    def __init__(self) -> None:
        super().__init__("application_number must be one uppercase letter and nine digits")


def is_valid(value: object) -> bool:
    return isinstance(value, str) and PATTERN.fullmatch(value) is not None


@lru_cache(maxsize=262_144)
def case_id(application_number: str) -> UUID:
    """The aggregate id of a case: the same number always gives the same id."""
    if not is_valid(application_number):
        raise InvalidApplicationNumber()
    return uuid5(_NAMESPACE, application_number)
