#!/usr/bin/env bash
# The dependency rule: domain crates never depend on a database driver or the HTTP stack.
set -euo pipefail
cd "$(dirname "$0")/.."
domain=(crm-core campaigns ai-memory analytics automation integrations)
banned=(mongodb bson axum rusqlite reqwest hyper sqlx)
fail=0
for c in "${domain[@]}"; do
  tree=$(cargo tree -q -p "$c" -e normal --prefix none 2>/dev/null | cut -d' ' -f1 | sort -u)
  for b in "${banned[@]}"; do
    if grep -qx "$b" <<<"$tree"; then
      echo "dependency rule broken: $c depends on $b (cargo tree -p $c -e normal -i $b)"
      fail=1
    fi
  done
done
[ "$fail" = 0 ] && echo "dependency rule holds: ${domain[*]} depend on none of ${banned[*]}"
exit "$fail"
