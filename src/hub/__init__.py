"""The golden-record store: canonical model, survivorship, merge/unmerge, history, outbox."""
