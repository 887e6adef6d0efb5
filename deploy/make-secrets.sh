#!/bin/sh
# Makes every secret file docker-compose.yml reads, once, under ./secrets (mode 600); a
# file that exists is kept. Run from the repository root:
#   PARTA_SERVER_NAME=school.example.ru sh deploy/make-secrets.sh
# Then fix the lines marked CHANGE in secrets/*.yaml (public URLs) — docs/deploy.md.
set -eu
: "${PARTA_SERVER_NAME:?set PARTA_SERVER_NAME, e.g. school.example.ru}"
umask 077
mkdir -p secrets secrets/tls
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
keep() { [ -s "secrets/$1" ]; }
for name in postgres_password registration_shared_secret macaroon_secret_key form_secret \
            replication_secret turn_secret media_token_secret livekit_api_secret \
            bridge_as_token bridge_hs_token; do
  keep "$name" || rand > "secrets/$name"
done
pg=$(cat secrets/postgres_password)
media=$(cat secrets/media_token_secret)
lk=$(cat secrets/livekit_api_secret)
domain_re=$(printf '%s' "$PARTA_SERVER_NAME" | sed 's/\./\\\\./g')

# libpq's password file for Synapse (host:port:database:user:password).
keep synapse_pgpass || echo "postgres:5432:synapse:synapse:$pg" > secrets/synapse_pgpass

keep parta_module.yaml || cat > secrets/parta_module.yaml <<YAML
# The Parta module's block for Synapse (config/module.example.yaml lists every key).
modules:
  - module: synapse_module.PartaModule
    config:
      # With workers: the one process that runs the module's clean-up jobs.
      background_worker: main
      media:
        enabled: true
        token_secret: "$media"
        sfu_public_url: "https://lessons.$PARTA_SERVER_NAME/"   # CHANGE if elsewhere
        livekit:
          url: "wss://livekit.$PARTA_SERVER_NAME"               # CHANGE if elsewhere
          api_key: parta
          api_secret: "$lk"
YAML

keep livekit.yaml || cat > secrets/livekit.yaml <<YAML
port: 7880
rtc: {tcp_port: 7881, port_range_start: 50000, port_range_end: 60000, use_external_ip: true}
keys:
  parta: "$lk"
YAML

keep sfu.yaml || sed \
  -e "s|^token_secret:.*|token_secret: \"$media\"|" \
  -e "s|^public_url:.*|public_url: \"https://lessons.$PARTA_SERVER_NAME\"|" \
  -e "s|^homeserver_url:.*|homeserver_url: \"http://127.0.0.1:8008\"|" \
  -e "s|^data_dir:.*|data_dir: /data/sfu|" \
  config/sfu.example.yaml > secrets/sfu.yaml

keep broadcast.yaml || sed \
  -e "s|token_secret:.*|token_secret: \"$media\"|" \
  -e "s|listen_host:.*|listen_host: 0.0.0.0|" \
  -e "s|homeserver_url:.*|homeserver_url: http://synapse:8008|" \
  -e "s|data_dir:.*|data_dir: /data/broadcasts|" \
  config/broadcast.example.yaml > secrets/broadcast.yaml

# The bot's application-service registration, as bridge/registration.py writes it.
keep bridge_registration || cat > secrets/bridge_registration <<YAML
id: parta-bot
url: http://bridge:29340
as_token: "$(cat secrets/bridge_as_token)"
hs_token: "$(cat secrets/bridge_hs_token)"
sender_localpart: parta-bot
rate_limited: false
namespaces:
  users:
    - {exclusive: true, regex: "^@parta-bot:$domain_re\$"}
    - {exclusive: false, regex: "^@.*:$domain_re\$"}
  aliases: []
  rooms: []
YAML

keep bridge.yaml || sed \
  -e "s|url: http://127.0.0.1:8008|url: http://synapse:8008|" \
  -e "s|domain: localhost|domain: $PARTA_SERVER_NAME|" \
  -e "s|host: 127.0.0.1|host: 0.0.0.0|" \
  -e "s|^database:.*|database: postgres://synapse:$pg@postgres/parta_bot|" \
  -e "s|registration:.*|registration: /run/secrets/bridge_registration|" \
  config/bridge.example.yaml > secrets/bridge.yaml

echo "Secrets are in ./secrets. Still to do (docs/deploy.md): secrets/synapse_signing_key,"
echo "secrets/tls/fullchain.pem and privkey.pem, and server_name in deploy/synapse/homeserver.yaml."
