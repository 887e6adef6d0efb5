-- Runs once, when the PostgreSQL volume is empty (docker-entrypoint-initdb.d).
-- Synapse's database is POSTGRES_DB (synapse, UTF8 with C collation, as Synapse needs);
-- the school bot keeps its own tables in parta_bot.
CREATE DATABASE parta_bot OWNER synapse;
