#!/usr/bin/env bash
# Generates a private CA, a server certificate (localhost, 127.0.0.1), a client
# certificate, a client certificate from a second, untrusted CA (for tests), a bearer
# token per caller (ingest, rank, precompute: the components that call social_svc; cli:
# a developer, allowed what an app backend is) in <caller>.token and all of them in
# tokens, and the authorization policy of those callers in policy.json, into DIR (default
# .stack/tls). Existing certificates and tokens are kept.
#   stack/tls.sh [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-$ROOT/.stack/tls}
mkdir -p "$DIR"
cd "$DIR"

ca() { # NAME SUBJECT
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$2" \
        -keyout "$1-key.pem" -out "$1.pem" 2>/dev/null
}
leaf() { # NAME CA SUBJECT EXTENSIONS
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$3" \
        -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial \
        -days 825 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

if [ ! -s rogue-client.pem ]; then
    ca ca "stepboard local CA"
    ca rogue-ca "untrusted CA"
    leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
    leaf client ca stepboard-client "extendedKeyUsage=clientAuth"
    leaf rogue-client rogue-ca stepboard-client "extendedKeyUsage=clientAuth"
fi

CALLERS="ingest rank precompute cli"
token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
for caller in $CALLERS; do
    [ -s "$caller.token" ] || token > "$caller.token"
done
for caller in $CALLERS; do printf '%s:%s\n' "$caller" "$(cat "$caller.token")"; done > tokens
# Least privilege: each component may call only what it uses (docs/deploy.md's policy
# table); FriendGraph/* leaves out the internal ListHotUsers and GetRankingExclusions.
FG=stepboard.v1.FriendGraph
cat > policy.json <<EOF
{
  "ingest": ["$FG/CheckFriendship"],
  "rank": ["$FG/ListFriends", "$FG/StreamFriends", "$FG/GetProfiles",
           "$FG/GetRankingExclusions"],
  "precompute": ["$FG/StreamFriends", "$FG/GetRankingExclusions", "$FG/ListHotUsers"],
  "cli": ["stepboard.v1.StepIngest/*", "stepboard.v1.Ranking/*", "$FG/*"]
}
EOF
chmod 600 ./*-key.pem tokens ./*.token
