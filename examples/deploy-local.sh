#!/usr/bin/env bash
# The README's first command ends here: a real deploy of the bundled example app to a local target.
# It builds the app (vendoring its gem), releases it (Puma starts), releases a change (phased restart,
# verified), lists the releases, rolls back and forward (each restart verified), then stops Puma.
# DEPLOY_TO picks the target (default: a fresh directory under /tmp); KEEP_RUNNING=1 leaves Puma up.
# DEPLOYER names the deployer command to run (an installed `deployer`, the single executable); by
# default it is this checkout's bin/run.js.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
deployer() {
  if [ -n "${DEPLOYER:-}" ]; then "$DEPLOYER" "$@"; else node "$repo/bin/run.js" "$@"; fi
}

work=$(mktemp -d /tmp/deployer-example.XXXXXX)
deploy_to=${DEPLOY_TO:-$work/srv/shop}
app=$work/build/shop
port=$(ruby -rsocket -e 'server = TCPServer.new("127.0.0.1", 0); puts server.addr[1]; server.close')
export PUMA_CONTROL_TOKEN=${PUMA_CONTROL_TOKEN:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}

stop_puma() {
  if [ "${KEEP_RUNNING:-0}" != 1 ] && [ -f "$deploy_to/shared/tmp/pids/puma.pid" ]; then
    pid=$(cat "$deploy_to/shared/tmp/pids/puma.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "== stopped Puma (pid $pid)"
  fi
}
trap stop_puma EXIT

echo "== building the example app into $app"
mkdir -p "$app"
cp -R "$repo/examples/shop/." "$app/"
(cd "$repo/examples/fixture-gem" && gem build --silent shop_greeting.gemspec -o "$work/shop_greeting-1.0.0.gem" >/dev/null)
mkdir -p "$app/vendor/cache"
cp "$work/shop_greeting-1.0.0.gem" "$app/vendor/cache/"

cat > "$work/deployer.yml" <<YAML
app: shop
source: build/shop
exclude: [.git, .bundle, vendor/bundle, log, tmp]
deploy_to: $deploy_to
keep_releases: 3
hosts: [local]
shared:
  dirs: [log, tmp/pids, tmp/sockets]
install:
  command: bundle config set --local deployment true && bundle config set --local path vendor/bundle && bundle install --local --quiet
  lockfiles: [Gemfile.lock]
  vendor: vendor/bundle
server:
  config: config/puma.rb
  pidfile: shared/tmp/pids/puma.pid
  control_url: unix://$deploy_to/shared/tmp/sockets/pumactl.sock
  control_token: \${PUMA_CONTROL_TOKEN}
  start: PUMA_BIND=tcp://127.0.0.1:$port exec puma -C config/puma.rb
health:
  url: http://127.0.0.1:$port/
  expect: "from release {release} "
  timeout: 30s
YAML

echo "== deployer release (first: Puma starts)"
deployer release --config "$work/deployer.yml"
curl -fsS "http://127.0.0.1:$port/"
echo "== changing the app and releasing again (phased restart, verified)"
echo "# rebuilt $(date -u +%FT%TZ)" >> "$app/config.ru"
deployer release --config "$work/deployer.yml"
curl -fsS "http://127.0.0.1:$port/"
echo "== deployer releases"
deployer releases --config "$work/deployer.yml"
echo "== deployer rollback"
deployer rollback --config "$work/deployer.yml"
curl -fsS "http://127.0.0.1:$port/"
echo "== rolling forward again"
deployer rollback --config "$work/deployer.yml" --to 2
curl -fsS "http://127.0.0.1:$port/"
deployer releases --config "$work/deployer.yml"
echo "Done: $deploy_to, served at http://127.0.0.1:$port/ (config: $work/deployer.yml)"
