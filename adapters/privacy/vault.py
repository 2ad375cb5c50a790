"""What a process needs to seal, open and find personal data: where the key-encryption
key is, and the server secret that keys the blind indexes. Plain values, so that it
pickles (a rebuild's worker processes open their own stores with it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from adapters.privacy.blind_index import BlindIndex
from adapters.privacy.kek import LocalKek, local_kek, read_kek


@dataclass(frozen=True)
class Vault:
    kek_file: Path
    secret: bytes = field(repr=False)
    generate: bool = False  # make the KEK file when missing (the embedded default only)
    previous_kek_file: Path | None = None  # the KEK being rotated away from, if any

    @cached_property
    def kek(self) -> LocalKek:
        return local_kek(self.kek_file) if self.generate else read_kek(self.kek_file)

    @cached_property
    def previous_keks(self) -> tuple[LocalKek, ...]:
        return () if self.previous_kek_file is None else (read_kek(self.previous_kek_file),)

    @cached_property
    def blind_index(self) -> BlindIndex:
        return BlindIndex(self.secret)

    def __getstate__(self) -> dict[str, object]:  # the cached key objects stay behind
        return {
            "kek_file": self.kek_file,
            "secret": self.secret,
            "generate": self.generate,
            "previous_kek_file": self.previous_kek_file,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
