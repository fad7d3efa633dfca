-- Runs once, when the postgres container initialises an empty data directory.
-- One database per service, each owned by the `socialops` role the services connect as
-- (POSTGRES_USER in docker-compose.yml).

CREATE DATABASE ingestion OWNER socialops;
CREATE DATABASE segmentation OWNER socialops;
CREATE DATABASE campaign OWNER socialops;
CREATE DATABASE sentiment OWNER socialops;
