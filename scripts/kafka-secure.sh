# The secured listeners of the local broker; sourced by scripts/kafka.sh when
# KAFKA_SECURE=1 (it sets $here, $run and $port). Beside the unchanged PLAINTEXT
# listener on $port:
#   SASL_SSL        $port+2  SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN
#   MTLS (SSL)      $port+3  a client certificate signed by the run's CA is required
#   SASL_PLAINTEXT  $port+4  the same mechanisms, unencrypted (local tests only)
#   TLS (SSL)       $port+5  server verification only, no client certificate
# Two users: "admin" (a super user) and "segstream", which may do only what ACLs grant
# it (StandardAuthorizer; a client certificate CN=segstream is that user too). The
# PLAINTEXT and TLS listeners' ANONYMOUS principal is a super user, so everything
# that uses the plain listener works as before. The SCRAM credentials are created when
# the storage is formatted; passwords are random, kept in $run/secure.env.
# Written into the run directory: tls/ (ca.pem, client.pem, client.key, and
# client-keystore.pem: key and certificate, Kafka's PEM keystore) and client/*.properties,
# ready for `segstream ... --kafka-config FILE` and for Kafka's own tools.

secure_prepare() {
  bash "$here/scripts/kafka-tls.sh" "$run/tls"
  if [ ! -f "$run/secure.env" ]; then
    umask 077
    printf 'SEGSTREAM_PASSWORD=%s\nADMIN_PASSWORD=%s\n' \
        "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$run/secure.env"
    umask 022
  fi
  # shellcheck disable=SC1091
  . "$run/secure.env"
  cat "$run/tls/client.key" "$run/tls/client.pem" > "$run/tls/client-keystore.pem"
  chmod 600 "$run/tls/client-keystore.pem"
  secure_client_files
}

secure_listeners() {
  echo "SASL_SSL://127.0.0.1:$((port + 2)),MTLS://127.0.0.1:$((port + 3)),"`
      `"SASL_PLAINTEXT://127.0.0.1:$((port + 4)),TLS://127.0.0.1:$((port + 5))"
}

secure_protocol_map() { echo "SASL_SSL:SASL_SSL,MTLS:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,TLS:SSL"; }

secure_scram_users() {  # kafka-storage format arguments, one a line
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    printf -- '--add-scram\n%s=[name=segstream,password=%s]\n' "$mechanism" "$SEGSTREAM_PASSWORD"
    printf -- '--add-scram\n%s=[name=admin,password=%s]\n' "$mechanism" "$ADMIN_PASSWORD"
  done
}

secure_server_properties() {
  local listener scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
  cat <<PROPS
# secured listeners (scripts/kafka-secure.sh)
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
ssl.keystore.type=PEM
ssl.keystore.location=$run/tls/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$run/tls/ca.pem
listener.name.mtls.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS;User:admin
PROPS
  for listener in sasl_ssl sasl_plaintext; do
    cat <<PROPS
listener.name.$listener.scram-sha-256.sasl.jaas.config=$scram
listener.name.$listener.scram-sha-512.sasl.jaas.config=$scram
listener.name.$listener.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_segstream="$SEGSTREAM_PASSWORD" user_admin="$ADMIN_PASSWORD";
PROPS
  done
}

_client_file() {  # NAME PORT PROTOCOL, then the file's other lines on stdin
  { echo "# $1: written by scripts/kafka-secure.sh for the broker on 127.0.0.1:$port"
    echo "bootstrap.servers=127.0.0.1:$2"
    echo "security.protocol=$3"
    cat; } > "$run/client/$1.properties"
}

_jaas() {  # MODULE USER PASSWORD
  echo "sasl.jaas.config=org.apache.kafka.common.security.$1 required username=\"$2\" password=\"$3\";"
}

secure_client_files() {
  local trust="ssl.truststore.type=PEM
ssl.truststore.location=$run/tls/ca.pem"
  local scram="scram.ScramLoginModule" mechanism name
  mkdir -p "$run/client"
  (umask 077
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    name=$(echo "sasl-ssl-$mechanism" | tr '[:upper:]' '[:lower:]')
    printf '%s\nsasl.mechanism=%s\n%s\n' "$trust" "$mechanism" \
        "$(_jaas $scram segstream "$SEGSTREAM_PASSWORD")" \
      | _client_file "$name" $((port + 2)) SASL_SSL
  done
  printf '%s\nsasl.mechanism=PLAIN\n%s\n' "$trust" \
      "$(_jaas plain.PlainLoginModule segstream "$SEGSTREAM_PASSWORD")" \
    | _client_file sasl-ssl-plain $((port + 2)) SASL_SSL
  printf '%s\nsasl.mechanism=SCRAM-SHA-512\n%s\n' "$trust" \
      "$(_jaas $scram admin "$ADMIN_PASSWORD")" \
    | _client_file admin $((port + 2)) SASL_SSL
  printf 'sasl.mechanism=SCRAM-SHA-256\n%s\n' "$(_jaas $scram segstream "$SEGSTREAM_PASSWORD")" \
    | _client_file sasl-plaintext $((port + 4)) SASL_PLAINTEXT
  printf '%s\nssl.keystore.type=PEM\nssl.keystore.location=%s\n' "$trust" \
      "$run/tls/client-keystore.pem" | _client_file mtls $((port + 3)) SSL
  printf '%s\n' "$trust" | _client_file tls $((port + 5)) SSL)
}

secure_report() {
  say "secured listeners: SASL_SSL 127.0.0.1:$((port + 2)), mTLS $((port + 3)),"`
      `" SASL_PLAINTEXT $((port + 4)), TLS $((port + 5)); client settings in $run/client/"
}
