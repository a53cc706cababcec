# Puma config for the example app, written for zero-downtime restarts by deployer.
#
# This file lives in releases/N/config; deploy_to is three levels up (__dir__ is already resolved).
deploy_to = File.expand_path("../../..", __dir__)
shared = File.join(deploy_to, "shared")

# Restarts must re-enter `current`, not the release Puma first booted from (reference §3.1).
directory File.join(deploy_to, "current")
workers Integer(ENV.fetch("PUMA_WORKERS", "2"))
threads 1, 4
bind ENV.fetch("PUMA_BIND", "tcp://127.0.0.1:9292")
pidfile File.join(shared, "tmp/pids/puma.pid")
stdout_redirect File.join(shared, "log/puma.log"), File.join(shared, "log/puma.log"), true
# A fixed control URL and token, so deployer can read Puma's stats to verify each restart.
activate_control_app "unix://#{File.join(shared, "tmp/sockets/pumactl.sock")}",
  { auth_token: ENV.fetch("PUMA_CONTROL_TOKEN") }
worker_shutdown_timeout 10
# Measured with Puma 5.6: a stopping worker resets connections it had queued; without queueing none are.
queue_requests false
