"""Personal data at rest: field encryption, data keys wrapped by a key-encryption key,
and the keyed blind indexes that find a person without their plaintext (docs/privacy.md)."""
