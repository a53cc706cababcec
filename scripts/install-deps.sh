#!/usr/bin/env bash
# Installs the Debian packages deployer's example and tests need: a real OpenSSH server, Ruby, Puma,
# Bundler and the tools the benchmarks compare against. Safe to run again.
set -euo pipefail
packages=(openssh-server openssh-client ruby puma ruby-rack bundler rsync wrk curl jq git tar procps)
# The Puma version matrix compiles Puma 6.6/7.2/8.0 and nio4r from ../shared/gems (test/support/bundled-puma.ts).
packages+=(ruby-dev build-essential libssl-dev)
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
# sshd refuses to start without its privilege-separation directory, which the service unit usually makes.
"${sudo[@]}" mkdir -p /run/sshd
echo "installed: ${packages[*]}"
