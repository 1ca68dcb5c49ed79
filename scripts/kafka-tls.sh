#!/usr/bin/env bash
# Throw-away TLS material for the local secured broker (scripts/kafka.sh with
# KAFKA_SECURE=1): a CA, a broker certificate for 127.0.0.1 and localhost, and a
# client certificate (CN=segstream) for mutual TLS, all signed by that CA. Made with
# openssl, EC P-256 keys, valid 30 days. Usage: scripts/kafka-tls.sh DIR
# Writes DIR/ca.pem, DIR/ca.key, DIR/broker.pem (key + certificate, Kafka's PEM
# keystore), DIR/client.pem, DIR/client.key; does nothing if DIR/ca.pem exists.
set -euo pipefail

dir=$1
[ -f "$dir/ca.pem" ] && exit 0
command -v openssl >/dev/null || { echo "kafka: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 30 -subj "/CN=segstream test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.pem"

sign() {  # sign NAME SUBJECT EXTENSIONS
  key "$tmp/$1.key"
  openssl req -new -key "$tmp/$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%b' "$3" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
      -CAcreateserial -sha256 -days 30 -extfile "$tmp/$1.ext" -out "$tmp/$1.pem" 2>/dev/null
}
sign broker "/CN=localhost" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
sign client "/CN=segstream" "extendedKeyUsage=clientAuth\n"

# Kafka's PEM keystore: the (unencrypted PKCS#8) key followed by the certificate chain
cat "$tmp/broker.key" "$tmp/broker.pem" "$tmp/ca.pem" > "$tmp/broker-keystore.pem"
install -m 600 "$tmp/ca.key" "$dir/ca.key"
install -m 600 "$tmp/broker-keystore.pem" "$dir/broker.pem"
install -m 600 "$tmp/client.key" "$dir/client.key"
install -m 644 "$tmp/client.pem" "$dir/client.pem"
install -m 644 "$tmp/ca.pem" "$dir/ca.pem"  # last: its presence means the set is complete
