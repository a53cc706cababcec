# Puma config for the example app. `directory` must be the `current` symlink path so that restarts
# re-enter the new release (shared/reference/puma-restarts.md §3).
deploy_to = ENV.fetch("DEPLOY_TO") { File.expand_path("../..", __dir__) }
directory File.join(deploy_to, "current")
workers Integer(ENV.fetch("PUMA_WORKERS", "2"))
threads 1, 4
bind ENV.fetch("PUMA_BIND", "tcp://127.0.0.1:9292")
pidfile File.join(deploy_to, "shared/tmp/pids/puma.pid")
worker_shutdown_timeout 10
