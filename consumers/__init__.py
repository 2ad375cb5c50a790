"""Inbound messages (files today, Kafka next) turned into case commands."""
