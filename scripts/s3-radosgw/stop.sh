#!/bin/bash
# Stops what start.sh DIR started: radosgw, then the OSD, then the monitor, each waited for.
D=${1:?usage: stop.sh DIR}
for name in client.rgw osd.0 mon.a; do
  pid=$(cat "$D/run/$name.pid" 2>/dev/null) || continue
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
done
