# One image for Parta's Python processes; the command picks the part.
#   synapse (with the module):  python -m synapse.app.homeserver -c /data/homeserver.yaml
#   sfu:                        python -m sfu -c /config/sfu.yaml
#   broadcast relay (alone):    python -m broadcast_relay -c /config/broadcast.yaml --section broadcast
#   bridge:                     python -m bridge -c /config/bridge.yaml
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY parta_common parta_common
COPY synapse_module synapse_module
COPY sfu sfu
COPY broadcast_relay broadcast_relay
COPY bridge bridge
RUN pip install --no-cache-dir '.[module,sfu,bridge]'
USER 991:991
