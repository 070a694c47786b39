#!/usr/bin/env bash
# Makes PostgreSQL reachable at 127.0.0.1:5432 for user postgres without a
# password: starts an installed cluster that is down, or installs one.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

wait_ready() {
    for _ in $(seq 1 60); do
        ready && return 0
        sleep 1
    done
    echo "PostgreSQL did not come up" >&2
    return 1
}

if ready; then
    echo "PostgreSQL is up"
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    # Local CI only: trust connections from this machine.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "/etc/postgresql/$version/main/pg_hba.conf"
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
echo "starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
wait_ready
