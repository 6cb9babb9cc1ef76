#!/usr/bin/env bash
# Generates a private CA, a server certificate (localhost, 127.0.0.1), a client
# certificate, a client certificate from a second, untrusted CA (for tests), and bearer
# tokens, into DIR (default .stack/tls). Existing files are kept.
#   stack/tls.sh [DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${1:-$ROOT/.stack/tls}
mkdir -p "$DIR"
cd "$DIR"
[ -s tokens ] && [ -s rogue-client.pem ] && exit 0

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

ca ca "stepboard local CA"
ca rogue-ca "untrusted CA"
leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client ca stepboard-client "extendedKeyUsage=clientAuth"
leaf rogue-client rogue-ca stepboard-client "extendedKeyUsage=clientAuth"
token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
token > rank.token
token > cli.token
printf 'rank:%s\ncli:%s\n' "$(cat rank.token)" "$(cat cli.token)" > tokens
chmod 600 ./*-key.pem tokens ./*.token
