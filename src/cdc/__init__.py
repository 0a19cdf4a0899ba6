"""Change data in and out of the hub: Debezium, Kafka, replay; the outbox relay and targets."""
