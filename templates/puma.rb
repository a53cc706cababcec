# config/puma.rb for {{app}}: Puma in cluster mode, set up for deployer's zero-downtime restarts.
#
# deployer reads this file with Puma's own classes before every restart and picks the restart from what
# it finds: phased (USR1) for code, hot (USR2) when this file, Puma or Gemfile.lock changed, full (stop and
# start) when the environment, Ruby or a bind changed. The comments below say why each line is here.

deploy_to = "{{deploy_to}}"
shared = "#{deploy_to}/shared"

# The `current` symlink path, not releases/N. Every restart chdirs here and Puma resolves the link at that
# moment, so USR1 and USR2 load the release `current` points at. Without `directory` Puma falls back to
# $PWD, which systemd does not set: every restart would then re-enter the old release while its stats look
# perfect, and crash once that release is pruned (puma/puma#776, #3290).
directory "#{deploy_to}/current"

environment ENV.fetch("RACK_ENV", "production")

# Cluster mode. A phased restart replaces one worker at a time, so with 2 or more workers one always
# serves. WEB_CONCURRENCY is read when Puma starts: changing it takes a full restart.
workers Integer(ENV.fetch("WEB_CONCURRENCY", 2))
max_threads = Integer(ENV.fetch("RAILS_MAX_THREADS", 5))
threads Integer(ENV.fetch("RAILS_MIN_THREADS", max_threads)), max_threads

# Never preload here. A preloaded app cannot be phased-restarted: USR1 silently becomes a hot restart
# (USR2), which stops every worker at once. Said explicitly because preload turns itself on: on Puma 7+
# whenever workers > 1, and on Puma 5/6 whenever WEB_CONCURRENCY > 1.
preload_app! false

# One fixed bind. A hot restart re-binds inherited sockets by their bind string: changing the string for
# the same port (even adding ?backlog=) fails with EADDRINUSE and Puma dies, so deployer does a full
# restart for any bind change. With config/systemd/{{app}}-puma.socket, systemd holds this address and Puma
# takes the socket from it (LISTEN_FDS) instead of binding: keep the two the same.
bind "tcp://127.0.0.1:{{port}}"

# A fixed control URL and token, so deployer can read /stats before and after every restart (Puma's
# "auto" URL and random token change at every hot restart). The token comes from the environment
# (/etc/{{app}}/env, loaded by the systemd unit and by deployer's start command) and never sits in this
# file. Without it Puma makes up a random token and deployer cannot read the stats.
control_token = ENV.fetch("PUMA_CONTROL_TOKEN", "")
warn "! PUMA_CONTROL_TOKEN is not set: the control app gets a random token" if control_token.empty?
activate_control_app "unix://#{shared}/tmp/sockets/pumactl.sock",
                     { auth_token: control_token.empty? ? nil : control_token }

# Absolute paths under shared/, which outlives releases: deployer finds the master through this pidfile.
pidfile "#{shared}/tmp/pids/puma.pid"
state_path "#{shared}/tmp/pids/puma.state"

# How long a stopping worker may finish its requests before it is killed, in phased and hot restarts
# alike. Keep it above the app's own request timeout; deployer's restart deadline grows with it.
worker_shutdown_timeout 30

# Measured with deployer's zero-downtime benchmark: with Puma's default (queue_requests on) a phased
# restart reset a few connection-per-request clients; with it off, no request failed. On the 7 series
# this needs Puma 7.0.2 or later (puma/puma#3731).
queue_requests false

# prune_bundler is off on purpose. It would let a phased restart pick up changed gems, but:
#   - Debian's packaged Puma has no bin/puma-wild: with it, `bundle exec puma` aborts at boot;
#   - a pruned master re-execs its first puma-wild on every USR2, so it never upgrades Puma, and once the
#     release it first booted from is pruned, USR2 fails and takes the site down (puma/puma#1272);
#   - before Puma 8.0.1 it drops BUNDLE_* variables such as BUNDLE_WITHOUT (puma/puma#3929).
# Without it, deployer restarts with USR2 when Gemfile.lock changed and with USR1 for code alone. To turn it
# on anyway (a Puma gem that has puma-wild, Bundler settings in .bundle/config), add
#   prune_bundler
#   restart_command "bundle exec puma"
# and in the restart hook below replace the BUNDLE_GEMFILE line with
#   ENV.delete("PUMA_BUNDLER_PRUNED"); ENV.delete("BUNDLE_GEMFILE")
# so each USR2 loads the new Puma and prunes again.

# Puma 7.0 renamed the hooks (puma/puma#3438): on_restart -> before_restart, on_worker_boot ->
# before_worker_boot, on_worker_shutdown -> before_worker_shutdown, on_booted -> after_booted, on_stopped ->
# after_stopped, on_worker_fork -> before_worker_fork, on_refork -> before_refork. Puma 5 and 6 know only the
# old names and Puma 7 deprecates them, so pick by version (and do the same for any hook you add).
puma7 = Gem::Version.new(Puma::Const::PUMA_VERSION) >= Gem::Version.new("7.0")

# Runs just before a hot restart (USR2) re-execs the master. `bundle exec` records the Gemfile through the
# resolved release (releases/N/Gemfile); USR2 would keep that path, load the old release's gems and fail
# once it is pruned. Point Bundler at the Gemfile through `current` instead.
pin_gemfile = proc do
  ENV["BUNDLE_GEMFILE"] = "#{deploy_to}/current/Gemfile" if ENV.key?("BUNDLE_GEMFILE")
end
if puma7
  before_restart(&pin_gemfile)
else
  on_restart(&pin_gemfile)
end
