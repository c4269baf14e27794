# shellcheck shell=bash
# Shared by deploy/up, deploy/down and deploy/test: install what is missing and start the local
# stack (Postgres, Redis, Garage, maildev) on loopback. Every step is idempotent: a second run
# reuses what is installed and running.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXAMREG_HOME=${EXAMREG_HOME:-$HOME/.cache/examreg}
STATE=$EXAMREG_HOME/stack
SECRETS=$EXAMREG_HOME/secrets
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$EXAMREG_HOME/target}
GARAGE_VERSION=2.5.0
MAILDEV_VERSION=2.2.1
BUF_VERSION=1.75.0
# The Python tools (linters of the deployment files, schemathesis) from PyPI, in a virtualenv
# of the project's: deploy/requirements.txt pins each with its hashes (deploy/pin-python).
PYTHON_TOOLS=$ROOT/deploy/requirements.txt
# Where deploy/mrz-model puts the document reader's recognition network.
MRZ_MODEL=$EXAMREG_HOME/models/ppocrv4-rec.onnx
# Where deploy/axe-core puts the accessibility rules the browser tests run.
AXE_CORE=$EXAMREG_HOME/node/axe.min.js
# The ports the stack's Postgres and Redis take; another free port for either when the machine
# already runs one there (the stack refuses to take over a server it did not start).
PG_PORT=${EXAMREG_PG_PORT:-5432}
REDIS_PORT=${EXAMREG_REDIS_PORT:-6379}
# The local Redis Cluster (three masters, no replicas): deploy/test runs the Redis-backed
# tests against it too, `deploy/up --redis-cluster` points the suite at it.
REDIS_CLUSTER_PORTS=(7001 7002 7003)
# Redis takes one ACL user with a password, as production's does (its default user is off, so
# nothing unauthenticated gets in), and TLS only, with the stack's certificate (make_tls):
# every URL (rediss://) and redis-cli call of the stack names both.
REDIS_USER=examreg
REDIS_PASSWORD=examreg
REDIS_CLUSTER_URL=rediss+cluster://$REDIS_USER:$REDIS_PASSWORD@127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
mkdir -p "$STATE" "$SECRETS"

# (Within 30 s: a TLS client waits for ever on a server that speaks plaintext.)
rcli() {
  timeout 30 redis-cli --tls --cacert "$SECRETS/tls_ca.crt" --no-auth-warning --user "$REDIS_USER" \
    --pass "$REDIS_PASSWORD" "$@"
}
# How a stack's Redis listens on a port: TLS only, with the stack's certificate (its clients
# verify it; they present none).
redis_tls() { # port
  printf '%s\n' --port 0 --tls-port "$1" --tls-cert-file "$SECRETS/tls.crt" --tls-key-file "$SECRETS/tls.key" \
    --tls-ca-cert-file "$SECRETS/tls_ca.crt" --tls-auth-clients no
}
# The ACL a stack's Redis server starts with. The default user is off (no connection is
# anyone's until it authenticates) but keeps its permissions: Redis before redis/redis#14545
# replays the append-only file's MULTI/EXEC (every Lua script's writes among them) as the
# default user and silently drops each one that user may not run.
redis_acl() {
  printf '%s\n' --user default off '~*' '&*' '+@all' --user "$REDIS_USER" on ">$REDIS_PASSWORD" '~*' '&*' '+@all'
}
# Waits until the Redis on a port answers (it refuses commands while loading its AOF).
redis_ready() { # port name
  local i
  for ((i = 0; i < 600; i++)); do [ "$(rcli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.1; done
  say "$2 on port $1 did not finish loading"; return 1
}
# A Redis of the stack's started by an earlier version of it (plaintext, with or without its
# ACL user): shut down (its data stays in its append-only file) to be started again as today's.
stale_redis() { # port
  # Today's answers TLS (NOAUTH without the user); an earlier one did not answer TLS at all.
  case "$(timeout 2 redis-cli --tls --cacert "$SECRETS/tls_ca.crt" -p "$1" ping 2>&1)" in
    PONG | *NOAUTH*) return 1 ;;
  esac
  local old
  for old in "" "--no-auth-warning --user $REDIS_USER --pass $REDIS_PASSWORD"; do
    # shellcheck disable=SC2086 # the options are words
    if [ "$(timeout 2 redis-cli -p "$1" $old ping 2>/dev/null)" = PONG ]; then
      timeout 10 redis-cli -p "$1" $old shutdown >/dev/null 2>&1
      return 0
    fi
  done
  return 1
}
say() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port name [seconds]
  local i
  for ((i = 0; i < ${3:-60} * 10; i++)); do listening "$1" && return 0; sleep 0.1; done
  say "$2 did not start on port $1"; return 1
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian's Chromium and its WebDriver, for the browser tests (a downloaded browser is not
# possible on a closed network).
install_browser() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    say "installing chromium and chromium-driver (browser tests)"
    apt_install chromium chromium-driver
  fi
  # axe-core, which the browser tests run on every screen (pinned, checksummed).
  "$ROOT/deploy/axe-core" "$AXE_CORE"
}

