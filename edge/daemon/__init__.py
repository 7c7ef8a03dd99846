"""The recognition daemon: frame loop, tracker, decisions, durable MQTT delivery, systemd glue."""
