# The Puma probe: reads the master behind the pidfile and /proc, its workers, the control app's /stats,
# how each given config reads (through config-facts.rb, in a child) and the listening TCP ports, and
# prints one JSON line tagged "probe" => "deployer-server-probe/1" (PROBE_MARK in server-probe.ts).
#
# ARGV: pidfile, control URL ('' for none), configs JSON ([{dir, file}]), deploy_to, the text of
# config-facts.rb, the expected master as JSON ({pid, startTime} or null). stdin: the control token.
#
# serverProbeCommand (server-probe.ts) runs it with `ruby -e`; src/restart/ruby-scripts.ts carries it.

require "json"
require "socket"
require "rbconfig"

pidfile, control_url, configs_json, deploy_to, config_rb, expected_json = ARGV
token = $stdin.read.to_s.strip

def slurp(path)
  File.binread(path)
rescue SystemCallError, IOError
  nil
end

def link(path)
  File.readlink(path)
rescue SystemCallError
  nil
end

def proctitle(pid)
  raw = slurp("/proc/#{pid}/cmdline")
  raw && raw.split("\0").reject(&:empty?).join(" ").strip
end

# "pid (comm) state ppid ... starttime ...": comm may itself hold spaces and parentheses. starttime (field
# 22, clock ticks since boot) tells a process from a later one that reused its pid; exec keeps it.
def stat_of(pid)
  raw = slurp("/proc/#{pid}/stat") or return nil
  fields = raw[(raw.rindex(")") + 2)..-1].split(" ")
  { state: fields[0], ppid: fields[1].to_i, start: fields[19].to_i }
end

def short(text, max = 300)
  text = text.to_s.strip
  text.length > max ? text[0, max] + "..." : text
end

master = { "pidfile" => pidfile, "pid" => nil, "alive" => false, "isPuma" => false, "running" => false,
           "environReadable" => false, "env" => {} }
master_env = nil
# The master seen before a restart (pid and start time), when the caller knows it. Puma rewrites its
# pidfile when the re-exec'd master boots (truncate, then write), so for a moment it can hold no pid.
expected = (JSON.parse(expected_json.to_s) rescue nil)
expected = nil unless expected.is_a?(Hash) && expected["pid"].is_a?(Integer)
pid_text = slurp(pidfile)
pid = pid_text && pid_text.strip =~ /\A\d+\z/ ? pid_text.strip.to_i : nil
if pid.nil? && expected && (seen = stat_of(expected["pid"])) && seen[:state] != "Z" && seen[:start] == expected["startTime"]
  pid = expected["pid"]
  master["pidFromExpected"] = true
end
if pid.nil?
  master["pidfileError"] = pid_text.nil? ? (File.exist?(pidfile) ? "unreadable" : "missing") : "no pid in it"
else
  master["pid"] = pid
  stat = stat_of(pid)
  # A zombie has already exited; it only waits to be reaped.
  if stat && stat[:state] != "Z"
    master["alive"] = true
    master["startTime"] = stat[:start]
    title = proctitle(pid).to_s
    # The master's proctitle is "puma <version> (<binds>) [tag]"; anything else is a stale pidfile,
    master["isPuma"] = master["running"] = title.start_with?("puma ")
    # or a master in the middle of a hot restart: USR2 re-execs it (same pid, same start time) and until
    # Puma sets its proctitle again its cmdline is the command it runs ("ruby .../bin/puma -C ...") or empty.
    master["settling"] = !master["isPuma"] && (title.empty? || title.match?(%r{(\A|[/ ])puma(-wild)?( |\z)}))
  end
  # Nothing more about an unrelated process: its command line may hold secrets.
  if master["running"]
    master["proctitle"] = title
    if (m = title.match(/\Apuma (\S+) \((.*?)\)(?: \[(.*)\])?\z/))
      master["pumaVersion"] = m[1]
      master["binds"] = m[2].split(",")
      master["tag"] = m[3] if m[3]
    end
    master["cwd"] = link("/proc/#{pid}/cwd")
    exe = link("/proc/#{pid}/exe")
    master["exe"] = exe
    if exe && File.basename(exe) =~ /ruby/ && !exe.end_with?(" (deleted)")
      version = IO.popen({ "RUBYOPT" => nil }, [exe, "--disable-gems", "-e", "print RUBY_VERSION"], err: File::NULL, &:read) rescue nil
      master["rubyVersion"] = version if $?&.success? && version =~ /\A\d+\.\d+/
    end
    environ = slurp("/proc/#{pid}/environ")
    if environ
      master_env = {}
      environ.split("\0").each do |pair|
        key, value = pair.split("=", 2)
        master_env[key] = value if key && !key.empty? && value
      end
      master["environReadable"] = true
      # Only these derived facts: the rest of the environment holds secrets.
      master["env"] = { "pwd" => master_env["PWD"], "webConcurrency" => master_env["WEB_CONCURRENCY"],
                        "skipUsr2" => master_env.key?("PUMA_SKIP_SIGUSR2"), "bundleGemfile" => master_env["BUNDLE_GEMFILE"] }
    end
  end
