#!/usr/bin/env bash
# Packaging test: builds the .deb, inspects it, installs it into a throw-away
# Debian 12 root (debootstrap --variant=minbase, cached as a tarball), checks
# the user, the state directory, the conffile, the unit (systemd-analyze
# verify), that the installed binary migrated the database and answers
# /api/ping and /health as the flexiapi user, then upgrades to a rebuilt
# package (bumped version) and checks that the database and an edited
# conffile survived; then removes and purges.
#
#   bash tests/package.sh            (as root: chroot, dpkg --root)
#
# Environment: FLEXIAPI_PKGTEST_CACHE (default target/pkgtest-cache) keeps the
# debootstrap tarball between runs (about 2 minutes to make, 1 s to reuse);
# FLEXIAPI_PKGTEST_MIRROR (default http://deb.debian.org/debian).
# What a chroot cannot show: systemd as PID 1 starting the unit with its
# sandbox (no systemd here); the unit is verified with systemd-analyze and
# the binary is started by hand as the unit's user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
CACHE=${FLEXIAPI_PKGTEST_CACHE:-$REPO/target/pkgtest-cache}
MIRROR=${FLEXIAPI_PKGTEST_MIRROR:-http://deb.debian.org/debian}
WORK=$(mktemp -d /tmp/flexiapi-pkgtest.XXXXXX)
ROOT=$WORK/root
SERVER_PID=""
step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if mountpoint -q "$ROOT/proc" 2>/dev/null; then umount "$ROOT/proc" || umount -l "$ROOT/proc" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || fail "run as root (chroot, dpkg --root)"
in_root() { chroot "$ROOT" "$@"; }
as_flexiapi() { chroot "$ROOT" runuser -u flexiapi -- "$@"; }

step "static binary"
BIN=$(debian/build-static)
LDD=$(ldd "$BIN" 2>&1 || true)
grep -q "not a dynamic executable" <<<"$LDD" || fail "$BIN is dynamically linked: $LDD"
if command -v file >/dev/null; then file "$BIN" | grep -q "statically linked" || fail "file(1) does not say statically linked"; fi
echo "size: $(stat -c %s "$BIN") bytes ($BIN)"
"$BIN" --version

step "build the package (version from debian/changelog) and a bumped one"
V1=$(sed -n '1s/^flexiapi (\([^)]*\)).*/\1/p' debian/changelog)
V2="$V1+upgrade1"
DEB1=$(debian/build-deb --binary "$BIN" --out "$WORK/deb")
DEB2=$(debian/build-deb --binary "$BIN" --version "$V2" --out "$WORK/deb")
[ "$(basename "$DEB1")" = "flexiapi_${V1}_amd64.deb" ] || fail "package name $DEB1"

step "dpkg-deb -I / -c"
INFO=$(dpkg-deb -I "$DEB1")
for field in "Package: flexiapi" "Version: $V1" "Architecture: amd64" "Depends: passwd, util-linux"; do
    grep -q "^ $field" <<<"$INFO" || fail "control lacks '$field'"
done
[ "$(dpkg-deb -I "$DEB1" conffiles)" = "/etc/flexiapi/flexiapi.env" ] || fail "conffiles"
for script in postinst prerm postrm; do
    dpkg-deb -I "$DEB1" "$script" >/dev/null || fail "no $script"
done
CONTENTS=$(dpkg-deb -c "$DEB1")
for path in ./usr/bin/flexiapi ./etc/flexiapi/flexiapi.env ./lib/systemd/system/flexiapi.service \
            ./usr/share/man/man1/flexiapi.1.gz ./usr/share/doc/flexiapi/README.md \
            ./usr/share/doc/flexiapi/operations.md ./usr/share/doc/flexiapi/copyright; do
    grep -q " $path\$" <<<"$CONTENTS" || fail "package lacks $path"
done
grep -E " \./usr/bin/flexiapi$" <<<"$CONTENTS" | grep -q "^-rwxr-xr-x root/root" || fail "binary mode/owner"
grep -E " \./etc/flexiapi/flexiapi.env$" <<<"$CONTENTS" | grep -q "^-rw-r----- root/root" || fail "conffile mode"
if grep -v " root/root " <<<"$CONTENTS" | grep -q .; then fail "files not owned by root"; fi
echo "$(wc -l <<<"$CONTENTS") entries, $(stat -c %s "$DEB1") bytes"

step "throw-away Debian root"
TARBALL=$CACHE/bookworm-minbase.tar
if [ ! -f "$TARBALL" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    mkdir -p "$CACHE"
    debootstrap --variant=minbase bookworm "$WORK/boot" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
    tar -C "$WORK/boot" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$WORK/boot"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$TARBALL"
mount -t proc proc "$ROOT/proc"
[ ! -e "$ROOT/run/systemd/system" ] || fail "the root must not look like a running systemd"

step "install $V1 with dpkg --root"
dpkg --root="$ROOT" -i "$DEB1" >"$WORK/install1.log" 2>&1 || { cat "$WORK/install1.log"; fail "dpkg -i"; }
in_root dpkg-query -W -f='${Version} ${Status}\n' flexiapi | grep -qx "$V1 install ok installed" || fail "not installed"

step "system user, group, state directory, conffile"
IFS=: read -r _ _ uid gid _ home shell < <(in_root getent passwd flexiapi) || fail "no user flexiapi"
[ "$uid" -lt 1000 ] || fail "flexiapi is not a system user (uid $uid)"
[ "$home" = /var/lib/flexiapi ] && [ "$shell" = /usr/sbin/nologin ] || fail "home $home shell $shell"
in_root getent group flexiapi >/dev/null || fail "no group flexiapi"
[ "$(in_root stat -c '%a %U %G' /var/lib/flexiapi)" = "2770 flexiapi flexiapi" ] || fail "state dir: $(in_root stat -c '%a %U %G' /var/lib/flexiapi)"
[ "$(in_root stat -c '%a %U %G' /etc/flexiapi/flexiapi.env)" = "640 root flexiapi" ] || fail "conffile: $(in_root stat -c '%a %U %G' /etc/flexiapi/flexiapi.env)"
cmp -s "$ROOT/etc/flexiapi/flexiapi.env" debian/flexiapi.env || fail "conffile content"
DB=/var/lib/flexiapi/flexiapi.sqlite
[ "$(in_root stat -c '%a %U %G' $DB)" = "660 flexiapi flexiapi" ] || fail "database: $(in_root stat -c '%a %U %G' $DB)"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/flexiapi.service" ] || fail "service not enabled"
[ -f "$ROOT/usr/share/man/man1/flexiapi.1.gz" ] || fail "man page"
zcat "$ROOT/usr/share/man/man1/flexiapi.1.gz" | man -l - >/dev/null 2>&1 || fail "man page does not render"
grep -q "schema created" "$WORK/install1.log" || fail "postinst did not migrate: $(cat "$WORK/install1.log")"

step "systemd-analyze verify"
cp "$ROOT/lib/systemd/system/flexiapi.service" "$WORK/flexiapi.service"
# verify resolves ExecStart on the host: point it at the installed binary.
sed -i "s#^ExecStart=/usr/bin/flexiapi#ExecStart=$ROOT/usr/bin/flexiapi#" "$WORK/flexiapi.service"
# Documentation=man:flexiapi(1) is checked against the installed man page.
if ! MANPATH="$ROOT/usr/share/man" systemd-analyze verify "$WORK/flexiapi.service" >"$WORK/verify.log" 2>&1; then
    cat "$WORK/verify.log"; fail "systemd-analyze verify"
fi
if grep -v -e "^$" "$WORK/verify.log" | grep -q .; then cat "$WORK/verify.log"; fail "systemd-analyze verify printed warnings"; fi
echo "verify: clean"

step "the installed binary serves as the flexiapi user"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_flexiapi /usr/bin/flexiapi --version | grep -qx "flexiapi .*" || fail "--version"
chroot "$ROOT" runuser -u flexiapi -- sh -c "umask 0007; exec /usr/bin/flexiapi --config /etc/flexiapi/flexiapi.env serve --listen 127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/api/ping" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/api/ping" >/dev/null || { cat "$WORK/serve.log"; fail "/api/ping"; }
curl -fsS "http://127.0.0.1:$PORT/health" | python3 -c 'import json,sys; assert json.load(sys.stdin) == {"status": "ok", "database": "ok"}' || fail "/health"
KEY=$(as_flexiapi sh -c 'umask 0007; exec flexiapi accounts:create-admin-account -u admin01 -p secretpassword' | sed -n 's/^API key: //p')
[ -n "$KEY" ] || fail "create-admin-account"
curl -fsS -H "x-api-key: $KEY" -H 'Accept: application/json' -H 'Content-Type: application/json' \
    -d '{"username":"alice01","password":"secret123","algorithm":"SHA-256","activated":true,"phone":"+33612345678"}' \
    "http://127.0.0.1:$PORT/api/accounts" >/dev/null || fail "create an account through the API"
curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -q '^flexiapi_accounts{state="activated"} 2$' || fail "/metrics"
as_flexiapi flexiapi doctor >"$WORK/doctor.log" 2>&1 || { cat "$WORK/doctor.log"; fail "doctor"; }
grep -q "^OK   permissions: /var/lib/flexiapi 2770 group flexiapi, file 0660 group flexiapi" "$WORK/doctor.log" || { cat "$WORK/doctor.log"; fail "doctor permissions"; }
grep -q "^OK   flexisip user-with-phone request: +33612345678 -> alice01" "$WORK/doctor.log" || { cat "$WORK/doctor.log"; fail "doctor flexisip"; }
as_flexiapi flexiapi backup /var/lib/flexiapi/backup.sqlite | grep -q "^/var/lib/flexiapi/backup.sqlite: [0-9]* bytes$" || fail "backup"
# SIGTERM to flexiapi itself (the child of runuser, which hands its exit status back).
FLEXIAPI_PID=$(pgrep -P "$SERVER_PID" | head -1)
[ -n "$FLEXIAPI_PID" ] && grep -q flexiapi "/proc/$FLEXIAPI_PID/cmdline" || fail "cannot find the server process"
kill -TERM "$FLEXIAPI_PID"
wait "$SERVER_PID" || fail "serve did not exit 0 on SIGTERM: $(cat "$WORK/serve.log")"
SERVER_PID=""
grep -q "^stopped" "$WORK/serve.log" || fail "no graceful stop in the log"

step "upgrade to $V2: database and edited conffile survive"
echo 'APP_NAME="Edited by the package test"' >>"$ROOT/etc/flexiapi/flexiapi.env"
EDITED=$(md5sum <"$ROOT/etc/flexiapi/flexiapi.env")
dpkg --root="$ROOT" -i "$DEB2" >"$WORK/install2.log" 2>&1 || { cat "$WORK/install2.log"; fail "upgrade"; }
in_root dpkg-query -W -f='${Version}\n' flexiapi | grep -qx "$V2" || fail "version after upgrade"
[ "$(md5sum <"$ROOT/etc/flexiapi/flexiapi.env")" = "$EDITED" ] || fail "the edited conffile was replaced"
grep -q "schema up to date" "$WORK/install2.log" || fail "postinst did not run migrate on upgrade"
[ "$(in_root stat -c '%a %U %G' /etc/flexiapi/flexiapi.env)" = "640 root flexiapi" ] || fail "conffile mode after upgrade"
N=$(as_flexiapi flexiapi doctor | sed -n 's/^OK   flexisip password request: \(admin01@[^ ]*\) -> .*/\1/p')
[ "$N" = "admin01@sip.example.org" ] || fail "the admin account did not survive the upgrade"
as_flexiapi flexiapi --config /etc/flexiapi/flexiapi.env accounts:set-admin 2 | grep -q "alice01" || fail "alice01 did not survive the upgrade"
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/flexiapi.service" ] || fail "service not enabled after upgrade"

step "remove keeps the data, purge removes it"
dpkg --root="$ROOT" -r flexiapi >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "remove"; }
[ ! -e "$ROOT/usr/bin/flexiapi" ] || fail "binary left after remove"
[ -f "$ROOT$DB" ] && [ -f "$ROOT/etc/flexiapi/flexiapi.env" ] || fail "remove lost the database or the conffile"
in_root getent passwd flexiapi >/dev/null || fail "remove deleted the user"
dpkg --root="$ROOT" -P flexiapi >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "purge"; }
[ ! -e "$ROOT/var/lib/flexiapi" ] || fail "purge left /var/lib/flexiapi"
[ ! -e "$ROOT/etc/flexiapi" ] || fail "purge left /etc/flexiapi"
! in_root getent passwd flexiapi >/dev/null || fail "purge left the user"
! in_root getent group flexiapi >/dev/null || fail "purge left the group"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/flexiapi.service" ] || fail "purge left the unit enabled"

echo "package test: OK ($(basename "$DEB1"), $(stat -c %s "$BIN") bytes binary)"