# promtool, for the alert rules' checks and unit tests: unpacked from Debian's prometheus
# package (no Prometheus server is installed or started).
install_promtool() {
  [ -x "$EXAMREG_HOME/bin/promtool" ] && return 0
  say "installing promtool (from Debian's prometheus package)"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  local dl; dl=$(mktemp -d)
  chmod 777 "$dl"
  (cd "$dl" && apt-get download -qq prometheus >/dev/null 2>&1)
  dpkg-deb -x "$dl"/prometheus_*.deb "$dl/x"
  mkdir -p "$EXAMREG_HOME/bin"
  install -m 755 "$dl/x/usr/bin/promtool" "$EXAMREG_HOME/bin/promtool"
  rm -rf "$dl"
}

install_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v npm >/dev/null || missing+=(nodejs npm)
  # OCR-B, in which the tests print the documents' machine-readable zones.
  [ -f /usr/share/fonts/opentype/ocr-b/OCRB.otf ] || missing+=(fonts-ocr-b)
  # ISO 3166-1 with its Russian and Kazakh names (deploy/countries).
  [ -f /usr/share/locale/kk/LC_MESSAGES/iso_3166-1.mo ] || missing+=(iso-codes)
  if [ ${#missing[@]} -gt 0 ]; then say "installing ${missing[*]}"; apt_install "${missing[@]}"; fi
  if ! command -v garage >/dev/null || ! garage --version 2>/dev/null | grep -q ":$GARAGE_VERSION "; then
    say "installing garage $GARAGE_VERSION (cargo install, several minutes the first time)"
    CARGO_TARGET_DIR=$EXAMREG_HOME/garage-target cargo install --locked garage --version "$GARAGE_VERSION" >&2
  fi
  if [ ! -x "$EXAMREG_HOME/node/node_modules/.bin/maildev" ]; then
    say "installing maildev $MAILDEV_VERSION and buf $BUF_VERSION from npm"
    npm install --silent --no-audit --no-fund --prefix "$EXAMREG_HOME/node" \
      "maildev@$MAILDEV_VERSION" "@bufbuild/buf@$BUF_VERSION" >&2
  fi
  # The network that reads the documents' machine-readable zones (pinned, checksummed).
  "$ROOT/deploy/mrz-model" "$MRZ_MODEL"
  local pinned; pinned=$(sha256sum <"$PYTHON_TOOLS")
  if [ "$(cat "$EXAMREG_HOME/venv/.tools" 2>/dev/null)" != "$pinned" ]; then
    say "installing the Python tools of deploy/requirements.txt from PyPI (hashes checked)"
    python3 -m venv "$EXAMREG_HOME/venv"
    "$EXAMREG_HOME/venv/bin/pip" install -q --disable-pip-version-check --require-hashes \
      -r "$PYTHON_TOOLS" >&2
    echo "$pinned" >"$EXAMREG_HOME/venv/.tools"
  fi
}

# The Debian cluster configured on PG_PORT, as "version name log-file"; empty when none is.
pg_cluster() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port {print $1, $2, $7; exit}'
}

