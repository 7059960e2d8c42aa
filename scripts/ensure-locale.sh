#!/usr/bin/env bash
# ensure-locale.sh LOCALE: generate a locale (e.g. en_US.UTF-8) if the
# system lacks it, as RHEL hosts have it and PostgreSQL needs it to exist.
set -euo pipefail
want=${1:-en_US.UTF-8}
norm=$(echo "$want" | tr 'A-Z' 'a-z' | sed 's/utf-8/utf8/')
if locale -a | tr 'A-Z' 'a-z' | grep -qx "$norm"; then
  exit 0
fi
sed -i "s/^# *\(${want//./\\.} \)/\1/" /etc/locale.gen
grep -q "^${want//./\\.} " /etc/locale.gen || echo "$want UTF-8" >> /etc/locale.gen
locale-gen >/dev/null
