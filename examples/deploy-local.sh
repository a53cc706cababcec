#!/usr/bin/env bash
# The README's first command ends here: a real deploy of the bundled example app to a local target.
# It builds the app (vendoring its gem), releases it twice, lists the releases, rolls back and forward.
# DEPLOY_TO picks the target; by default a fresh directory under /tmp.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
deployer() { node "$repo/bin/run.js" "$@"; }

work=$(mktemp -d /tmp/deployer-example.XXXXXX)
deploy_to=${DEPLOY_TO:-$work/srv/shop}
app=$work/build/shop

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
YAML

echo "== deployer release (first)"
deployer release --config "$work/deployer.yml"
echo "== changing the app and releasing again"
echo "# rebuilt $(date -u +%FT%TZ)" >> "$app/config.ru"
deployer release --config "$work/deployer.yml"
echo "== deployer releases"
deployer releases --config "$work/deployer.yml"
echo "== deployer rollback"
deployer rollback --config "$work/deployer.yml"
echo "== the app in current answers from the release it points at"
(cd "$deploy_to/current" && ruby -e 'require "rack"; app, _ = Rack::Builder.parse_file("config.ru"); puts app.call({})[2].join')
echo "== rolling forward again"
deployer rollback --config "$work/deployer.yml" --to "$(readlink "$deploy_to/current" | sed 's#releases/##' | awk '{print $1+1}')"
deployer releases --config "$work/deployer.yml"
echo "Done: $deploy_to (config: $work/deployer.yml)"