start_postgres() {
  local version cluster log
  read -r version cluster log < <(pg_cluster) || true
  if ! listening $PG_PORT; then
    if [ -z "${cluster:-}" ]; then
      # No cluster on the port (Debian's package makes `main` on 5432): one of the stack's own.
      version=$(ls /usr/lib/postgresql | sort -n | tail -1)
      cluster=examreg
      say "creating postgres cluster $version/$cluster on port $PG_PORT"
      as_root pg_createcluster "$version" "$cluster" --port "$PG_PORT" >/dev/null
    fi
    say "starting postgres $version/$cluster"
    as_root pg_ctlcluster "$version" "$cluster" start
    wait_port $PG_PORT postgres
    # Started here, so deploy/down may stop it (a Postgres that ran before is left running).
    mkdir -p "$STATE" && touch "$STATE/postgres.started"
  elif [ ! -f "$STATE/postgres.started" ] &&
    [ "$(as_root runuser -u postgres -- psql -qtA -p $PG_PORT -c "SELECT 1 FROM pg_roles WHERE rolname = 'examreg'" 2>/dev/null)" != 1 ]; then
    say "a Postgres that the stack did not start answers on 127.0.0.1:$PG_PORT, and it has no"
    say "examreg role: the stack will not add its role and databases to it. Stop it, or give the"
    say "stack a port of its own (a cluster of its own is made there): EXAMREG_PG_PORT=5433 deploy/up"
    say "(deploy/test and deploy/down read the same variable)."
    return 1
  fi
  postgres_tls "$version" "$cluster"
  # One login role for the local stack; each service gets its own database.
  as_root runuser -u postgres -- psql -qtA -p $PG_PORT -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'examreg') THEN
       CREATE ROLE examreg LOGIN CREATEDB PASSWORD 'examreg'; END IF; END \$\$;" >/dev/null
  local db
  for db in examreg_identity examreg_biometrics examreg_profile; do
    if [ -z "$(as_root runuser -u postgres -- psql -qtA -p $PG_PORT -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      as_root runuser -u postgres -- createdb -p $PG_PORT -O examreg "$db"
    fi
  done
}

start_redis() {
  if listening $REDIS_PORT; then
    # Ours if its pid file names a live process; another Redis keeps its data to itself.
    if ! [ -f "$STATE/redis.pid" ] || ! kill -0 "$(cat "$STATE/redis.pid")" 2>/dev/null; then
      say "a Redis that the stack did not start answers on 127.0.0.1:$REDIS_PORT: the stack will not"
      say "write to it. Stop it, or give the stack a port of its own: EXAMREG_REDIS_PORT=6380 deploy/up"
      say "(deploy/test and deploy/down read the same variable)."
      return 1
    fi
    stale_redis $REDIS_PORT || return 0
    say "restarting redis with its ACL user and TLS"
    local i; for ((i = 0; i < 50; i++)); do listening $REDIS_PORT || break; sleep 0.1; done
  fi
  say "starting redis (AOF on)"
  mkdir -p "$STATE/redis"
  local acl tls; mapfile -t acl < <(redis_acl); mapfile -t tls < <(redis_tls $REDIS_PORT)
  redis-server --bind 127.0.0.1 "${tls[@]}" --appendonly yes --appendfsync everysec \
    --dir "$STATE/redis" --daemonize yes --pidfile "$STATE/redis.pid" \
    --logfile "$STATE/redis.log" --save "" "${acl[@]}"
  wait_port $REDIS_PORT redis
  redis_ready $REDIS_PORT redis
}

