#!/bin/sh
# Prepares a fresh single-node Garage for examreg through its admin API (v2), idempotently:
# gives the node a role, imports the captures key and creates the bucket it may use.
# POSIX sh + curl only, so it runs in a curl image as a compose one-shot or a Kubernetes Job.
#
#   GARAGE_ADMIN_URL       e.g. http://garage:3903
#   GARAGE_ADMIN_TOKEN     or GARAGE_ADMIN_TOKEN_FILE
#   S3_KEY_ID / S3_KEY     or S3_KEY_ID_FILE / S3_KEY_FILE (the key biometrics uses)
#   S3_BUCKET              default examreg-biometrics
set -eu

from_file() { # VAR: the value of VAR, or of the file VAR_FILE names
  eval "value=\${$1:-}"
  eval "file=\${$1_FILE:-}"
  if [ -z "$value" ] && [ -n "$file" ]; then value=$(tr -d '\n' <"$file"); fi
  [ -n "$value" ] || { echo "garage-init: $1 or $1_FILE is required" >&2; exit 2; }
  printf '%s' "$value"
}

URL=${GARAGE_ADMIN_URL:-http://127.0.0.1:3903}
TOKEN=$(from_file GARAGE_ADMIN_TOKEN)
KEY_ID=$(from_file S3_KEY_ID)
KEY=$(from_file S3_KEY)
BUCKET=${S3_BUCKET:-examreg-biometrics}

api() { # METHOD PATH [BODY]
  if [ $# -ge 3 ]; then
    curl -sS -X "$1" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
      --data "$3" "$URL/v2/$2"
  else
    curl -sS -X "$1" -H "Authorization: Bearer $TOKEN" "$URL/v2/$2"
  fi
}
field() { # NAME: the first string or number value of "NAME" in the JSON on stdin
  tr -d ' \n' | sed -n "s/^[^\"]*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n1
}

i=0
until api GET GetClusterStatus >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 60 ] || { echo "garage-init: admin API not reachable" >&2; exit 1; }
  sleep 1
done

version=$(api GET GetClusterLayout | field version)
if [ "$version" = "0" ]; then
  node=$(api GET GetClusterStatus | tr -d ' \n' | sed -n 's/.*"nodes":\[{"id":"\([0-9a-f]*\)".*/\1/p')
  [ -n "$node" ] || { echo "garage-init: no node id" >&2; exit 1; }
  api POST UpdateClusterLayout \
    "{\"roles\":[{\"id\":\"$node\",\"zone\":\"local\",\"capacity\":10000000000,\"tags\":[]}]}" >/dev/null
  api POST ApplyClusterLayout '{"version":1}' >/dev/null
  echo "garage-init: layout applied on node ${node%"${node#????????}"}…"
fi

if ! api GET "GetKeyInfo?id=$KEY_ID" | grep -q "\"accessKeyId\""; then
  api POST ImportKey \
    "{\"accessKeyId\":\"$KEY_ID\",\"secretAccessKey\":\"$KEY\",\"name\":\"examreg\"}" >/dev/null
  echo "garage-init: key imported"
fi

bucket=$(api GET "GetBucketInfo?globalAlias=$BUCKET" | field id)
if [ -z "$bucket" ]; then
  bucket=$(api POST CreateBucket "{\"globalAlias\":\"$BUCKET\"}" | field id)
  echo "garage-init: bucket $BUCKET created"
fi
api POST AllowBucketKey \
  "{\"bucketId\":\"$bucket\",\"accessKeyId\":\"$KEY_ID\",\"permissions\":{\"read\":true,\"write\":true,\"owner\":true}}" >/dev/null
echo "garage-init: ready"
