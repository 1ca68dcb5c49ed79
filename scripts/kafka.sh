#!/usr/bin/env bash
# A single-node KRaft Apache Kafka broker from Maven Central jars, for machines without
# Docker. Usage: scripts/kafka.sh start|stop|status|reset. KAFKA_PORT (default 9092);
# the controller listens on KAFKA_PORT+1. Jars and data live under ~/.cache/segstream
# (the data in KAFKA_RUN_DIR when set).
#
# KAFKA_SECURE=1 adds secured listeners beside the unchanged PLAINTEXT one (scripts/
# kafka-secure.sh): SASL_SSL on KAFKA_PORT+2 (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN), SSL
# with client certificates (mTLS) on +3, SASL_PLAINTEXT on +4 and SSL without client
# certificates on +5, and writes ready client.properties files into the run directory.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
cache=${SEGSTREAM_CACHE:-$HOME/.cache/segstream}/kafka
libs=$cache/$version/libs
run=${KAFKA_RUN_DIR:-$cache/run-$port}
secure=${KAFKA_SECURE:-0}
pidfile=$run/broker.pid
log=$run/broker.log

say() { echo "kafka: $*"; }

running_pid() {
  # The pid of our broker if it is alive, else nothing.
  [ -f "$pidfile" ] || return 1
  local pid; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && grep -q java "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fetch_jars() {
  # A marker file tells a complete download from a half one, which is retried.
  [ -f "$libs/.complete" ] && return 0
  say "resolving Kafka $version jars from Maven Central into $libs"
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime
  touch "$libs/.complete"
}

configure() {
  mkdir -p "$run/data"
  local listeners="PLAINTEXT://127.0.0.1:$port" map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  local format_extra=()
  if [ "$secure" = 1 ]; then
    [ ! -f "$run/data/meta.properties" ] || [ -f "$run/secure.env" ] || {
      say "$run was formatted without KAFKA_SECURE (no SCRAM users): run reset first"
      exit 1; }
    # shellcheck source=kafka-secure.sh
    . "$here/scripts/kafka-secure.sh"
    secure_prepare
    listeners+=",$(secure_listeners)"
    map+=",$(secure_protocol_map)"
    mapfile -t format_extra < <(secure_scram_users)
  fi
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map
inter.broker.listener.name=PLAINTEXT
log.dirs=$run/data
num.partitions=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.retention.hours=168
log.segment.bytes=104857600
log.cleaner.dedupe.buffer.size=16777216
# room for oversized records, so the worker (not the broker) refuses them, with a reason
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
PROPS
  if [ "$secure" = 1 ]; then secure_server_properties >> "$run/server.properties"; fi
  cat > "$run/log4j.properties" <<LOG4J
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
LOG4J
  if [ ! -f "$run/data/meta.properties" ]; then
    # Format storage once; the cluster id is kept so restarts reuse the data.
    [ -f "$run/cluster.id" ] || java -cp "$libs/*" kafka.tools.StorageTool random-uuid \
        2>/dev/null | tail -n 1 > "$run/cluster.id"
    java -cp "$libs/*" -Dlog4j.configuration="file:$run/log4j.properties" \
        kafka.tools.StorageTool format -t "$(cat "$run/cluster.id")" \
        -c "$run/server.properties" --ignore-formatted "${format_extra[@]}" \
        > "$run/format.log" 2>&1 \
      || { cat "$run/format.log"; exit 1; }
  fi
}

start() {
  local pid
  if pid=$(running_pid) && port_open "$port"; then
    say "already running on 127.0.0.1:$port (pid $pid)"; return 0
  fi
  if port_open "$port"; then
    say "port $port is taken by another program; set KAFKA_PORT to use another"; exit 1
  fi
  command -v java >/dev/null || { say "java not found: install a JDK 17+"; exit 1; }
  command -v mvn >/dev/null || { say "mvn not found: install Maven"; exit 1; }
  local t0=$SECONDS
  fetch_jars
  configure
  : > "$log"
  # setsid: the broker outlives the shell (make) that started it.
  setsid nohup java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC \
      -Djava.awt.headless=true -Dlog4j.configuration="file:$run/log4j.properties" \
      -cp "$libs/*" kafka.Kafka "$run/server.properties" > "$run/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 180); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      say "broker exited during start; last lines of $log:"; tail -n 30 "$log" "$run/stdout.log"
      rm -f "$pidfile"; exit 1
    fi
    if grep -q "Kafka Server started" "$log" && port_open "$port"; then
      say "started on 127.0.0.1:$port (pid $(cat "$pidfile")) in $((SECONDS - t0))s"
      if [ "$secure" = 1 ]; then secure_report; fi
      return 0
    fi
    sleep 0.5
  done
  say "broker not ready after 90s; last lines of $log:"; tail -n 30 "$log"; exit 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"; say "not running on port $port"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "stopped (pid $pid)"; return 0; }
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"; say "killed (pid $pid) after 30s"
}

status() {
  local pid
  if pid=$(running_pid) && port_open "$port"; then
    say "running on 127.0.0.1:$port (pid $pid)"
  else
    say "not running on port $port"; return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$run"; say "data of port $port removed" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
