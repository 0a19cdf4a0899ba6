-- Runs once, when the hub's PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- The hub schema itself is created by `mdh db migrate` (the migrate service), never here.
-- demo_truth: the demo world's ground truth (which source rows are the same customer), written
-- by infra/seed_sources.py and read by quality reports; not part of a production deployment.
CREATE DATABASE demo_truth;
