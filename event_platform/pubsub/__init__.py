"""Google Cloud Pub/Sub source: pull micro-batches into the landing folder, then ack.

See `event_platform.pubsub.consumer` for the delivery guarantees and the one-message-one-line rule.
"""
