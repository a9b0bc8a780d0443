#!/bin/bash
# Entrypoint of a surveyctl lab machine; LAB_ROLE is `vm` (sshd + dockerd) or `cloud`
# (sshd + OpenVPN server + MariaDB bound to the tunnel address only). Its files come
# from /etc/surveyctl-lab, mounted read-only by `surveyctl lab up`. If a service dies,
# the machine stops and Docker's restart policy starts it again, like a reboot.
set -euo pipefail
CONF=/etc/surveyctl-lab
READY=/run/surveyctl-lab-ready
pids=()

log() { echo "lab-entrypoint: $*"; }

shutdown() {
    log "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    exit 0
}
trap shutdown TERM INT

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local tries=$(($1 * 5)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then log "$what did not come up"; exit 1; fi
        sleep 0.2
    done
}

start_sshd() {
    mkdir -p /run/sshd
    if [ -f "$CONF/ssh_host_ed25519_key" ]; then  # kept by `lab up`: stable across rebuilds
        install -m 600 "$CONF/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
        install -m 644 "$CONF/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
    fi
    [ -f /etc/ssh/ssh_host_ed25519_key ] ||
        ssh-keygen -q -t ed25519 -N '' -C "$(hostname)" -f /etc/ssh/ssh_host_ed25519_key
    local home user
    for home in /root /home/deploy; do
        user=$(stat -c %U "$home")
        install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
        install -m 600 -o "$user" -g "$user" "$CONF/authorized_keys" "$home/.ssh/authorized_keys"
    done
    /usr/sbin/sshd -D -e &
    pids+=($!)
}

start_vm() {
    rm -f /run/docker.pid /run/docker/containerd/containerd.pid
    dockerd --host unix:///run/docker.sock >>/var/log/dockerd.log 2>&1 &
    pids+=($!)
    wait_for 60 dockerd docker info
}

tunnel_up() { ip -4 addr show dev tun0 | grep -q "inet ${LAB_VPN_ADDRESS}/"; }

start_cloud() {
    openvpn --config "$CONF/server.conf" &
    pids+=($!)
    wait_for 30 "the tunnel (tun0)" tunnel_up
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
        chown mysql:mysql /var/lib/mysql
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    fi
    mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address="$LAB_VPN_ADDRESS" \
        --skip-name-resolve &
    pids+=($!)
    wait_for 60 MariaDB mariadb-admin --protocol=socket ping
    mariadb --protocol=socket <"$CONF/setup.sql"
}

# The lab network leads nowhere else: with no default route, traffic to any address
# outside the lab fails at once instead of leaving this machine.
drop_default_route() { ip route del default 2>/dev/null || true; }

rm -f "$READY"
drop_default_route
start_sshd
case "${LAB_ROLE:-vm}" in
    vm) start_vm ;;
    cloud) start_cloud ;;
    *) log "unknown LAB_ROLE ${LAB_ROLE}"; exit 2 ;;
esac
touch "$READY"
log "ready"
set +e
wait -n "${pids[@]}"
log "a service exited; stopping the machine"
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit 1