# Three cluster-enabled servers on loopback, joined once by `redis-cli --cluster create`
# (the cluster's state lives in each node's nodes.conf, so a restart rejoins by itself).
start_redis_cluster() {
  local port started="" acl tls
  mapfile -t acl < <(redis_acl)
  # A cluster an earlier version of the stack made in plaintext holds only the tests' keys:
  # it is made again, with TLS between its nodes too.
  if [ ! -f "$STATE/redis-cluster/tls" ]; then
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
      if [ -f "$STATE/redis-cluster/$port.pid" ]; then stale_redis "$port" || true; fi
    done
    local i
    for ((i = 0; i < 50; i++)); do
      listening "${REDIS_CLUSTER_PORTS[0]}" || listening "${REDIS_CLUSTER_PORTS[1]}" ||
        listening "${REDIS_CLUSTER_PORTS[2]}" || break
      sleep 0.1
    done
    rm -rf "$STATE/redis-cluster"
    mkdir -p "$STATE/redis-cluster" && touch "$STATE/redis-cluster/tls"
  fi
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if listening "$port"; then
      local pid="$STATE/redis-cluster/$port.pid" i
      if [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && ! stale_redis "$port"; then continue; fi
      for ((i = 0; i < 50; i++)); do listening "$port" || break; sleep 0.1; done
    fi
    if listening "$port"; then
      say "port $port (a node of the stack's Redis Cluster) is taken by a server the stack did not"
      say "start: stop it, or free ports ${REDIS_CLUSTER_PORTS[*]}."
      return 1
    fi
    mkdir -p "$STATE/redis-cluster/$port"
    mapfile -t tls < <(redis_tls "$port")
    redis-server --bind 127.0.0.1 "${tls[@]}" --tls-cluster yes --tls-replication yes --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --appendonly yes --appendfsync everysec --save "" \
      --dir "$STATE/redis-cluster/$port" --daemonize yes \
      --pidfile "$STATE/redis-cluster/$port.pid" --logfile "$STATE/redis-cluster/$port.log" \
      "${acl[@]}"
    started=1
  done
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    wait_port "$port" "redis cluster node"
    redis_ready "$port" "redis cluster node"
  done
  if [ -n "$started" ]; then say "redis cluster nodes started on ${REDIS_CLUSTER_PORTS[*]}"; fi
  if ! rcli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q '^cluster_state:ok'; then
    local known
    known=$(rcli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info 2>/dev/null | awk -F: '/cluster_known_nodes/{print $2+0}')
    if [ "${known:-0}" -le 1 ]; then # a new node knows only itself
      say "creating the redis cluster"
      local nodes=()
      for port in "${REDIS_CLUSTER_PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
      rcli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    fi
    local i
    for ((i = 0; i < 100; i++)); do
      rcli -p "${REDIS_CLUSTER_PORTS[0]}" cluster info | grep -q '^cluster_state:ok' && return 0
      sleep 0.1
    done
    say "the redis cluster did not become ready"; return 1
  fi
}

stop_redis_cluster() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if [ -f "$STATE/redis-cluster/$port.pid" ]; then
      rcli -p "$port" shutdown >/dev/null 2>&1 || true
      rm -f "$STATE/redis-cluster/$port.pid"
    fi
  done
}

garage_cfg() { echo "$STATE/garage.toml"; }
start_garage() {
  local cfg; cfg=$(garage_cfg)
  if [ ! -f "$cfg" ]; then
    mkdir -p "$STATE/garage/meta" "$STATE/garage/data"
    cat >"$cfg" <<TOML
metadata_dir = "$STATE/garage/meta"
data_dir = "$STATE/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:3901"
rpc_public_addr = "127.0.0.1:3901"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:3900"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:3903"
admin_token = "$(openssl rand -hex 24)"
TOML
  fi
  if ! listening 3900; then
    say "starting garage"
    nohup garage -c "$cfg" server >"$STATE/garage.log" 2>&1 &
    echo $! >"$STATE/garage.pid"
    wait_port 3900 garage
    wait_port 3903 garage-admin
  fi
  # The same idempotent admin-API script the compose file and the Kubernetes Job run.
  GARAGE_ADMIN_URL=http://127.0.0.1:3903 \
    GARAGE_ADMIN_TOKEN="$(sed -n 's/^admin_token = "\(.*\)"/\1/p' "$cfg")" \
    S3_KEY_ID_FILE="$SECRETS/s3_key_id" S3_KEY_FILE="$SECRETS/s3_key" \
    sh "$ROOT/deploy/garage-init.sh" >/dev/null
}

start_maildev() {
  listening 1080 && return 0
  say "starting maildev"
  nohup "$EXAMREG_HOME/node/node_modules/.bin/maildev" --ip 127.0.0.1 --smtp 1025 --web 1080 \
    >"$STATE/maildev.log" 2>&1 &
  echo $! >"$STATE/maildev.pid"
  wait_port 1025 maildev-smtp
  wait_port 1080 maildev-web
}

