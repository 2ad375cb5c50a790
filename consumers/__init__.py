"""Inbound messages (JSON Lines files and a Kafka topic) turned into case commands."""
