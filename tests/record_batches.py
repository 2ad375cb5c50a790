"""Record batches built byte by byte, as a faulty producer could send them."""

from __future__ import annotations

import struct

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c

CRC_AT = 17  # base offset (8), length (4), leader epoch (4), magic (1)
BROKEN = ("corrupt-gzip", "lz4-flag", "checksum")


def gzip_batch(values: list[bytes]) -> bytearray:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=DefaultRecordBatchBuilder.CODEC_GZIP,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for delta, value in enumerate(values):
        builder.append(delta, timestamp=None, key=None, value=value, headers=[])
    batch = bytearray(builder.build())
    assert DefaultRecordBatch(bytes(batch)).compression_type == builder.CODEC_GZIP
    return batch


def broken_batch(values: list[bytes], how: str) -> bytes:
    """A batch as a faulty producer could send it; the embedded broker stores it as it is."""
    batch = gzip_batch(values)
    header = DefaultRecordBatch.HEADER_STRUCT.size
    if how == "corrupt-gzip":  # compressed bytes damaged before the checksum was computed
        batch[header + (len(batch) - header) // 2] ^= 0x55
        struct.pack_into(">I", batch, CRC_AT, calc_crc32c(bytes(batch[CRC_AT + 4 :])))
    elif how == "lz4-flag":  # says lz4, holds gzip
        attributes = struct.unpack_from(">h", batch, CRC_AT + 4)[0]
        attributes = (attributes & ~0x07) | DefaultRecordBatchBuilder.CODEC_LZ4
        struct.pack_into(">h", batch, CRC_AT + 4, attributes)
        struct.pack_into(">I", batch, CRC_AT, calc_crc32c(bytes(batch[CRC_AT + 4 :])))
    else:  # "checksum": damaged after it
        batch[-3] ^= 0x55
    return bytes(batch)