end

workers = []
if master["running"]
  pid = master["pid"]
  candidates = {}
  Dir.children("/proc").each do |name|
    next unless name =~ /\A\d+\z/
    stat = stat_of(name) or next
    next if stat[:state] == "Z"
    title = proctitle(name) or next
    next unless title.include?("cluster worker")
    candidates[name.to_i] = [stat[:ppid], title]
  end
  candidates.each do |cpid, (ppid, title)|
    # With fork_worker, workers 1..N-1 are forked by worker 0: the master's grandchildren.
    next unless ppid == pid || (candidates[ppid] && candidates[ppid][0] == pid)
    m = title.match(/cluster worker (\d+): (\d+)(?: \[(.*)\])?/)
    worker = { "pid" => cpid, "ppid" => ppid, "index" => m && m[1].to_i, "masterPid" => m && m[2].to_i,
               "cwd" => link("/proc/#{cpid}/cwd"), "cmdline" => title }
    worker["tag"] = m[3] if m && m[3]
    workers << worker
  end
  workers.sort_by! { |w| [w["index"] || -1, w["pid"]] }
end

def fetch_stats(url, token)
  m = url.match(%r{\A(unix|tcp)://(.+)\z}) or return [nil, "unsupported control URL #{url}"]
  # Puma compares the raw query string, so the token cannot be escaped: refuse what would break the request.
  return [nil, "the control token holds whitespace"] if token =~ /\s/
  socket =
    if m[1] == "unix"
      path = m[2].start_with?("@") ? "\0" + m[2][1..-1] : m[2]
      UNIXSocket.new(path)
    else
      host, port = m[2].match(/\A\[?(.*?)\]?:(\d+)\z/)&.captures
      return [nil, "no port in control URL #{url}"] unless port
      Socket.tcp(host, port.to_i, connect_timeout: 3)
    end
  query = token.empty? ? "" : "?token=#{token}"
  # HTTP/1.0 makes Puma close the connection after the answer, so reading to EOF is enough.
  socket.write("GET /stats#{query} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
  data = +""
  deadline = Time.now + 5
  loop do
    left = deadline - Time.now
    return [nil, "no answer from #{url} within 5 s"] if left <= 0 || !IO.select([socket], nil, nil, left)
    chunk = socket.read_nonblock(65536, exception: false)
    break if chunk.nil?
    data << chunk if chunk.is_a?(String)
  end
  head, body = data.split("\r\n\r\n", 2)
  status = head.to_s[%r{\AHTTP/\d(?:\.\d)? (\d{3})}, 1]
  return [nil, "not an HTTP answer from #{url}"] unless status
  return [nil, "HTTP #{status}: #{short(body, 120)}"] unless status == "200"
  [JSON.parse(body.to_s), nil]
rescue JSON::ParserError
  [nil, "stats from #{url} are not JSON"]
rescue Errno::ENOENT
  [nil, "control socket #{m[2]} does not exist"]
rescue Errno::ECONNREFUSED
  [nil, "connection refused at #{url}"]
rescue SystemCallError, IOError, SocketError => e
  [nil, short("#{e.class}: #{e.message}")]
ensure
  socket&.close rescue nil
end

stats = stats_error = nil
stats, stats_error = fetch_stats(control_url, token) unless control_url.empty?

def run_child(env, argv, dir, timeout)
  out_r, out_w = IO.pipe
  err_r, err_w = IO.pipe
  pid = Process.spawn(env, *argv, chdir: dir, unsetenv_others: true, in: File::NULL, out: out_w, err: err_w)
  out_w.close
  err_w.close
  buffers = { out_r => +"", err_r => +"" }
  deadline = Time.now + timeout
  until buffers.keys.all?(&:closed?)
    left = deadline - Time.now
    ready = left > 0 && IO.select(buffers.keys.reject(&:closed?), nil, nil, left)
    unless ready
      Process.kill("KILL", pid) rescue nil
      Process.wait(pid)
      return [nil, "evaluating it took longer than #{timeout} s"]
    end
    ready[0].each do |io|
      chunk = io.read_nonblock(65536, exception: false)
      if chunk.nil? then io.close elsif chunk.is_a?(String) then buffers[io] << chunk end
    end
  end
  Process.wait(pid)
  [buffers[out_r], buffers[err_r]]
end

# Evaluate configs with the master's interpreter and environment when we can see them: that is how the
# master read its config, and config files read ENV (WEB_CONCURRENCY, PUMA_BIND, ...).
interpreter = master["exe"] if master["running"] && master["exe"] && File.basename(master["exe"]) =~ /ruby/ &&
                               File.executable?(master["exe"])
interpreter ||= RbConfig.ruby
child_env = master_env || ENV.to_h
# A release that bundles Puma (its Gemfile.lock, or Gemfile before the first install, names it) is read
# by that Puma under its own bundle, as "bundle exec puma" in it will run: never by the master's Puma or
# whichever one the SSH shell finds. The running release's config keeps the master's own environment.
def bundles_puma?(dir)
  lock = File.join(dir, "Gemfile.lock")
  return File.read(lock).match?(/^    puma \(/) if File.file?(lock)
  gemfile = File.join(dir, "Gemfile")
  File.file?(gemfile) && File.read(gemfile).match?(/^\s*gem\s+["']puma["']/)
rescue SystemCallError
  false
end

# The master's environment without what its own "bundle exec" put there (Bundler keeps the values it
# replaced in BUNDLER_ORIG_*), pointed at the release's Gemfile; Bundler then reads that release's
# .bundle/config (its path, without, ...) itself.
def release_bundle_env(env, dir)
  clean = env.reject { |key, _| key.start_with?("BUNDLER_ORIG_") }
  env.each do |key, value|
    next unless key.start_with?("BUNDLER_ORIG_")
    name = key.delete_prefix("BUNDLER_ORIG_")
    if value == "BUNDLER_ENVIRONMENT_PRESERVER_INTENTIONALLY_NIL" then clean.delete(name) else clean[name] = value end
  end
  %w[BUNDLE_BIN_PATH BUNDLER_SETUP BUNDLER_VERSION].each { |key| clean.delete(key) }
  rubyopt = clean["RUBYOPT"].to_s.split(" ").reject { |opt| opt =~ /\A-r\s*bundler\/setup\z/ || opt.include?("bundler/setup") }
  rubyopt.empty? ? clean.delete("RUBYOPT") : clean["RUBYOPT"] = rubyopt.join(" ")
  clean.merge("BUNDLE_GEMFILE" => File.join(dir, "Gemfile"))
end

def evaluate_config(entry, interpreter, env, deploy_to, config_rb, master_cwd = nil, token = "")
  dir = File.expand_path(entry["dir"], deploy_to)
  return { "ok" => false, "error" => "directory #{dir} does not exist" } unless File.directory?(dir)
  running = master_cwd && (File.realpath(dir) rescue dir) == master_cwd
  bundle = !running && bundles_puma?(dir)
  env = release_bundle_env(env, dir) if bundle
  out, err = run_child(env, [interpreter, "-e", config_rb, "--", entry["file"], bundle ? "bundle" : "plain"], dir, 30)
  return { "ok" => false, "error" => err } if out.nil?
  line = out.lines.reverse.find { |l| l.start_with?("{") }
  facts = line ? JSON.parse(line) : { "ok" => false, "error" => short("the config evaluator printed nothing: #{err.to_s.lines.last(3).join}") }
  facts["error"] = facts["error"].gsub(token, "[redacted]") if facts["error"].is_a?(String) && token.length >= 4
  facts
rescue SystemCallError, JSON::ParserError => e
  { "ok" => false, "error" => short("#{e.class}: #{e.message}") }
end

configs = JSON.parse(configs_json).map do |entry|
  { "dir" => entry["dir"], "file" => entry["file"], "envSource" => master_env ? "master" : "probe" }
    .merge(evaluate_config(entry, interpreter, child_env, deploy_to, config_rb, master["running"] && master["cwd"], token))
end

# Ports in LISTEN state (st 0A) in this network namespace: a port Puma needs that something else holds.
listening = %w[/proc/net/tcp /proc/net/tcp6].flat_map do |table|
  (slurp(table) || "").lines.drop(1).filter_map do |row|
    fields = row.split
    fields[1].split(":").last.to_i(16) if fields[3] == "0A"
  end
end.uniq.sort

current = File.realpath(File.join(deploy_to, "current")) rescue nil
puts JSON.generate("probe" => "deployer-server-probe/1", "master" => master, "workers" => workers, "stats" => stats,
                   "statsError" => stats_error, "configs" => configs, "currentPath" => current,
                   "listeningPorts" => listening)
