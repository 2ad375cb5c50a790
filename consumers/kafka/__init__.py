"""The Kafka channel: case events from a topic into the store, each exactly once in effect.

consumer.py holds the loop (and how exactly-once is kept), positions.py each
partition's position, dead_letter_publisher.py and dead_letter_schedule.py the
dead-letter topic, record_batches.py batches that cannot be decoded, lag.py
``casetrack consume --status``; settings.py what the clients are configured with.
"""
