#!/usr/bin/env bash
# Makes a local certificate authority and a server certificate for `cohort serve` / `cohort join`.
#
#   scripts/make-certs.sh DIR [HOSTNAME_OR_IP...]
#
# Writes into DIR (created if missing):
#   ca.pem, ca.key          the CA: give ca.pem to every client (cohort join --ca DIR/ca.pem);
#                           keep ca.key private (it can sign more server certificates)
#   server.pem, server.key  the server's certificate and key (cohort serve --cert/--key);
#                           valid for localhost, 127.0.0.1, ::1 and every extra name given
#                           (DNS names, or IPv4/IPv6 addresses for IP SANs)
# Keys are EC P-256, certificates valid for 825 days. Needs only openssl. Existing files in DIR
# are overwritten. Keys are created with mode 600.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -lt 1 ] && exit 2 || exit 0
fi
command -v openssl >/dev/null || { echo "make-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
mkdir -p "$dir"

san="DNS:localhost,IP:127.0.0.1,IP:::1"
cn="localhost"
for name in "$@"; do
  if [[ $name =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $name == *:* ]]; then
    san="$san,IP:$name"
  else
    san="$san,DNS:$name"
    [ "$cn" = "localhost" ] && cn=$name
  fi
done

umask 077
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 825 -subj "/CN=Cohort local CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.pem" 2>/dev/null

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key" 2>/dev/null
ext=$(mktemp)
trap 'rm -f "$ext" "$dir/server.csr" "$dir/ca.srl"' EXIT
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
openssl req -new -key "$dir/server.key" -subj "/CN=$cn" -out "$dir/server.csr" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 825 -sha256 -extfile "$ext" -out "$dir/server.pem" 2>/dev/null
chmod 644 "$dir/ca.pem" "$dir/server.pem"

openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null
echo "make-certs: wrote $dir/{ca.pem,ca.key,server.pem,server.key} (server names: ${san//DNS:/}); give clients $dir/ca.pem"
