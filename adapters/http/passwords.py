"""argon2id hashing of passwords and emailed codes, off the event loop.

Hashing is deliberately slow (tens of milliseconds), so it runs in the
thread pool; a miss on an unknown login still verifies against a dummy hash,
so timing does not tell whether an account exists.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.concurrency import run_in_threadpool

from adapters.http.settings import HasherCost


class Passwords:
    def __init__(self, cost: HasherCost) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_cost, parallelism=cost.parallelism
        )
        self._dummy = self._hasher.hash("casetrack: no such account")

    async def hash(self, secret: str) -> str:
        return await run_in_threadpool(self._hasher.hash, secret)

    async def verify(self, hashed: str | None, secret: str) -> bool:
        """True when ``secret`` matches; ``hashed`` None burns the same time and fails."""
        return await run_in_threadpool(self._verify, hashed, secret)

    def _verify(self, hashed: str | None, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed or self._dummy, secret) and hashed is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
