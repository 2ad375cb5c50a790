"""Finding the batch that does not decode in a fetched byte string, without a broker."""

from __future__ import annotations

import kafka.codec
import pytest
from kafka import TopicPartition

from consumers.kafka.record_batches import CodecsMissing, _undecodable_at, require_codecs
from tests.record_batches import BROKEN, broken_batch, gzip_batch

TP = TopicPartition("events", 3)
VALUES = [b'{"secret": "Jane Doe ' + bytes([n]) * 40 + b'"}' for n in range(65, 75)]


def placed(batch: bytes | bytearray, base_offset: int) -> bytes:
    """The batch as a broker returns it: with the base offset it assigned."""
    return base_offset.to_bytes(8, "big") + bytes(batch[8:])


@pytest.mark.parametrize("how", BROKEN)
def test_the_broken_batch_at_the_position_is_found_whole(how: str) -> None:
    good, bad = placed(gzip_batch(VALUES), 100), placed(broken_batch(VALUES, how), 110)
    found = _undecodable_at(TP, 113, good + bad + placed(gzip_batch(VALUES), 120))
    assert found is not None
    assert (found.partition, found.offset, found.next_offset, found.raw) == (TP, 113, 120, bad)
    assert found.error.kind == "undecodable_batch"
    assert "Jane" not in str(found.error) and "AAAA" not in str(found.error)


def test_a_batch_that_decodes_at_the_position_is_no_culprit() -> None:
    data = placed(gzip_batch(VALUES), 100) + placed(broken_batch(VALUES, "checksum"), 110)
    assert _undecodable_at(TP, 105, data) is None  # the consumer stops at the first one
    assert _undecodable_at(TP, 110, data) is not None
    assert _undecodable_at(TP, 0, b"") is None


def test_consuming_without_a_codec_library_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    require_codecs()
    monkeypatch.setattr(kafka.codec, "zstd", None)
    with pytest.raises(CodecsMissing, match="zstd"):
        require_codecs()
