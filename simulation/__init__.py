"""The processing systems, simulated: realistic feeds of inbound case events.

``casegen`` writes the feed as JSON lines; ``kafka_feed`` adds the poison the
rules reject and publishes it to a topic. The demo, the benchmarks and the
tests share them; nothing in the service imports them.
"""