# Keys and secrets of the local stack, made once. Production mounts its own (*_FILE).
make_secrets() {
  [ -f "$SECRETS/identity_signing_key.pem" ] || openssl genpkey -algorithm ed25519 -out "$SECRETS/identity_signing_key.pem"
  [ -f "$SECRETS/verification_proof_key.pem" ] || openssl genpkey -algorithm ed25519 -out "$SECRETS/verification_proof_key.pem"
  openssl pkey -in "$SECRETS/verification_proof_key.pem" -pubout -out "$SECRETS/verification_proof_public.pem"
  [ -f "$SECRETS/verification_code_key" ] || openssl rand -hex 32 >"$SECRETS/verification_code_key"
  [ -f "$SECRETS/gateway_pow_key" ] || openssl rand -hex 32 >"$SECRETS/gateway_pow_key"
  # Garage's own (the compose file and the cluster read them; the local stack keeps its
  # config under $STATE).
  [ -f "$SECRETS/garage_rpc_secret" ] || openssl rand -hex 32 >"$SECRETS/garage_rpc_secret"
  [ -f "$SECRETS/garage_admin_token" ] || openssl rand -hex 24 >"$SECRETS/garage_admin_token"
  if [ ! -f "$SECRETS/s3_key" ]; then
    # The key biometrics uses: Garage key ids are GK + 24 hex digits, secrets 64.
    echo "GK$(openssl rand -hex 12)" >"$SECRETS/s3_key_id"
    openssl rand -hex 32 >"$SECRETS/s3_key"
  fi
  # The biometrics master key of the local stack (id:hex); production mounts its own.
  [ -f "$SECRETS/biometrics_master_keys" ] || echo "dev$(date +%Y%m%d):$(openssl rand -hex 32)" >"$SECRETS/biometrics_master_keys"
  local client
  for client in gateway verification biometrics profile support reviewer dpo operator; do
    [ -f "$SECRETS/${client}_client_secret" ] || openssl rand -hex 24 >"$SECRETS/${client}_client_secret"
  done
  # identity's clients with the hashes of their secrets: the gateway's; the services' own,
  # which only open the revocation feed; and the staff's tools, one per job, each naming the
  # person at the keyboard on every call ("staff": true): the support desk, the document
  # reviewers, the data-protection officer, and the operators (erasure, the directories, the
  # statistics).
  local gw vf bi pr su re dp op
  sha() { tr -d '\n' <"$SECRETS/$1_client_secret" | sha256sum | cut -d' ' -f1; }
  gw=$(sha gateway) vf=$(sha verification) bi=$(sha biometrics) pr=$(sha profile)
  su=$(sha support) re=$(sha reviewer) dp=$(sha dpo) op=$(sha operator)
  cat >"$SECRETS/identity_service_clients.json" <<JSON
[{"id":"gateway","secret_sha256":"$gw","scopes":["accounts:create","accounts:read","accounts:recover","sessions:create","verification:send","verification:confirm","revocations:watch"]},
 {"id":"verification","secret_sha256":"$vf","scopes":["revocations:watch"]},
 {"id":"biometrics","secret_sha256":"$bi","scopes":["revocations:watch"]},
 {"id":"profile","secret_sha256":"$pr","scopes":["revocations:watch"]},
 {"id":"support","secret_sha256":"$su","staff":true,"scopes":["support:write","accounts:lookup","accounts:read","registrations:read","biometrics:status","profile:read"]},
 {"id":"reviewer","secret_sha256":"$re","staff":true,"scopes":["review:write","biometrics:read"]},
 {"id":"dpo","secret_sha256":"$dp","staff":true,"scopes":["audit:read","accounts:lookup","accounts:read","profile:read","biometrics:status"]},
 {"id":"operator","secret_sha256":"$op","staff":true,"scopes":["people:erase","accounts:delete","directory:admin","stats:read","registrations:read"]}]
JSON
  make_tls
  chmod 600 "$SECRETS"/*
}

# The local stack's certificate authority (tls_ca.crt) and the one certificate every server of
# the stack presents, for TLS on every connection: the services' gRPC (which also present it as
# clients: mutual TLS), Postgres and Redis. It names localhost and 127.0.0.1, `replicas` (the
# name a client checks for a listed set of replicas) and the compose file's hosts; it is made
# again when these change or a month before it expires.
TLS_NAMES=DNS:localhost,IP:127.0.0.1,DNS:replicas,DNS:identity,DNS:verification,DNS:biometrics,DNS:profile,DNS:gateway,DNS:postgres,DNS:redis
make_tls() {
  if [ ! -f "$SECRETS/tls_ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=examreg local CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$SECRETS/tls_ca.key" -out "$SECRETS/tls_ca.crt" 2>/dev/null
    rm -f "$SECRETS/tls.crt"
  fi
  if [ "$(cat "$SECRETS/tls.names" 2>/dev/null)" != "$TLS_NAMES" ] ||
    ! openssl x509 -checkend 2592000 -noout -in "$SECRETS/tls.crt" >/dev/null 2>&1; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=examreg local" \
      -keyout "$SECRETS/tls.key" -out "$SECRETS/tls.csr" 2>/dev/null
    openssl x509 -req -in "$SECRETS/tls.csr" -CA "$SECRETS/tls_ca.crt" -CAkey "$SECRETS/tls_ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 397 -out "$SECRETS/tls.crt" -extfile <(
        printf '%s\n' "subjectAltName=$TLS_NAMES" "basicConstraints=critical,CA:FALSE" \
          "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth,clientAuth"
      ) 2>/dev/null
    rm -f "$SECRETS/tls.csr"
    echo "$TLS_NAMES" >"$SECRETS/tls.names"
  fi
}

# Postgres serves TLS with the stack's certificate (a copy beside its configuration, where the
# postgres user reads it); clients choose (the stack's URLs ask for verify-full).
postgres_tls() { # version cluster
  local dir=/etc/postgresql/${1:-}/${2:-}
  if [ -z "${1:-}" ] || [ -z "${2:-}" ] || [ ! -d "$dir" ]; then return 0; fi
  if ! as_root cmp -s "$SECRETS/tls.crt" "$dir/examreg-tls.crt" ||
    ! as_root cmp -s "$SECRETS/tls.key" "$dir/examreg-tls.key"; then
    as_root install -o postgres -g postgres -m 600 "$SECRETS/tls.crt" "$dir/examreg-tls.crt"
    as_root install -o postgres -g postgres -m 600 "$SECRETS/tls.key" "$dir/examreg-tls.key"
  fi
  local current
  current=$(as_root runuser -u postgres -- psql -qtA -p $PG_PORT -c "SHOW ssl_cert_file")
  if [ "$current" != "$dir/examreg-tls.crt" ]; then
    as_root runuser -u postgres -- psql -qtA -p $PG_PORT >/dev/null <<SQL
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$dir/examreg-tls.crt';
ALTER SYSTEM SET ssl_key_file = '$dir/examreg-tls.key';
SQL
  fi
  # Read again every time: a renewed certificate is served without a restart.
  as_root runuser -u postgres -- psql -qtA -p $PG_PORT -c "SELECT pg_reload_conf()" >/dev/null
}

start_infra() {
  install_packages
  make_secrets
  start_postgres
  start_redis
  start_garage
  start_maildev
}

stop_infra() {
  local name
  for name in garage maildev; do
    if [ -f "$STATE/$name.pid" ]; then kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true; rm -f "$STATE/$name.pid"; fi
  done
  if [ -f "$STATE/redis.pid" ]; then rcli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true; rm -f "$STATE/redis.pid"; fi
  stop_redis_cluster
  # Only a Postgres that start_postgres started: one that ran before stays as it was.
  if [ -f "$STATE/postgres.started" ]; then
    local version cluster log
    read -r version cluster log < <(pg_cluster) || true
    [ -z "${cluster:-}" ] || as_root pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
    rm -f "$STATE/postgres.started"
  fi
}

export PATH="$EXAMREG_HOME/bin:$EXAMREG_HOME/node/node_modules/.bin:$HOME/.cargo/bin:$EXAMREG_HOME/venv/bin:$PATH"
