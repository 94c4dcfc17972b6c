#!/usr/bin/env bash
# Peak memory of wagate applying one signed delivery of N `{}` messages (issue 17,
# defect 3): starts the binary on a fresh data directory, posts the body with curl,
# waits until it is applied, then posts one more delivery and waits for it too (so
# processing goes on), and prints VmHWM (peak RSS) and VmRSS from /proc.
#
#   scripts/peak-rss.sh [binary] [count] [shape]  # defaults: target/release/wagate 1300000 messages
#
# shape `messages`: one change of `count` messages that are only `{}` (1,300,000 make
# a 3.9 MB body: under the 4 MiB WAGATE_MAX_BODY); shape `event`: one account event
# whose value is an array of `count` `{"a":0}` (one item, as big as the body allows:
# 500,000 make 4 MB).
set -euo pipefail
bin=${1:-target/release/wagate}
n=${2:-1300000}
shape=${3:-messages}
secret=peak_rss_secret
token=peak-rss-api-token-0123456789
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# The body and its signature.
python3 - "$n" "$dir/flood.json" "$dir/one.json" "$shape" <<'PY'
import json, sys, time
n, flood, one, shape = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def body(messages):
    return ('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
            '"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},'
            '"messages":[' + messages + ']}}]}]}')
if shape == "event":
    open(flood, "w").write('{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update",'
                           '"value":{"event":"FLOOD","x":[' + ",".join(['{"a":0}'] * n) + ']}}]}]}')
else:
    open(flood, "w").write(body(",".join(["{}"] * n)))
msg = {"from": "16505551234", "id": "wamid.PEAKRSS", "timestamp": str(int(time.time())),
       "type": "text", "text": {"body": "after the flood"}}
open(one, "w").write(body(json.dumps(msg)))
PY
sign() { python3 -c 'import hmac,hashlib,sys; print("sha256=" + hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$secret" "$1"; }

WAGATE_DATA_DIR="$dir/data" WAGATE_LISTEN=127.0.0.1:0 META_APP_SECRET="$secret" \
  WAGATE_API_TOKEN="$token" RUST_LOG=info "$bin" serve >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  addr=$(sed -n 's/.*wagate listening.*addr=\([^ ]*\).*/\1/p' "$dir/log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$dir/log"; echo "wagate did not start" >&2; exit 1; }
rss() { awk -v k="$1:" '$1 == k { printf "%d", $2 / 1024 }' "/proc/$pid/status"; }
idle=$(rss VmRSS)

post() {
  curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -H "x-hub-signature-256: $(sign "$1")" --data-binary "@$1" "http://$addr/webhook"
}
# Waits until everything journaled is applied; fails if wagate died meanwhile.
caught_up() {
  for _ in $(seq 6000); do
    kill -0 "$pid" 2>/dev/null || { tail -5 "$dir/log"; echo "wagate died (OOM?)" >&2; exit 1; }
    stats=$(curl -s -H "authorization: Bearer $token" "http://$addr/api/stats")
    if python3 -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(s["applied"] != s["journal_head"])' "$stats"; then
      return
    fi
    sleep 0.1
  done
  echo "not applied in 10 minutes" >&2; exit 1
}

start=$(date +%s.%N)
echo "flood ($shape, $n) ($(stat -c %s "$dir/flood.json") bytes): HTTP $(post "$dir/flood.json")"
caught_up
end=$(date +%s.%N)
echo "next delivery: HTTP $(post "$dir/one.json")"
caught_up
delivery=$(curl -s -H "authorization: Bearer $token" "http://$addr/api/deliveries?verdict=accepted&limit=2" |
  python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(d[-1])')
echo "flood delivery: $delivery"
printf 'idle RSS %s MB, peak RSS (VmHWM) %s MB, RSS after %s MB, applied in %.1f s\n' \
  "$idle" "$(rss VmHWM)" "$(rss VmRSS)" "$(echo "$end - $start" | bc)"
